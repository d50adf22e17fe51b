//! `glupy.Frame`: one request. It is answered exactly once: by an unwind
//! from Python, by an error reply when Python raises, or with EIO when the
//! last Python reference to an unanswered frame goes away.

use crate::convert::{self, Outgoing};
use crate::ffi;
use crate::fops::FOPS;
use crate::instance::Instance;
use crate::values::refs::SendPtr;
use crate::{pool, threads};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
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
    /// Owners and winds in flight, changed together with the Pending<->Wound
    /// moves so that "last owner gone while Pending" is decided atomically.
    control: Mutex<Control>,
    local: Mutex<Option<Py<PyAny>>>,
    /// Who sent the request, read once while the frame is surely live.
    caller: Caller,
    /// Run by a coroutine: winds return awaitables and may overlap.
    asynchronous: AtomicBool,
    /// The errno to answer once the last wind in flight returns (set when a
    /// coroutine ended, timed out or raised while winds were out).
    deferred_errno: AtomicI32,
}

struct Caller {
    unique: u64,
    pid: i32,
    uid: u32,
    gid: u32,
}

#[derive(Default)]
struct Control {
    /// Host jobs and Python Frame objects that may still answer the frame.
    owners: usize,
    /// Winds whose reply has not come back yet.
    winds: usize,
}

/// One wind in flight: the cookie GlusterFS hands back to our callback.
pub struct WindCtx {
    pub child: *mut ffi::xlator_t,
    /// The future a coroutine awaits for this reply.
    pub future: Option<Py<PyAny>>,
}

impl WindCtx {
    pub fn into_cookie(self) -> *mut libc::c_void {
        Box::into_raw(Box::new(self)) as *mut libc::c_void
    }

    /// # Safety
    /// `cookie` must come from `into_cookie` and be taken back once.
    pub unsafe fn from_cookie(cookie: *mut libc::c_void) -> Box<WindCtx> {
        // SAFETY: by contract.
        unsafe { Box::from_raw(cookie as *mut WindCtx) }
    }
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
            control: Mutex::new(Control {
                owners: 1,
                winds: 0,
            }),
            local: Mutex::new(None),
            // SAFETY: frame is live (we are in its fop entry) and its root
            // is the request's call stack.
            caller: unsafe {
                Caller {
                    unique: ffi::glupy_frame_unique(frame),
                    pid: ffi::glupy_frame_pid(frame),
                    uid: ffi::glupy_frame_uid(frame),
                    gid: ffi::glupy_frame_gid(frame),
                }
            },
            asynchronous: AtomicBool::new(false),
            deferred_errno: AtomicI32::new(0),
        });
        state.inst.track_frame(&state);
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

    pub fn set_asynchronous(&self) {
        self.asynchronous.store(true, Ordering::Release);
    }

    pub fn is_asynchronous(&self) -> bool {
        self.asynchronous.load(Ordering::Acquire)
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a wind: Pending -> Wound, or one more wind in flight for
    /// a coroutine.
    pub fn begin_wind(&self, fop: &str) -> PyResult<()> {
        let mut c = self.control();
        match self.phase() {
            Phase::Answered => Err(answered_error(fop)),
            Phase::Wound if !self.is_asynchronous() => Err(PyRuntimeError::new_err(format!(
                "this {fop} frame is already wound; wind again from its callback, or use an async def method to wind several at once"
            ))),
            Phase::Wound => {
                c.winds += 1;
                Ok(())
            }
            Phase::Pending if self.advance(Phase::Pending, Phase::Wound) => {
                c.winds = 1;
                Ok(())
            }
            Phase::Pending => Err(answered_error(fop)),
        }
    }

    /// A reply came back (handed to a new owner, the callback's job, if
    /// `new_owner`): the frame is Pending again once no wind is in flight,
    /// and answered at once if its coroutine already gave up.
    pub fn end_wind(&self, new_owner: bool) {
        let mut c = self.control();
        if new_owner {
            c.owners += 1;
        }
        c.winds = c.winds.saturating_sub(1);
        if c.winds == 0 && self.advance(Phase::Wound, Phase::Pending) {
            let errno = self.deferred_errno.load(Ordering::Acquire);
            if errno != 0 && self.advance(Phase::Pending, Phase::Answered) {
                drop(c);
                self.answer_error(errno);
            }
        }
    }

    /// Answers `errno` now if the frame is Pending, else as soon as the
    /// winds in flight return. Returns false if it was already answered.
    pub fn answer_error_when_idle(&self, errno: i32) -> bool {
        let c = self.control();
        match self.phase() {
            Phase::Pending if self.advance(Phase::Pending, Phase::Answered) => {
                drop(c);
                self.answer_error(errno);
                true
            }
            Phase::Wound => {
                self.deferred_errno.store(errno, Ordering::Release);
                true
            }
            _ => false,
        }
    }

    /// Drops one owner; the last one to leave a Pending frame answers it
    /// with EIO (from a pool thread: we may be inside a Python dealloc).
    pub fn release_owner(self: &Arc<Self>) {
        let dropped = {
            let mut c = self.control();
            c.owners = c.owners.saturating_sub(1);
            c.owners == 0 && self.advance(Phase::Pending, Phase::Answered)
        };
        if dropped {
            let state = Arc::clone(self);
            pool::submit(Box::new(move || state.answer_dropped()));
        }
    }

    /// The last owner left without an answer; we won Pending->Answered.
    fn answer_dropped(&self) {
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
        // Before the unwind frees the frame (its address may be reused at once).
        self.inst.untrack_frame(self.raw);
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
    /// with the fop's arguments; its callback gets the reply. In an
    /// `async def` method it returns an awaitable of the reply instead.
    #[pyo3(signature = (*args, child=None))]
    fn wind(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        child: Option<&str>,
    ) -> PyResult<Py<PyAny>> {
        self.wind_any(py, self.state.fop, args, child)
    }

    /// In an `async def` method: winds another fop than the frame's own
    /// (e.g. a getxattr while handling a lookup) and returns an awaitable
    /// of its reply.
    #[pyo3(signature = (fop, *args, child=None))]
    fn wind_fop(
        &self,
        py: Python<'_>,
        fop: &str,
        args: &Bound<'_, PyTuple>,
        child: Option<&str>,
    ) -> PyResult<Py<PyAny>> {
        let idx = crate::fops::index_of(fop)
            .ok_or_else(|| PyValueError::new_err(format!("no fop named {fop:?}")))?;
        if !self.state.is_asynchronous() {
            return Err(PyRuntimeError::new_err(
                "wind_fop is for async def fop methods (the reply must come back to a coroutine)",
            ));
        }
        self.wind_any(py, idx, args, child)
    }

    /// Answers EIO/errno now, or once the winds in flight return (used when
    /// a coroutine ends without answering). False if already answered.
    fn _answer_error_when_idle(&self, py: Python<'_>, errno: i32) -> bool {
        let state = Arc::clone(&self.state);
        py.detach(move || state.answer_error_when_idle(errno))
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
        if op_ret < 0 && op_errno <= 0 {
            // Clients read a failure without an errno as success (a read of 0 bytes).
            return Err(PyValueError::new_err(format!(
                "an error reply (op_ret {op_ret}) needs a positive op_errno, such as errno.EIO; got {op_errno}"
            )));
        }
        let values: Vec<_> = args.iter().collect();
        let out = if op_ret < 0 && values.iter().all(|v| v.is_none()) {
            Outgoing::empty(spec.cbk_args.len())
        } else {
            convert::from_python(
                &convert::Call(&spec.name, "unwind"),
                &spec.cbk_args,
                &values,
                st.inst.xl,
            )?
        };
        if op_ret >= 0 {
            convert::check_success_reply(&spec.name, &spec.cbk_args, &out, op_ret)?;
        }
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
    /// pid, uid and gid, copied when the request arrived (so they stay
    /// readable after it is answered).
    #[getter]
    fn unique(&self) -> u64 {
        self.state.caller.unique
    }

    #[getter]
    fn pid(&self) -> i64 {
        self.state.caller.pid as i64
    }

    #[getter]
    fn uid(&self) -> u64 {
        self.state.caller.uid as u64
    }

    #[getter]
    fn gid(&self) -> u64 {
        self.state.caller.gid as u64
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
    fn wind_any(
        &self,
        py: Python<'_>,
        fop: usize,
        args: &Bound<'_, PyTuple>,
        child: Option<&str>,
    ) -> PyResult<Py<PyAny>> {
        let st = &self.state;
        let spec = &FOPS[fop];
        let target = st.inst.child(child)?;
        let values: Vec<_> = args.iter().collect();
        let out = convert::from_python(
            &convert::Call(&spec.name, "wind"),
            &spec.args,
            &values,
            st.inst.xl,
        )?;
        let future = if st.is_asynchronous() {
            Some(
                py.import("glupy._aio")?
                    .call_method0("new_future")?
                    .unbind(),
            )
        } else {
            None
        };
        st.begin_wind(&FOPS[st.fop].name)?;
        let awaitable = future.as_ref().map(|f| f.clone_ref(py));
        let cookie = SendPtr(
            WindCtx {
                child: target,
                future,
            }
            .into_cookie(),
        );
        let (raw, child_ptr) = (SendPtr(st.raw()), SendPtr(target));
        let wind = move |out: Outgoing| {
            let (raw, child_ptr, cookie) = (raw, child_ptr, cookie);
            // SAFETY: begin_wind registered this wind on our frame; `out`
            // keeps every argument alive across the call; the cookie is
            // taken back by the callback entry.
            unsafe { ffi::glupy_wind(fop as i32, raw.0, child_ptr.0, cookie.0, out.as_ptr()) };
            out
        };
        match awaitable {
            // A coroutine: the event loop must not run GlusterFS's code
            // (a child may block on disk), so a Python thread winds.
            Some(awaitable) => {
                pool::submit(Box::new(move || drop(wind(out))));
                Ok(awaitable)
            }
            // GlusterFS runs without the GIL; a reply that comes back on
            // this thread meanwhile is kept and run when the wind returns.
            None => {
                let mark = threads::deferred_mark();
                let out = py.detach(move || threads::winding(move || wind(out)));
                // Python values the arguments referenced go under the GIL.
                drop(out);
                // Replies that came back on this thread during the wind.
                threads::run_deferred_since(mark);
                Ok(py.None())
            }
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
