//! A coroutine's first step on the thread that called its fop method
//! (the design is in python/glupy/_aio.py's docstring): the glupy loop's
//! turn, the step as a step of a real asyncio Task, the turn given back
//! around a wind and taken again, the wind's reply set on a future made
//! when it returns (src/awaited.rs).
//! Done here rather than in Python so that an `async def` fop that winds
//! once costs as little more than a sync one as asyncio allows (issue 14):
//! each of these was a Python function call per fop; here they are a few C
//! calls into asyncio.
//! The rest of the coroutine's life (a later step, submission when the
//! loop is busy, cancellation, async-timeout) stays in `glupy._aio`.

use crate::aio;
use crate::fops::FOPS;
use crate::frame::Frame;
use crate::instance::Instance;
use crate::reply_fields;
use crate::turn::Turn;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use std::cell::{Cell, RefCell};

/// How long a first step waits for the loop's turn before leaving the
/// coroutine to the loop (seconds). Other first steps hold the turn only
/// while their Python runs, as they hold the GIL; the loop thread may hold
/// it longer (a coroutine's later step), and then the loop runs this one.
const TURN_WAIT: f64 = 0.002;

/// The process's glupy event loop and what a step calls on it, looked up
/// once (the loop lives as long as the process; `_ready` is never
/// replaced, `_scheduled` may be, so it is read each time).
struct Loop {
    lp: Py<PyAny>,
    turn: Py<Turn>,
    ready: Py<PyAny>,
    task: Py<PyAny>,
    future: Py<PyAny>,
    future_kwargs: Py<PyDict>,
    get_running_loop: Py<PyAny>,
    set_running_loop: Py<PyAny>,
    enter_task: Py<PyAny>,
    leave_task: Py<PyAny>,
    /// The loop object's attributes (its `__dict__`): read per first step
    /// as a dict, without attribute lookups.
    attrs: Py<PyDict>,
    /// The loop class's own call_soon, for a call the capture does not keep.
    call_soon: Py<PyAny>,
}

static LOOP: PyOnceLock<Loop> = PyOnceLock::new();

fn the_loop(py: Python<'_>) -> PyResult<&'static Loop> {
    LOOP.get_or_try_init(py, || {
        let lp = aio::event_loop(py)?.call0()?;
        let turn = lp.getattr("turn")?.cast_into::<Turn>()?;
        let asyncio = py.import("asyncio")?;
        let events = py.import("asyncio.events")?;
        let tasks = py.import("asyncio.tasks")?;
        let future_kwargs = PyDict::new(py);
        future_kwargs.set_item("loop", &lp)?;
        // Each first step makes a task, and the task registers itself.
        crate::task_registry::make_native(py)?;
        let attrs = lp.getattr("__dict__")?.cast_into::<PyDict>()?;
        // A task's constructor hands its first step to the loop's
        // call_soon: an attribute of the loop object shadows the method for
        // good, keeps the step of a task a first step makes
        // (`take_step`), and hands any other call to the method.
        attrs.set_item(
            intern!(py, "call_soon"),
            wrap_pyfunction!(capture_call_soon, py)?,
        )?;
        Ok(Loop {
            turn: turn.unbind(),
            ready: lp.getattr("_ready")?.unbind(),
            task: asyncio.getattr("Task")?.unbind(),
            future: asyncio.getattr("Future")?.unbind(),
            future_kwargs: future_kwargs.unbind(),
            get_running_loop: events.getattr("_get_running_loop")?.unbind(),
            set_running_loop: events.getattr("_set_running_loop")?.unbind(),
            enter_task: tasks.getattr("_enter_task")?.unbind(),
            leave_task: tasks.getattr("_leave_task")?.unbind(),
            attrs: attrs.unbind(),
            call_soon: lp.get_type().getattr("call_soon")?.unbind(),
            lp: lp.unbind(),
        })
    })
}

/// This thread's first step.
struct Step {
    task: Py<PyAny>,
    /// The loop that was running on this thread before (an application's
    /// own, client side), put back while a wind runs and after the step.
    previous: Py<PyAny>,
    /// The loop's work as the loop last saw it (when the step started or
    /// took the turn back, or woke the loop): more means it must wake up.
    before: Work,
    /// Whether the task was to be cancelled when a wind paused it (see
    /// `resume`).
    must_cancel: bool,
}

/// What the loop has to do: its ready callbacks and its earliest timer.
#[derive(Clone, Copy)]
struct Work {
    ready: usize,
    scheduled: usize,
    earliest: (usize, f64),
}

impl Work {
    /// Whether the loop, waiting in select with what it saw in `before`,
    /// must be woken for this.
    fn is_news_to(&self, before: &Work) -> bool {
        self.ready > before.ready
            || self.scheduled != before.scheduled
            || self.earliest != before.earliest
    }
}

enum Here {
    Idle,
    /// In the task's step, holding the turn.
    Running(Step),
    /// A wind of the step runs below; the turn is given back.
    Paused(Step),
}

thread_local! {
    static HERE: RefCell<Here> = const { RefCell::new(Here::Idle) };
}

fn take_here() -> Here {
    HERE.with(|h| std::mem::replace(&mut *h.borrow_mut(), Here::Idle))
}

fn set_here(here: Here) {
    HERE.with(|h| *h.borrow_mut() = here);
}

/// Whether this thread runs a coroutine's first step (holding the turn).
pub fn holds_turn() -> bool {
    HERE.with(|h| matches!(*h.borrow(), Here::Running(_)))
}

thread_local! {
    /// Set on the thread that runs the glupy event loop (`_aio._serve`).
    static SERVES_THE_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as the glupy event loop's (once, at its start).
#[pyfunction]
pub fn _serving_the_loop() {
    SERVES_THE_LOOP.with(|s| s.set(true));
}

/// Whether this thread runs a coroutine's first step now (for the glupy
/// loop's thread check in debug mode: this thread is its runner then).
#[pyfunction]
pub fn _runs_a_first_step() -> bool {
    holds_turn()
}

/// Whether GlusterFS's code must not run here now: this is the event
/// loop's thread, or a first step holds the loop's turn on it (a child
/// may block on disk, and the loop would wait for it).
pub fn runs_the_loop() -> bool {
    holds_turn() || SERVES_THE_LOOP.with(Cell::get)
}

/// Whether `value` (what a fop method returned) is a coroutine.
pub fn is_coroutine(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    static NATIVE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    if value
        .get_type()
        .is(NATIVE.import(py, "types", "CoroutineType")?)
    {
        return Ok(true);
    }
    aio::iscoroutine(py)?.call1((value,))?.extract()
}

fn work(py: Python<'_>, l: &Loop) -> PyResult<Work> {
    let scheduled = loop_attr(py, l, intern!(py, "_scheduled"))?;
    let count = scheduled.len()?;
    let earliest = if count > 0 {
        let first = scheduled.get_item(0)?;
        (
            first.as_ptr() as usize,
            first.getattr(intern!(py, "_when"))?.extract()?,
        )
    } else {
        (0, 0.0)
    };
    Ok(Work {
        ready: l.ready.bind(py).len()?,
        scheduled: count,
        earliest,
    })
}

/// An attribute the loop object holds itself (set by asyncio's __init__).
fn loop_attr<'py>(
    py: Python<'py>,
    l: &Loop,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    aio::own_attr(l.attrs.bind(py), name, "the event loop")
}

fn wake(py: Python<'_>, l: &Loop) -> PyResult<()> {
    l.lp.bind(py).call_method0(intern!(py, "_write_to_self"))?;
    Ok(())
}

/// Runs the coroutine's first step here; the rest, if any, runs on the
/// loop thread. False if the step cannot run here now (the loop is in
/// debug mode, its turn is taken, or this thread is inside a first step
/// already): the caller submits the coroutine instead.
pub fn first_step(
    py: Python<'_>,
    inst: &Instance,
    coro: &Bound<'_, PyAny>,
    frame: &Bound<'_, PyAny>,
    translator: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    if !HERE.with(|h| matches!(*h.borrow(), Here::Idle)) {
        return Ok(false); // a wind below a first step came back here
    }
    let l = the_loop(py)?;
    if loop_attr(py, l, intern!(py, "_debug"))?.is_truthy()? {
        return Ok(false);
    }
    // A task factory set on the loop makes the task, as for a coroutine
    // the loop starts (`_aio._start`'s create_task).
    if !loop_attr(py, l, intern!(py, "_task_factory"))?.is_none() {
        return Ok(false);
    }
    // With an async-timeout, `_aio._run` wraps the coroutine and answers
    // from inside the task; without, the task runs the coroutine itself and
    // its end is answered from here or its done callback.
    let bare = !async_timeout_set(py, translator)?;
    let previous = l.get_running_loop.bind(py).call0()?;
    let turn = l.turn.get();
    if !turn.take(py, Some(TURN_WAIT)) {
        return Ok(false);
    }
    let mut held = Held { turn, holds: true };
    let mut running_before = RunningWhenDropped {
        py,
        l,
        running: Some(previous.clone()),
    };
    let stepped = take_step(py, l, inst, coro, frame, translator, bare, &previous);
    let ended = take_here();
    // Not Paused: a wind's resume that failed left the turn to others.
    held.holds = !matches!(ended, Here::Paused(_));
    let before = match ended {
        Here::Running(s) | Here::Paused(s) => Some(s.before),
        Here::Idle => None,
    };
    let restored = running_before.put_back();
    let outcome = stepped.and_then(|task| {
        restored?;
        let done = task.call_method0(intern!(py, "done"))?.is_truthy()?;
        if !done {
            if bare {
                static PARTIAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
                let partial = PARTIAL.import(py, "functools", "partial")?;
                let callback = partial.call1((aio::settled(py)?, frame, translator))?;
                task.call_method1(intern!(py, "add_done_callback"), (callback,))?;
            }
            aio::track(py)?.call1((&task, translator))?;
        }
        let now = work(py, l)?;
        if !done || before.is_none_or(|before| now.is_news_to(&before)) {
            wake(py, l)?; // the loop computed its wait before this step
        }
        Ok((task, done))
    });
    held.give_back();
    let (task, done) = outcome?;
    if done && bare {
        finish(py, &task, frame, translator)?;
    }
    Ok(true)
}

/// Whether the translator's options set an async-timeout (read per fop:
/// reconfigure may change it; a plain dict is read without a method call).
fn async_timeout_set(py: Python<'_>, translator: &Bound<'_, PyAny>) -> PyResult<bool> {
    let options = translator.getattr(intern!(py, "options"))?;
    let value = match options.cast_exact::<PyDict>() {
        Ok(dict) => dict.get_item(intern!(py, "async-timeout"))?,
        Err(_) => Some(options.call_method1(intern!(py, "get"), ("async-timeout",))?),
    };
    value.map_or(Ok(false), |v| v.is_truthy())
}

/// Sets `running` as this thread's running loop when dropped (or put back
/// before): the loop that ran before a first step when the step ends,
/// however it ends (a panic unwinding through it too, or the glupy loop
/// would stay this thread's running loop for good); the glupy loop again
/// after a method called beside a paused step.
struct RunningWhenDropped<'py> {
    py: Python<'py>,
    l: &'static Loop,
    running: Option<Bound<'py, PyAny>>,
}

impl RunningWhenDropped<'_> {
    fn put_back(&mut self) -> PyResult<()> {
        match self.running.take() {
            Some(running) => self
                .l
                .set_running_loop
                .bind(self.py)
                .call1((running,))
                .map(drop),
            None => Ok(()),
        }
    }
}

impl Drop for RunningWhenDropped<'_> {
    fn drop(&mut self) {
        // Fails only without memory (a holder object is allocated); the
        // next first step on this thread sets it anyway.
        let _ = self.put_back();
    }
}

/// The turn a first step holds: given back when the step ends, however it
/// ends (an error, a panic), unless a wind's pause left it to others.
struct Held<'a> {
    turn: &'a Turn,
    holds: bool,
}

impl Held<'_> {
    fn give_back(&mut self) {
        if std::mem::take(&mut self.holds) {
            self.turn.give_back();
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.holds && !matches!(take_here(), Here::Paused(_)) {
            self.give_back();
        }
    }
}

/// Creates the task and runs its first step here (unless asyncio queued
/// it elsewhere: then the loop runs it).
#[allow(clippy::too_many_arguments)]
fn take_step<'py>(
    py: Python<'py>,
    l: &Loop,
    inst: &Instance,
    coro: &Bound<'py, PyAny>,
    frame: &Bound<'py, PyAny>,
    translator: &Bound<'py, PyAny>,
    bare: bool,
    previous: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let lp = l.lp.bind(py);
    l.set_running_loop.bind(py).call1((lp,))?;
    let before = work(py, l)?;
    let coroutine = if bare {
        coro.clone()
    } else {
        aio::run(py)?.call1((coro, frame, translator))?
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "loop"), lp)?;
    let context = inst.task_context(py, translator)?;
    kwargs.set_item(intern!(py, "context"), &context)?;
    // Named, so that asyncio does not format a name for each task.
    kwargs.set_item(
        intern!(py, "name"),
        fop_name(py, frame.cast::<Frame>()?.get().fop_index()),
    )?;
    // The task's constructor hands its first step to the loop's call_soon,
    // which keeps it for us while armed (`capture_call_soon`).
    CAPTURED.with(|c| {
        *c.borrow_mut() = Some(Armed {
            context: context.as_ptr() as usize,
            step: None,
        })
    });
    let task = l.task.bind(py).call((coroutine,), Some(&kwargs));
    // Taken before anything can return: a task whose making failed after
    // its call_soon leaves nothing (its step, coroutine, frame) behind.
    let captured = CAPTURED
        .with(|c| c.borrow_mut().take())
        .and_then(|armed| armed.step);
    let task = task?;
    let Some((step, args, context)) = captured else {
        // An asyncio that schedules a task's first step without call_soon:
        // it is in the loop's queue, and the loop runs it.
        return Ok(task);
    };
    let (step, args, context) = (
        step.into_bound(py),
        args.into_bound(py),
        context.map(|c| c.into_bound(py)),
    );
    set_here(Here::Running(Step {
        task: task.clone().unbind(),
        previous: previous.clone().unbind(),
        before,
        must_cancel: false,
    }));
    let ran = match context {
        // A task's step has no arguments: called without a tuple made.
        Some(context) if args.is_empty() => context.call_method1(intern!(py, "run"), (step,)),
        Some(context) => {
            let mut call = vec![step];
            call.extend(args.iter());
            context.call_method1(intern!(py, "run"), PyTuple::new(py, call)?)
        }
        None => step.call1(args),
    };
    if let Err(e) = ran {
        // asyncio raises SystemExit and KeyboardInterrupt out of a step
        // after setting them on the task: its end answers them (EIO).
        if !task.call_method0(intern!(py, "done"))?.is_truthy()? {
            return Err(e);
        }
    }
    Ok(task)
}

/// The task ended in its first step: a Reply of the frame's fop is
/// answered here; anything else (an error, a cancellation, another value,
/// a reply that cannot be sent) by `_aio._settled`, as when it ends on the
/// loop, which also says why.
fn finish(
    py: Python<'_>,
    task: &Bound<'_, PyAny>,
    frame: &Bound<'_, PyAny>,
    translator: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if !answered_with_reply(py, task, frame).unwrap_or(false) {
        aio::settled(py)?.call1((frame, translator, task))?;
    }
    Ok(())
}

/// True if the task returned a Reply of the frame's fop and it was sent
/// (or the coroutine had answered itself).
fn answered_with_reply(
    py: Python<'_>,
    task: &Bound<'_, PyAny>,
    frame: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    // A cancelled task or one that raised is `_aio._settled`'s to answer.
    let Ok(result) = task.call_method0(intern!(py, "result")) else {
        return Ok(false);
    };
    let frame_ref = frame.cast::<Frame>()?.get();
    if frame_ref.answered() {
        return Ok(true);
    }
    let Some(reply) = reply_fields::read(&result, aio::reply(py)?) else {
        return Ok(false);
    };
    let fop = fop_name(py, frame_ref.fop_index());
    if !(reply.fop.is(fop) || reply.fop.eq(fop)?) {
        return Ok(false);
    }
    let op_ret: i32 = reply.op_ret.extract()?;
    let op_errno: i32 = reply.op_errno.extract()?;
    frame_ref.unwind(py, op_ret, op_errno, reply.args.cast::<PyTuple>()?)?;
    Ok(true)
}

/// A wind from a first step is about to run GlusterFS's code on this
/// thread: the task leaves the loop (as between two steps) and the turn is
/// given back meanwhile. False if this thread is not in a first step.
pub fn pause(py: Python<'_>) -> PyResult<bool> {
    let l = the_loop(py)?;
    let mut step = match take_here() {
        Here::Running(step) => step,
        other => {
            set_here(other);
            return Ok(false);
        }
    };
    let lp = l.lp.bind(py);
    let left = (|| {
        let now = work(py, l)?;
        if now.is_news_to(&step.before) {
            // The step made work for the loop (a timer, a task): it may
            // run while the wind does (the loop computed its wait before).
            wake(py, l)?;
        }
        step.before = now;
        step.must_cancel = step
            .task
            .bind(py)
            .getattr(intern!(py, "_must_cancel"))?
            .is_truthy()?;
        // The loop stays this thread's running loop through the wind, as
        // for any call a task's step makes; a translator's method called
        // below meanwhile sees the one that was running before
        // (`beside_a_paused_step`).
        l.leave_task
            .bind(py)
            .call1((lp, step.task.bind(py)))
            .map(drop)
    })();
    if let Err(e) = left {
        set_here(Here::Running(step)); // still holding the turn
        return Err(e);
    }
    set_here(Here::Paused(step));
    l.turn.get().give_back();
    Ok(true)
}

/// Runs `call` (a translator's method, called by the host) with the loop
/// that was running on this thread before its first step, if a wind of
/// that step is below (paused, the glupy loop left set): the method is not
/// part of the task, as it was not before the step.
pub fn beside_a_paused_step<T>(py: Python<'_>, call: impl FnOnce(Python<'_>) -> T) -> T {
    let previous = HERE.with(|h| match &*h.borrow() {
        Here::Paused(step) => Some(step.previous.clone_ref(py)),
        _ => None,
    });
    let (Some(previous), Ok(l)) = (previous, the_loop(py)) else {
        return call(py);
    };
    let set = l.set_running_loop.bind(py).call1((previous,));
    // The glupy loop is set back when the call is over, however it ends.
    let _back = set.is_ok().then(|| RunningWhenDropped {
        py,
        l,
        running: Some(l.lp.bind(py).clone()),
    });
    call(py)
}

/// The wind returned: the turn is taken back (waiting without the GIL, as
/// Python's locks do) and the step goes on. True if the task was cancelled
/// meanwhile (the loop ran while the wind did: an `asyncio.timeout` that
/// expired, a `task.cancel()` from elsewhere): for asyncio the task was
/// waiting on the wind, so the cancellation belongs there (see
/// `Frame::wind_any`), not at the coroutine's next step or its end.
pub fn resume(py: Python<'_>) -> PyResult<bool> {
    let l = the_loop(py)?;
    let step = match take_here() {
        Here::Paused(step) => step,
        other => {
            set_here(other);
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "glupy: a first step resumed without being paused",
            ));
        }
    };
    if !l.turn.get().take(py, None) {
        // The step goes on without the loop: not as its runner.
        let _ = l.set_running_loop.bind(py).call1((step.previous.bind(py),));
        set_here(Here::Paused(step));
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "glupy: the event loop's turn could not be taken back",
        ));
    }
    let lp = l.lp.bind(py);
    let task = step.task.clone_ref(py);
    let must_cancel_before = step.must_cancel;
    set_here(Here::Running(step));
    l.enter_task.bind(py).call1((lp, &task))?;
    let cancelled = !must_cancel_before
        && task
            .bind(py)
            .getattr(intern!(py, "_must_cancel"))?
            .is_truthy()?;
    // What the loop did meanwhile (it ran while the wind did) it knows of.
    let now = work(py, l)?;
    HERE.with(|h| {
        if let Here::Running(step) = &mut *h.borrow_mut() {
            step.before = now;
        }
    });
    Ok(cancelled)
}

/// The future a coroutine's wind returns: made after a first step's wind
/// (src/awaited.rs), before one from the loop.
pub fn new_future(py: Python<'_>) -> PyResult<Py<PyAny>> {
    if holds_turn() {
        let l = the_loop(py)?;
        return Ok(l
            .future
            .bind(py)
            .call((), Some(l.future_kwargs.bind(py)))?
            .unbind());
    }
    Ok(aio::new_future(py)?.call0()?.unbind())
}

/// Hands a wind's reply to the coroutine awaiting it: at once on the
/// loop's runner (this thread in its first step), else through the loop.
pub fn resolve(py: Python<'_>, future: &Bound<'_, PyAny>, reply: Bound<'_, PyAny>) -> PyResult<()> {
    if holds_turn() {
        // Done already if the coroutine was cancelled meanwhile.
        if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
            future.call_method1(intern!(py, "set_result"), (reply,))?;
        }
        return Ok(());
    }
    aio::resolve(py)?.call1((future, reply))?;
    Ok(())
}

/// A wind's reply as a `glupy.Reply`, made with no Python call
/// (src/reply_fields.rs).
pub fn new_reply<'py>(
    py: Python<'py>,
    fop: usize,
    op_ret: i32,
    op_errno: i32,
    args: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    reply_fields::make(aio::reply(py)?, fop_name(py, fop), op_ret, op_errno, args)
}

/// A fop's name as a Python string, interned once per process (a task's
/// name, a Reply's `fop`): made per fop, interning costs a dict lookup.
fn fop_name(py: Python<'_>, fop: usize) -> &Bound<'_, PyString> {
    static NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
    let names = NAMES.get_or_init(py, || {
        FOPS.iter()
            .map(|f| PyString::intern(py, f.name.as_str()).unbind())
            .collect()
    });
    names[fop].bind(py)
}

/// What a task's constructor passed to `call_soon`: its first step.
type Captured = (Py<PyAny>, Py<PyTuple>, Option<Py<PyAny>>);

/// A first step's task being made on this thread (`take_step`): the
/// context it was given, which its step comes with, and the step once it
/// came.
struct Armed {
    /// The context object's address: compared, never read (the task's
    /// making holds the object, so no other can take its place meanwhile).
    context: usize,
    step: Option<Captured>,
}

thread_local! {
    /// `Some` while this thread makes a first step's task (`take_step`):
    /// the task's call_soon puts its step in it.
    static CAPTURED: RefCell<Option<Armed>> = const { RefCell::new(None) };
}

/// Stands for the loop's `call_soon` (an attribute of the loop object):
/// keeps the step of the task a first step is making on this thread (the
/// first call with that task's context); any other call (the loop's own,
/// another thread's, a finalizer or gc callback run while the task is
/// made) goes to the method.
#[pyfunction]
#[pyo3(signature = (callback, *args, context=None))]
fn capture_call_soon(
    py: Python<'_>,
    callback: Py<PyAny>,
    args: Py<PyTuple>,
    context: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let refused = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(armed)
            if armed.step.is_none()
                && context
                    .as_ref()
                    .is_some_and(|ctx| ctx.as_ptr() as usize == armed.context) =>
        {
            armed.step = Some((callback, args, context));
            None
        }
        _ => Some((callback, args, context)),
    });
    let Some((callback, args, context)) = refused else {
        return Ok(py.None());
    };
    let l = the_loop(py)?;
    let call_soon = l.call_soon.bind(py);
    let lp = l.lp.clone_ref(py).into_any();
    let args = args.bind(py);
    if args.is_empty() && context.is_none() {
        return call_soon.call1((lp, callback)).map(Bound::unbind);
    }
    let mut call = vec![lp, callback];
    call.extend(args.iter().map(Bound::unbind));
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "context"), context)?;
    call_soon
        .call(PyTuple::new(py, call)?, Some(&kwargs))
        .map(Bound::unbind)
}
