//! `glupy.Frame`: one request, and the host's state for it. Who may answer
//! it is decided by the state machine in `answer` and nowhere else; this
//! module performs what it decides on the C frame.

use crate::answer::{Answer, Control, Go, Phase, Refusal, Ticket};
use crate::awaited::Awaited;
use crate::convert::{self, Outgoing};
use crate::ffi;
use crate::fops::FOPS;
use crate::instance::Instance;
use crate::queued::AtTheEnd;
use crate::values::refs::SendPtr;
use crate::{after_call, pool, step, threads};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::PyTraverseError;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A full reply: op_ret, op_errno and the callback's values.
pub type Reply = (i32, i32, Outgoing);

/// The host's state for one of our frames, reached from frame->local.
pub struct FrameState {
    raw: *mut ffi::call_frame_t,
    /// This request's name on the threads that wind it (`threads`): unique
    /// in the process, unlike the frame's address, which a later frame may
    /// reuse once this one is answered.
    key: usize,
    /// What frame->local held when the frame reached us (a tail-winding
    /// parent's local): put back when we answer.
    parent_local: *mut libc::c_void,
    pub fop: usize,
    pub inst: Arc<Instance>,
    control: Mutex<Control<Reply>>,
    /// `Control::sole_turn` as of the last change, for the collector
    /// (`Frame::__traverse__` may not wait for a lock); `NO_SOLE_TURN`
    /// if none.
    sole_turn: AtomicU64,
    local: Mutex<Option<Py<PyAny>>>,
    /// Who sent the request, read once while the frame is surely live.
    caller: Caller,
    /// The name this fop makes, for the answer tables to forget again when
    /// its reply comes back.
    made_name: Mutex<Option<crate::answer_table::MadeName>>,
}

struct Caller {
    unique: u64,
    pid: i32,
    uid: u32,
    gid: u32,
}

/// One wind in flight: the cookie GlusterFS hands back to our callback.
pub struct WindCtx {
    pub child: *mut ffi::xlator_t,
    /// How a coroutine awaits this reply (None: a sync wind's).
    pub awaited: Option<Awaited>,
    /// A name this wind makes that the request's own fop does not (see
    /// `Frame::wind_any`): forgotten again when the reply comes back.
    pub made: Option<crate::answer_table::MadeName>,
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

/// `FrameState::sole_turn` when `Control::sole_turn` is None.
const NO_SOLE_TURN: u64 = u64::MAX;

fn published(control: &Control<Reply>) -> u64 {
    control.sole_turn().map_or(NO_SOLE_TURN, u64::from)
}

/// The request's state machine, locked; what it says of its sole holder is
/// published when it is let go (still under the lock, so in the order of
/// the changes).
struct ControlGuard<'a> {
    control: MutexGuard<'a, Control<Reply>>,
    sole_turn: &'a AtomicU64,
}

impl Deref for ControlGuard<'_> {
    type Target = Control<Reply>;
    fn deref(&self) -> &Control<Reply> {
        &self.control
    }
}

impl DerefMut for ControlGuard<'_> {
    fn deref_mut(&mut self) -> &mut Control<Reply> {
        &mut self.control
    }
}

impl Drop for ControlGuard<'_> {
    fn drop(&mut self) {
        self.sole_turn
            .store(published(&self.control), Ordering::Release);
    }
}

// SAFETY: the raw frame is only touched by whoever the state machine lets
// answer or wind (one thread at a time); the rest is a mutex and Py handles.
unsafe impl Send for FrameState {}
// SAFETY: as above.
unsafe impl Sync for FrameState {}

/// A ticket of the current turn, held by a host job or a Python `Frame`:
/// letting go of it (drop, including during a panic) tells the machine,
/// which answers the request EIO if it was the last holder of a pending
/// turn.
pub struct Held {
    pub state: Arc<FrameState>,
    ticket: Ticket,
}

impl Held {
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let go = self.state.control().release(self.ticket);
        if go.is_nothing() {
            return;
        }
        // Inside a Python call of the host's: performed when it is over.
        let Some(go) = after_call::keep(&self.state, go) else {
            return;
        };
        let state = Arc::clone(&self.state);
        // A Frame is often dropped inside Python (a dealloc, the GIL held):
        // GlusterFS's unwind must not run there, so a pool thread answers.
        if after_call::gil_held() {
            if let Some(job) = perform_later(state, go) {
                // No pool (before the first init): here, the GIL let go.
                Python::attach(|py| py.detach(job));
            }
        } else {
            state.perform(go);
        }
    }
}

/// Queues `go` for a Python thread (it must not run here: the GIL is held,
/// or this is the event loop's thread); gives the job back if there is no
/// pool. Until a thread takes it, the graph's
/// end performs it itself (src/queued.rs); taken, it counts as going up,
/// and the end waits for it (bounded) as for an unwind. If the graph ended
/// before it is performed anyway, a reply goes up as EIO instead
/// (`after_call::outlived_its_graph`).
fn perform_later(state: Arc<FrameState>, go: Go<Reply>) -> Option<pool::Job> {
    let inst = Arc::clone(&state.inst);
    let work: pool::Job = Box::new(move || {
        state.perform(after_call::outlived_its_graph(&state, go));
    });
    hand_to_a_python_thread(&inst, work, AtTheEnd::Perform)
}

/// Queues `work` of `inst`'s for a Python thread through the instance's
/// queue (src/queued.rs), which the graph's end settles as `at_end` says
/// if no thread took it by then. Gives back a job for the caller to run
/// where it is (not on the event loop) if there is no pool. Once the end
/// has begun, the work is settled at once on a thread of its own (the
/// caller may be the event loop's), counted so the end waits for it.
fn hand_to_a_python_thread(
    inst: &Arc<Instance>,
    work: pool::Job,
    at_end: AtTheEnd,
) -> Option<pool::Job> {
    /// Counts taken (or late) work as in flight until it is done.
    struct Doing(Arc<Instance>);
    impl Drop for Doing {
        fn drop(&mut self) {
            self.0.queued.finished();
        }
    }
    let id = match inst.queued.queue(work, at_end) {
        Ok(id) => id,
        Err((work, at_end)) => {
            let doing = Doing(Arc::clone(inst));
            settle_elsewhere(Box::new(move || {
                let _doing = doing;
                // The graph's life may have ended: a wind's arguments stay.
                at_end.settle(work, false);
            }));
            return None;
        }
    };
    let inst = Arc::clone(inst);
    let job: pool::Job = Box::new(move || {
        if let Some(work) = inst.queued.take(id) {
            let _doing = Doing(inst);
            work();
        }
    });
    pool::submit_or_return(job).err()
}

/// Runs `settle` on a short-lived thread (rare: work that came after the
/// graph's end began); here, the GIL let go, if no thread can be started.
fn settle_elsewhere(settle: pool::Job) {
    let slot = Arc::new(Mutex::new(Some(settle)));
    let theirs = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("glupy-settle".into())
        .spawn(move || {
            pool::block_signals();
            let settle = theirs.lock().ok().and_then(|mut s| s.take());
            if let Some(settle) = settle {
                crate::guard::guarded("settling late work", (), settle);
            }
        });
    if spawned.is_err() {
        let settle = slot.lock().ok().and_then(|mut s| s.take());
        if let Some(settle) = settle {
            after_call::without_gil(settle);
        }
    }
}

impl FrameState {
    /// Creates the state of a request that just reached our fop entry and
    /// links it to the frame through frame->local. The returned ticket is
    /// the request's first turn (the fop's).
    ///
    /// # Safety
    /// `frame` must be our live frame, in our fop entry.
    pub unsafe fn attach(frame: *mut ffi::call_frame_t, fop: usize, inst: Arc<Instance>) -> Held {
        let (control, ticket) = Control::new();
        // SAFETY: frame is live (we are in its fop entry) and its root is
        // the request's call stack.
        let (caller, parent_local) = unsafe {
            (
                Caller {
                    unique: ffi::glupy_frame_unique(frame),
                    pid: ffi::glupy_frame_pid(frame),
                    uid: ffi::glupy_frame_uid(frame),
                    gid: ffi::glupy_frame_gid(frame),
                },
                (*frame).local,
            )
        };
        static NEXT_KEY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let state = Arc::new(FrameState {
            raw: frame,
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            parent_local,
            fop,
            inst,
            sole_turn: AtomicU64::new(published(&control)),
            control: Mutex::new(control),
            local: Mutex::new(None),
            caller,
            made_name: Mutex::new(None),
        });
        // SAFETY: frame is live; the reference stored here is released by
        // `finish_unwind`, which puts parent_local back.
        unsafe { (*frame).local = Arc::into_raw(Arc::clone(&state)) as *mut libc::c_void };
        Held { state, ticket }
    }

    /// Registers the request with its instance (what a shutdown answers).
    /// Only once the fop entry no longer reads its arguments: a shutdown
    /// may answer it from then on.
    pub fn track(self: &Arc<Self>) {
        self.inst.track_frame(self);
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

    fn control(&self) -> ControlGuard<'_> {
        ControlGuard {
            control: self.control.lock().unwrap_or_else(|p| p.into_inner()),
            sole_turn: &self.sole_turn,
        }
    }

    pub fn set_made_name(&self, made: crate::answer_table::MadeName) {
        *self.made_name.lock().unwrap_or_else(|p| p.into_inner()) = Some(made);
    }

    /// Whether `made` is the name the request's own fop makes (which the
    /// fop entry and the answer forget: see `set_made_name`).
    fn makes(&self, made: &crate::answer_table::MadeName) -> bool {
        self.made_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(made)
    }

    /// A reply came back: the name the fop makes (if any) is forgotten again.
    pub fn forget_made_name(&self) {
        let made = self
            .made_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(made) = made {
            self.inst.tables.made_name(&made);
        }
    }

    pub fn phase(&self) -> Phase {
        self.control().phase()
    }

    /// Whether only Python can move the request on (`Control::waits_on_python`).
    pub fn waits_on_python(&self) -> bool {
        self.control().waits_on_python()
    }

    pub fn is_asynchronous(&self) -> bool {
        self.control().is_asynchronous()
    }

    pub fn set_asynchronous(&self, ticket: Ticket) -> Result<(), Refusal> {
        self.control().set_asynchronous(ticket)
    }

    /// Whether the holder of `ticket` may still answer or wind.
    pub fn may_act(&self, ticket: Ticket) -> Result<(), Refusal> {
        self.control().may_act(ticket)
    }

    /// Registers a wind by the holder of `ticket` (who then makes it).
    pub fn begin_wind(&self, ticket: Ticket) -> Result<(), Refusal> {
        self.control().wind(ticket)
    }

    /// A synchronous wind's reply came back for a Python callback: the
    /// ticket of the callback's turn.
    pub fn reply_for_callback(self: &Arc<Self>) -> Option<Held> {
        let ticket = self.control().reply_for_callback()?;
        Some(Held {
            state: Arc::clone(self),
            ticket,
        })
    }

    /// A synchronous wind's reply with no Python callback: passed up as is.
    ///
    /// # Safety
    /// `args` must be this fop's callback arguments, live across the call.
    pub unsafe fn pass_up(&self, op_ret: i32, op_errno: i32, args: *const ffi::glupy_slot_t) {
        if self.control().reply_passes_up() {
            // SAFETY: the machine gave us the answer; args by contract.
            unsafe { self.finish_unwind(op_ret, op_errno, args, None) };
        } else {
            tracing::error!("a reply came back for a frame that was not wound (please report this as a glupy bug)");
        }
    }

    /// The translator shut down (answer.rs, rule 6). True if this answered
    /// the request or will when its winds are back.
    pub fn shut_down(&self, errno: i32) -> bool {
        let mut control = self.control();
        let pending = control.phase() == Phase::Pending;
        let go = control.shut_down(errno);
        drop(control);
        self.perform(go);
        pending
    }

    /// A synchronous wind's reply was lost before the machine took it (a
    /// panic in the callback entry): answered `errno` (logged), once.
    pub fn reply_lost(&self, errno: i32) {
        let go = self.control().reply_lost(errno);
        if go.is_nothing() {
            return;
        }
        crate::logging::write(
            &self.inst.name,
            crate::logging::GF_LOG_ERROR,
            &format!(
                "{}: the reply to a {} wind was lost by an internal error (please report this as a \
                 glupy bug); the request is answered with errno {errno}",
                self.inst.module, FOPS[self.fop].name
            ),
        );
        self.perform(go);
    }

    /// A wind queued for a Python thread was withdrawn at the graph's end
    /// before one made it (src/queued.rs): taken back as a wind whose
    /// reply came back, the request shut down (EIO) as the end shuts down
    /// a coroutine's, or answered EIO (a synchronous wind's, which the end
    /// leaves to its reply).
    fn wind_withdrawn(&self, cookie: *mut libc::c_void) {
        // SAFETY: the cookie of a wind never handed to GlusterFS, taken
        // back once, here (the queue withdraws each wind once). Its future
        // is let go without the GIL: Python releases it later.
        let asynchronous = unsafe { WindCtx::from_cookie(cookie) }.awaited.is_some();
        let (shut, back) = {
            let mut control = self.control();
            if asynchronous {
                // The coroutine awaits a reply that never comes: whatever
                // it does next, the graph's end answers its request (the
                // end's order does not matter: a second shutdown is none).
                let shut = control.shut_down(libc::EIO);
                (shut, control.async_reply())
            } else {
                (Go::Nothing, control.reply_lost(libc::EIO))
            }
        };
        // The machine gives the answer to one of them at most.
        self.perform(shut);
        self.perform(back);
    }

    /// One of a coroutine's winds came back.
    pub fn async_reply(&self) {
        let go = self.control().async_reply();
        self.perform(go);
    }

    /// The holder of `ticket` answers; performed now (the caller must not
    /// hold the GIL) or kept until a coroutine's winds are back.
    pub fn answer(&self, ticket: Ticket, answer: Answer<Reply>) -> Result<(), Refusal> {
        let go = self.decide(ticket, answer)?;
        self.perform(go);
        Ok(())
    }

    /// The machine's decision on an answer, to `perform` later (e.g. after
    /// logging why, so the log line comes before the reply).
    pub fn decide(&self, ticket: Ticket, answer: Answer<Reply>) -> Result<Go<Reply>, Refusal> {
        self.control().answer(ticket, answer)
    }

    /// Does what the machine decided (without the GIL: it may unwind).
    pub fn perform(&self, go: Go<Reply>) {
        let Go::Answer(answer) = go else {
            return;
        };
        match answer {
            Answer::Error(errno) => self.answer_error(errno),
            Answer::Dropped => {
                self.inst.stats[self.fop]
                    .dropped
                    .fetch_add(1, Ordering::Relaxed);
                crate::logging::write(
                    &self.inst.name,
                    crate::logging::GF_LOG_WARNING,
                    &format!(
                        "{}: {}_fop/_cbk returned without winding or unwinding the frame, and kept no reference \
                         to it (or only where nothing can reach it, such as its own frame.local); answered EIO. \
                         Call frame.wind(...), frame.unwind(...) or frame.error(errno), or keep the frame to \
                         finish it later.",
                        self.inst.module, FOPS[self.fop].name
                    ),
                );
                self.answer_error(libc::EIO);
            }
            Answer::Reply((op_ret, op_errno, out)) => {
                // SAFETY: the machine gave us the answer; `out` matches the
                // callback's arguments and lives across the call.
                unsafe { self.finish_unwind(op_ret, op_errno, out.as_ptr(), Some(out)) };
            }
        }
    }

    /// Answers op_ret -1 with `errno`. Only for the thread the machine let answer.
    fn answer_error(&self, errno: i32) {
        let args = Outgoing::empty(FOPS[self.fop].cbk_args.len());
        // SAFETY: the caller was given the answer; all-NULL/zero args are
        // what any error reply carries.
        unsafe { self.finish_unwind(-1, errno, args.as_ptr(), None) };
    }

    /// Unwinds and drops the reference frame->local held, then lets go of
    /// `values` (what keeps `args` alive, if ours) while the answer still
    /// counts as going up: the graph's end waits for it (lifecycle.rs).
    ///
    /// # Safety
    /// The state machine must have given the caller the answer, and `args`
    /// must match this fop's callback arguments and live across the call.
    unsafe fn finish_unwind(
        &self,
        op_ret: i32,
        op_errno: i32,
        args: *const ffi::glupy_slot_t,
        values: Option<Outgoing>,
    ) {
        let stats = &self.inst.stats[self.fop];
        if op_ret < 0 {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        stats.answered.fetch_add(1, Ordering::Relaxed);
        // Counted first: the end of the graph must not miss it (lifecycle).
        self.inst.unwinding();
        // Before the unwind frees the frame (its address may be reused at once).
        self.inst.untrack_frame(self.raw);
        // The name this fop made exists now, whatever answered it: answer
        // tables forget it again (lookups that ran meanwhile are fenced).
        self.forget_made_name();
        // SAFETY: by contract; glupy_unwind puts the parent's local back
        // before unwinding, so our reference is released once, here.
        unsafe {
            let linked = (*self.raw).local as *const FrameState;
            ffi::glupy_unwind(
                self.fop as i32,
                self.raw,
                op_ret,
                op_errno,
                args,
                self.parent_local,
            );
            drop(Arc::from_raw(linked));
        }
        let python = values.map(Outgoing::release).unwrap_or_default();
        self.inst.unwound();
        // Per-request Python state ends with the request.
        let local = self.local.lock().ok().and_then(|mut l| l.take());
        drop(local);
        if !python.is_empty() {
            // Not for a reply (see Outgoing::release): dropped with the GIL.
            Python::attach(|_| drop(python));
        }
    }

    pub fn raw(&self) -> *mut ffi::call_frame_t {
        self.raw
    }

    /// The request's name for `threads` (see `key`).
    pub fn key(&self) -> usize {
        self.key
    }
}

#[pyclass(frozen, weakref, module = "glupy", name = "Frame")]
pub struct Frame {
    pub(crate) held: Held,
}

impl Frame {
    pub fn new(held: Held) -> Self {
        Frame { held }
    }

    fn state(&self) -> &Arc<FrameState> {
        &self.held.state
    }

    /// The request may still be answered or wound by this Frame's holder,
    /// and its translator's graph is still up.
    fn may_act(&self) -> PyResult<()> {
        let st = self.state();
        st.may_act(self.held.ticket())
            .map_err(|why| self.refused(why))?;
        st.inst.life.check()
    }

    /// A coroutine's first step leaves the loop for its wind (`step::pause`).
    /// If that fails, the wind registered for it is taken back (its cookie
    /// and awaitable with it), so the coroutine's answer is not left
    /// waiting for a reply that never comes.
    fn paused(py: Python<'_>, st: &Arc<FrameState>, cookie: usize) -> PyResult<bool> {
        let failed = match step::pause(py) {
            Ok(paused) => return Ok(paused),
            Err(e) => e,
        };
        Self::take_back(st, cookie);
        Err(failed)
    }

    /// Takes back a wind registered and never made: its cookie, and its
    /// count in the machine.
    fn take_back(st: &Arc<FrameState>, cookie: usize) {
        // SAFETY: the cookie was made by this wind and never given to
        // GlusterFS: taken back once, here.
        drop(unsafe { WindCtx::from_cookie(cookie as *mut libc::c_void) });
        st.async_reply();
    }

    /// Whether this Frame holds the request's only way to an answer (see
    /// `Control::sole_turn`): then what `frame.local` holds is, for the
    /// collector, this object's reference. A `local` that reaches the frame
    /// (`frame.local = {"frame": frame}`) is a cycle it can then collect,
    /// and the request is answered as a dropped frame is (EIO, logged)
    /// instead of never. While anything else may still act on the request
    /// (a wind out, a second holder, a Frame of another turn) nothing is
    /// shown: `local` is not this object's alone then.
    fn holds_local(&self) -> bool {
        self.state().sole_turn.load(Ordering::Acquire) == u64::from(self.held.ticket().turn())
    }

    fn refused(&self, why: Refusal) -> PyErr {
        PyRuntimeError::new_err(why.message(&FOPS[self.state().fop].name))
    }
}

#[pymethods]
impl Frame {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.holds_local() {
            return Ok(());
        }
        // Never waits (the collector may run anywhere). Only an answer on
        // another thread holds this lock without the GIL, and it takes
        // `local` away: what is left is garbage however it is counted.
        if let Ok(local) = self.state().local.try_lock() {
            if let Some(value) = local.as_ref() {
                visit.call(value)?;
            }
        }
        Ok(())
    }

    /// The collector found this Frame and what its `local` holds to be
    /// garbage: `local` goes, and with it (in the cycle) this Frame, whose
    /// ticket then answers the request as dropped.
    fn __clear__(&self) {
        if !self.holds_local() {
            return;
        }
        let taken = self
            .state()
            .local
            .lock()
            .ok()
            .and_then(|mut local| local.take());
        drop(taken); // the GIL is held: released here
    }

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
        self.wind_any(py, self.state().fop, args, child)
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
        if !self.state().is_asynchronous() {
            return Err(PyRuntimeError::new_err(
                "wind_fop is for async def fop methods (the reply must come back to a coroutine)",
            ));
        }
        self.wind_any(py, idx, args, child)
    }

    /// A coroutine ended without answering (it raised, timed out, was
    /// cancelled or returned nothing): answers `errno` now, or once its
    /// winds in flight are back. False if the request was already answered.
    fn _give_up(&self, py: Python<'_>, errno: i32) -> bool {
        self.answer(py, Answer::Error(errno)).is_ok()
    }

    /// Answers the request: op_ret, op_errno, then the callback's arguments.
    #[pyo3(signature = (op_ret, op_errno, *args))]
    pub(crate) fn unwind(
        &self,
        py: Python<'_>,
        op_ret: i32,
        op_errno: i32,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let st = self.state();
        let spec = &FOPS[st.fop];
        if op_ret < 0 && op_errno <= 0 {
            // Clients read a failure without an errno as success (a read of 0 bytes).
            return Err(PyValueError::new_err(format!(
                "an error reply (op_ret {op_ret}) needs a positive op_errno, such as errno.EIO; got {op_errno}"
            )));
        }
        self.may_act()?; // as in wind_any
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
        // An xattr reply's success: its size on a brick, 0 on a client (the
        // shim decides, for the status key's answer too).
        let op_ret = if op_ret > 0 && spec.answers_xattrs() {
            // SAFETY: may_act above: the graph, so the xlator and its
            // ctx, are live.
            unsafe { ffi::glupy_xattr_success_op_ret(st.inst.xl, op_ret) }
        } else {
            op_ret
        };
        self.answer(py, Answer::Reply((op_ret, op_errno, out)))
            .map_err(|why| self.refused(why))
    }

    /// Answers op_ret -1 with `errno` (e.g. errno.ENOENT).
    fn error(&self, py: Python<'_>, errno: i32) -> PyResult<()> {
        if errno <= 0 {
            return Err(PyValueError::new_err(
                "an error reply needs a positive errno",
            ));
        }
        self.answer(py, Answer::Error(errno))
            .map_err(|why| self.refused(why))
    }

    /// Per-request state: any Python object, dropped when the request is answered.
    #[getter]
    fn local(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state()
            .local
            .lock()
            .ok()?
            .as_ref()
            .map(|o| o.clone_ref(py))
    }

    #[setter]
    fn set_local(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let st = self.state();
        let mut local = st
            .local
            .lock()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))?;
        // Checked under the lock finish_unwind takes to clear it: a value
        // set now is never left behind by an answer on another thread.
        if st.phase() == Phase::Answered {
            return Err(self.refused(Refusal::Answered));
        }
        let old = std::mem::replace(&mut *local, value);
        drop(local);
        drop(old);
        Ok(())
    }

    /// The fop this frame carries ("lookup", ...).
    #[getter]
    pub(crate) fn fop(&self) -> &'static str {
        FOPS[self.state().fop].name.as_str()
    }

    /// The fop's index in the fop table.
    pub(crate) fn fop_index(&self) -> usize {
        self.state().fop
    }

    /// "pending", "wound" or "answered".
    #[getter(state)]
    fn state_name(&self) -> &'static str {
        match self.state().phase() {
            Phase::Pending => "pending",
            Phase::Wound => "wound",
            Phase::Answered => "answered",
        }
    }

    #[getter]
    pub(crate) fn answered(&self) -> bool {
        self.state().phase() == Phase::Answered
    }

    /// The request's unique number (call_stack_t.unique) and the caller's
    /// pid, uid and gid, copied when the request arrived (so they stay
    /// readable after it is answered).
    #[getter]
    fn unique(&self) -> u64 {
        self.state().caller.unique
    }

    #[getter]
    fn pid(&self) -> i64 {
        self.state().caller.pid as i64
    }

    #[getter]
    fn uid(&self) -> u64 {
        self.state().caller.uid as u64
    }

    #[getter]
    fn gid(&self) -> u64 {
        self.state().caller.gid as u64
    }

    /// An id unique among live requests (the frame's address).
    #[getter]
    fn id(&self) -> usize {
        self.state().raw() as usize
    }

    fn __repr__(&self) -> String {
        format!("<glupy.Frame {} {}>", self.fop(), self.state_name())
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
        let st = self.state();
        let spec = &FOPS[fop];
        // A Frame kept past its answer may outlive the graph: refused
        // before the translator's xlator (its children, its ctx's pools)
        // is read. The graph cannot end while the request is unanswered.
        self.may_act()?;
        let target = st.inst.child(child)?;
        let values: Vec<_> = args.iter().collect();
        let out = convert::from_python(
            &convert::Call(&spec.name, "wind"),
            &spec.args,
            &values,
            st.inst.xl,
        )?;
        // A name the translator makes itself (another fop than the one
        // asked, or another target): its tables forget it now and when the
        // reply comes back, as the fop entry and the answer do for the
        // request's own (so a lookup answered missing before, or racing
        // it, is not kept).
        // SAFETY: `out` holds the wind's arguments, alive for this call.
        let made = unsafe { st.inst.tables.made_by(fop, out.as_ptr()) }.filter(|m| !st.makes(m));
        if let Some(made) = &made {
            st.inst.tables.made_name(made);
        }
        // A coroutine's first step winds on this thread, and its reply
        // usually comes back before the wind returns: it waits in a slot
        // (src/awaited.rs). A wind from the loop gets a future.
        let awaited = if !st.is_asynchronous() {
            None
        } else if step::holds_turn() {
            Some(Awaited::Slot(Arc::default()))
        } else {
            Some(Awaited::Future(step::new_future(py)?))
        };
        st.begin_wind(self.held.ticket())
            .map_err(|why| self.refused(why))?;
        let awaitable = awaited.as_ref().map(|a| a.clone_ref(py));
        let cookie = SendPtr(
            WindCtx {
                child: target,
                awaited,
                made,
            }
            .into_cookie(),
        );
        let cookie_address = cookie.0 as usize;
        let (raw, child_ptr) = (SendPtr(st.raw()), SendPtr(target));
        let wind = move |out: Outgoing| {
            let (raw, child_ptr, cookie) = (raw, child_ptr, cookie);
            // SAFETY: the machine registered this wind, so the frame stays
            // unanswered until its reply is back; `out` keeps every argument
            // alive across the call; the cookie is taken back by the
            // callback entry.
            unsafe { ffi::glupy_wind(fop as i32, raw.0, child_ptr.0, cookie.0, out.as_ptr()) };
            out
        };
        match awaitable {
            // A coroutine's first step, on the thread that called the fop
            // method (one the sync path winds from): wound right here, the
            // loop's turn given back meanwhile; a reply that comes back
            // during the wind is the result of the future it returns.
            Some(Awaited::Slot(slot)) => {
                if !Self::paused(py, st, cookie_address)? {
                    // holds_turn() said this thread runs a first step.
                    Self::take_back(st, cookie_address);
                    return Err(PyRuntimeError::new_err(
                        "glupy: a first step's wind found no first step to pause",
                    ));
                }
                let key = st.key();
                // The child's time is not the coroutine's (see outside_python).
                let out = threads::outside_python(|| {
                    after_call::set_aside(|| {
                        py.detach(move || threads::winding(key, move || wind(out)))
                    })
                });
                drop(out);
                let resumed = step::resume(py);
                // Anything else deferred for this frame during the wind (its
                // reply waits in the slot).
                threads::outside_python(|| threads::run_deferred(key));
                let cancelled = resumed?;
                // The reply, if it came back during the wind, else a future.
                let awaitable = slot.awaitable(py, &st.inst, fop, || step::new_future(py))?;
                if cancelled {
                    // The task was cancelled while the wind ran (see
                    // `step::resume`): asyncio cancels the future a task
                    // awaits, and the coroutine gets CancelledError there.
                    // A pending future does that here: the task cancels it
                    // when the coroutine yields it (and takes its
                    // cancellation back, as then); the reply goes.
                    drop(awaitable);
                    return step::new_future(py);
                }
                Ok(awaitable)
            }
            // On the event loop: it must not run GlusterFS's code (a child
            // may block on disk), so a Python thread winds.
            Some(Awaited::Future(awaitable)) => {
                // The arguments' references go with the GIL held, as the
                // graph's end expects of anything released outside an
                // unwind (see `Life`).
                Self::wind_on_a_python_thread(py, st, cookie_address, move || {
                    let out = wind(out);
                    Python::attach(|_| drop(out));
                });
                Ok(awaitable)
            }
            // A sync frame wound from a coroutine (one a sync method kept):
            // not on the loop, nor holding its turn (see above); its reply
            // goes to its callback as any sync wind's.
            None if step::runs_the_loop() => {
                let key = st.key();
                Self::wind_on_a_python_thread(py, st, cookie_address, move || {
                    let out = threads::winding(key, move || wind(out));
                    Python::attach(|_| drop(out));
                    threads::run_deferred(key);
                });
                Ok(py.None())
            }
            // GlusterFS runs without the GIL; this frame's reply, if it
            // comes back on this thread meanwhile, is kept and run when the
            // wind returns (replies to other frames run as they come).
            None => {
                let key = st.key();
                // The child's time and the callback's (timed as its own
                // call) are not this call's.
                threads::outside_python(|| {
                    let out = after_call::set_aside(|| {
                        py.detach(move || threads::winding(key, move || wind(out)))
                    });
                    // Python values the arguments referenced go under the GIL.
                    drop(out);
                    // This frame's reply, if it came back during the wind.
                    threads::run_deferred(key);
                });
                Ok(py.None())
            }
        }
    }

    /// A wind the event loop hands to a Python thread (the loop must not
    /// run GlusterFS's code). If the graph ends before a thread takes it,
    /// it is withdrawn (src/queued.rs) and never made.
    fn wind_on_a_python_thread(
        py: Python<'_>,
        st: &Arc<FrameState>,
        cookie: usize,
        wind: impl FnOnce() + Send + 'static,
    ) {
        let withdraw: pool::Job = {
            let st = Arc::clone(st);
            Box::new(move || st.wind_withdrawn(cookie as *mut libc::c_void))
        };
        let here = hand_to_a_python_thread(&st.inst, Box::new(wind), AtTheEnd::Withdraw(withdraw));
        if let Some(job) = here {
            py.detach(job);
        }
    }

    /// Asks the machine to answer with this frame's ticket; the unwind runs
    /// without the GIL.
    fn answer(&self, py: Python<'_>, answer: Answer<Reply>) -> Result<(), Refusal> {
        let state = Arc::clone(self.state());
        let go = state.decide(self.held.ticket(), answer)?;
        // In a Python call of the host's (a fop's or callback's method, a
        // coroutine's first step): performed on this thread when it is over.
        let Some(go) = after_call::keep(&state, go) else {
            return Ok(());
        };
        if state.is_asynchronous() || step::runs_the_loop() {
            // From a coroutine, on the event loop (its own request's, or
            // one it took from a sync method): the parents' callbacks
            // (which may wind further, down to the disk) run on a Python
            // thread, never on the loop.
            if let Some(job) = perform_later(state, go) {
                py.detach(job);
            }
            return Ok(());
        }
        // From a thread of the translator's own: the parents' callbacks run
        // in the unwind, not this call's time.
        threads::outside_python(|| py.detach(move || state.perform(go)));
        Ok(())
    }
}
