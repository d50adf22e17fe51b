//! `glupy.Frame`: one request. It is answered exactly once: by an unwind
//! from Python, by an error reply when Python raises, or with EIO when the
//! last Python reference to an unanswered frame goes away.

use crate::convert::{self, Outgoing};
use crate::ffi;
use crate::fops::FOPS;
use crate::instance::Instance;
use crate::pool;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Where a request stands.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// With this translator: Python may wind or unwind it.
    Pending = 0,
    /// Wound to a child; its callback will make it Pending again.
    Wound = 1,
    /// Unwound: the frame belongs to GlusterFS again.
    Answered = 2,
}

/// The host's state for one of our frames, reached from frame->local.
pub struct FrameState {
    raw: *mut ffi::call_frame_t,
    pub fop: usize,
    pub inst: Arc<Instance>,
    phase: AtomicU8,
    /// Host jobs and Python Frame objects that may still answer the frame.
    owners: AtomicUsize,
    local: Mutex<Option<Py<PyAny>>>,
}

// SAFETY: the raw frame is only used by whoever wins the phase transition
// (one thread at a time); the rest is atomics, a mutex and Py handles.
unsafe impl Send for FrameState {}
// SAFETY: as above.
unsafe impl Sync for FrameState {}

impl FrameState {
    /// Creates the state, with one owner (the job about to run), and links
    /// it to the frame through frame->local.
    ///
    /// # Safety
    /// `frame` must be our live frame with a NULL local.
    pub unsafe fn attach(
        frame: *mut ffi::call_frame_t,
        fop: usize,
        inst: Arc<Instance>,
    ) -> Arc<FrameState> {
        let state = Arc::new(FrameState {
            raw: frame,
            fop,
            inst,
            phase: AtomicU8::new(Phase::Pending as u8),
            owners: AtomicUsize::new(1),
            local: Mutex::new(None),
        });
        // SAFETY: frame is live; the reference stored here is released by
        // `finish_unwind`, right after GlusterFS clears local on unwind.
        unsafe { (*frame).local = Arc::into_raw(Arc::clone(&state)) as *mut libc::c_void };
        state
    }

    /// The state behind frame->local (a new reference to it).
    ///
    /// # Safety
    /// `frame` must be a frame `attach` linked and that is not yet answered.
    pub unsafe fn of(frame: *mut ffi::call_frame_t) -> Arc<FrameState> {
        // SAFETY: local holds the reference `attach` stored.
        unsafe {
            let p = (*frame).local as *const FrameState;
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Pending,
            1 => Phase::Wound,
            _ => Phase::Answered,
        }
    }

    /// Moves from `from` to `to`; false if another thread got there first.
    pub fn advance(&self, from: Phase, to: Phase) -> bool {
        self.phase
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub fn raw(&self) -> *mut ffi::call_frame_t {
        self.raw
    }

    pub fn add_owner(&self) {
        self.owners.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops one owner; the last one to leave a Pending frame answers it
    /// with EIO (from a pool thread: we may be inside a Python dealloc).
    pub fn release_owner(self: &Arc<Self>) {
        if self.owners.fetch_sub(1, Ordering::AcqRel) == 1 && self.phase() == Phase::Pending {
            let state = Arc::clone(self);
            pool::submit(Box::new(move || state.answer_dropped()));
        }
    }

    fn answer_dropped(&self) {
        if self.advance(Phase::Pending, Phase::Answered) {
            self.inst.stats[self.fop]
                .dropped
                .fetch_add(1, Ordering::Relaxed);
            crate::logging::write(
                &self.inst.name,
                crate::logging::GF_LOG_WARNING,
                &format!(
                    "{}: {}_fop/_cbk returned without winding or unwinding the frame, and kept no reference \
                     to it; answered EIO. Call frame.wind(...), frame.unwind(...) or frame.error(errno), or \
                     keep the frame to finish it later.",
                    self.inst.module, FOPS[self.fop].name
                ),
            );
            self.answer_error(libc::EIO);
        }
    }

    /// Answers op_ret -1 with `errno`. The caller has won Pending->Answered.
    pub fn answer_error(&self, errno: i32) {
        let args = Outgoing::empty(FOPS[self.fop].cbk_args.len());
        // SAFETY: we won the transition to Answered, so nobody else touches
        // the frame; the args are all NULL/zero as for any error reply.
        unsafe { self.finish_unwind(-1, errno, args.as_ptr()) };
    }

    /// Unwinds and drops the reference frame->local held.
    ///
    /// # Safety
    /// The caller must have won the transition to Answered, and `args` must
    /// match this fop's callback arguments and live across the call.
    pub unsafe fn finish_unwind(&self, op_ret: i32, op_errno: i32, args: *const ffi::glupy_slot_t) {
        if op_ret < 0 {
            self.inst.stats[self.fop]
                .errors
                .fetch_add(1, Ordering::Relaxed);
        }
        let stats = &self.inst.stats[self.fop];
        stats.answered.fetch_add(1, Ordering::Relaxed);
        // SAFETY: by contract; glupy_unwind clears local before unwinding.
        unsafe {
            let linked = (*self.raw).local as *const FrameState;
            ffi::glupy_unwind(self.fop as i32, self.raw, op_ret, op_errno, args);
            drop(Arc::from_raw(linked));
        }
        // Per-request Python state ends with the request.
        if let Ok(mut local) = self.local.lock() {
            local.take();
        }
    }
}

#[pyclass(frozen, module = "glupy", name = "Frame")]
pub struct Frame {
    pub(crate) state: Arc<FrameState>,
}

impl Frame {
    /// Wraps a state whose owner count already includes this Frame.
    pub fn adopt(state: Arc<FrameState>) -> Self {
        Frame { state }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.state.release_owner();
    }
}

fn answered_error(fop: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "this {fop} frame was already answered (each request is answered exactly once)"
    ))
}

#[pymethods]
impl Frame {
    /// Winds the fop to a child (the first by default, or the one named)
    /// with the fop's arguments; its callback gets the reply.
    #[pyo3(signature = (*args, child=None))]
    fn wind(&self, py: Python<'_>, args: &Bound<'_, PyTuple>, child: Option<&str>) -> PyResult<()> {
        let st = &self.state;
        let spec = &FOPS[st.fop];
        let target = st.inst.child(child)?;
        let values: Vec<_> = args.iter().collect();
        let out = convert::from_python(
            &format!("{} wind", spec.name),
            &spec.args,
            &values,
            st.inst.xl,
        )?;
        match st.phase() {
            Phase::Pending => {}
            Phase::Wound => {
                return Err(PyRuntimeError::new_err(format!(
                    "this {} frame is already wound",
                    spec.name
                )))
            }
            Phase::Answered => return Err(answered_error(&spec.name)),
        }
        if !st.advance(Phase::Pending, Phase::Wound) {
            return Err(answered_error(&spec.name));
        }
        let (fop, raw) = (st.fop as i32, crate::values::refs::SendPtr(st.raw()));
        let child_ptr = crate::values::refs::SendPtr(target);
        // The reply may come back on this very thread, into Python: release
        // the GIL while GlusterFS runs.
        let out = py.detach(move || {
            let (raw, child_ptr, out) = (raw, child_ptr, out);
            // SAFETY: we won Pending->Wound, so the frame is ours to wind;
            // `out` keeps every argument alive across the call.
            unsafe { ffi::glupy_wind(fop, raw.0, child_ptr.0, out.as_ptr()) };
            out
        });
        // Python values the arguments referenced are released under the GIL.
        drop(out);
        Ok(())
    }

    /// Answers the request: op_ret, op_errno, then the callback's arguments.
    #[pyo3(signature = (op_ret, op_errno, *args))]
    fn unwind(
        &self,
        py: Python<'_>,
        op_ret: i32,
        op_errno: i32,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let st = &self.state;
        let spec = &FOPS[st.fop];
        let values: Vec<_> = args.iter().collect();
        let out = if op_ret < 0 && values.iter().all(|v| v.is_none()) {
            Outgoing::empty(spec.cbk_args.len())
        } else {
            convert::from_python(
                &format!("{} unwind", spec.name),
                &spec.cbk_args,
                &values,
                st.inst.xl,
            )?
        };
        self.answer(py, op_ret, op_errno, out)
    }

    /// Answers op_ret -1 with `errno` (e.g. errno.ENOENT).
    fn error(&self, py: Python<'_>, errno: i32) -> PyResult<()> {
        if errno <= 0 {
            return Err(PyValueError::new_err(
                "an error reply needs a positive errno",
            ));
        }
        let out = Outgoing::empty(FOPS[self.state.fop].cbk_args.len());
        self.answer(py, -1, errno, out)
    }

    /// Per-request state: any Python object, dropped when the request is answered.
    #[getter]
    fn local(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .local
            .lock()
            .ok()?
            .as_ref()
            .map(|o| o.clone_ref(py))
    }

    #[setter]
    fn set_local(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        if self.state.phase() == Phase::Answered {
            return Err(answered_error(&FOPS[self.state.fop].name));
        }
        let old = std::mem::replace(
            &mut *self
                .state
                .local
                .lock()
                .map_err(|_| PyRuntimeError::new_err("poisoned"))?,
            value,
        );
        drop(old);
        Ok(())
    }

    /// The fop this frame carries ("lookup", ...).
    #[getter]
    fn fop(&self) -> &'static str {
        FOPS[self.state.fop].name.as_str()
    }

    /// "pending", "wound" or "answered".
    #[getter]
    fn state(&self) -> &'static str {
        match self.state.phase() {
            Phase::Pending => "pending",
            Phase::Wound => "wound",
            Phase::Answered => "answered",
        }
    }

    #[getter]
    fn answered(&self) -> bool {
        self.state.phase() == Phase::Answered
    }

    /// The request's unique number (call_stack_t.unique) and the caller's
    /// pid, uid and gid; 0 once answered.
    #[getter]
    fn unique(&self) -> u64 {
        self.root_field(|f| unsafe { ffi::glupy_frame_unique(f) }) // SAFETY: see root_field.
    }

    #[getter]
    fn pid(&self) -> i64 {
        self.root_field(|f| unsafe { ffi::glupy_frame_pid(f) } as u64) as i32 as i64
        // SAFETY: see root_field.
    }

    #[getter]
    fn uid(&self) -> u64 {
        self.root_field(|f| unsafe { ffi::glupy_frame_uid(f) } as u64) // SAFETY: see root_field.
    }

    #[getter]
    fn gid(&self) -> u64 {
        self.root_field(|f| unsafe { ffi::glupy_frame_gid(f) } as u64) // SAFETY: see root_field.
    }

    /// An id unique among live requests (the frame's address).
    #[getter]
    fn id(&self) -> usize {
        self.state.raw() as usize
    }

    fn __repr__(&self) -> String {
        format!("<glupy.Frame {} {}>", self.fop(), self.state())
    }
}

impl Frame {
    /// Reads a field of the request while the frame is still ours.
    /// Reading is sound while the frame is not answered: GlusterFS frees
    /// it only after our unwind.
    fn root_field(&self, read: impl Fn(*mut ffi::call_frame_t) -> u64) -> u64 {
        if self.state.phase() == Phase::Answered {
            0
        } else {
            read(self.state.raw())
        }
    }

    fn answer(&self, py: Python<'_>, op_ret: i32, op_errno: i32, out: Outgoing) -> PyResult<()> {
        let st = &self.state;
        if !st.advance(Phase::Pending, Phase::Answered) {
            return Err(match st.phase() {
                Phase::Wound => PyRuntimeError::new_err(format!(
                    "this {} frame is wound: it is answered from its callback",
                    FOPS[st.fop].name
                )),
                _ => answered_error(&FOPS[st.fop].name),
            });
        }
        // Drop per-request state while we hold the GIL.
        let local = st.local.lock().ok().and_then(|mut l| l.take());
        drop(local);
        let state = Arc::clone(st);
        let out = py.detach(move || {
            let out = out;
            // SAFETY: we won Pending->Answered; `out` matches the callback's
            // arguments and lives across the call.
            unsafe { state.finish_unwind(op_ret, op_errno, out.as_ptr()) };
            out
        });
        drop(out);
        Ok(())
    }
}
