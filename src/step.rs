//! A coroutine's first step on the thread that called its fop method
//! (the design is in python/glupy/_aio.py's docstring): the glupy loop's
//! turn, the step as a step of a real asyncio Task, the turn given back
//! around a wind and taken again, the wind's future made and resolved.
//! Done here rather than in Python so that an `async def` fop that winds
//! once costs about what a sync one does (issue 14): each of these was a
//! Python function call per fop; here they are a few C calls into asyncio.
//! The rest of the coroutine's life (a later step, submission when the
//! loop is busy, cancellation, async-timeout) stays in `glupy._aio`.

use crate::aio;
use crate::fops::FOPS;
use crate::frame::Frame;
use crate::instance::Instance;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use std::cell::RefCell;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

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
    /// The loop's ready and scheduled counts when the loop last knew of
    /// this step's work: more means the loop must wake up.
    before: (usize, usize),
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

fn holds_turn() -> bool {
    HERE.with(|h| matches!(*h.borrow(), Here::Running(_)))
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

fn counts(py: Python<'_>, l: &Loop) -> PyResult<(usize, usize)> {
    let lp = l.lp.bind(py);
    Ok((
        l.ready.bind(py).len()?,
        lp.getattr(intern!(py, "_scheduled"))?.len()?,
    ))
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
    let lp = l.lp.bind(py);
    let turn = l.turn.get();
    if lp.getattr(intern!(py, "_debug"))?.is_truthy()? || !turn.take(py, Some(TURN_WAIT)) {
        return Ok(false);
    }
    // With an async-timeout, `_aio._run` wraps the coroutine and answers
    // from inside the task; without, the task runs the coroutine itself and
    // its end is answered from here or its done callback.
    let bare = !translator
        .getattr(intern!(py, "options"))?
        .call_method1(intern!(py, "get"), ("async-timeout",))?
        .is_truthy()?;
    let previous = l.get_running_loop.bind(py).call0()?;
    let stepped = take_step(py, l, inst, coro, frame, translator, bare, &previous);
    let ended = take_here();
    // Not Paused: a wind's resume that failed left the turn to others.
    let holds = !matches!(ended, Here::Paused(_));
    let before = match ended {
        Here::Running(s) | Here::Paused(s) => Some(s.before),
        Here::Idle => None,
    };
    let restored = l.set_running_loop.bind(py).call1((&previous,));
    let outcome = stepped.and_then(|task| {
        restored?;
        let done = task.call_method0(intern!(py, "done"))?.is_truthy()?;
        if !done {
            if bare {
                let settled = aio::settled(py)?;
                let callback = py
                    .import("functools")?
                    .getattr("partial")?
                    .call1((settled, frame, translator))?;
                task.call_method1(intern!(py, "add_done_callback"), (callback,))?;
            }
            aio::track(py)?.call1((&task, translator))?;
        }
        let (ready, scheduled) = counts(py, l)?;
        let (was_ready, was_scheduled) = before.unwrap_or((ready, scheduled));
        if !done || ready > was_ready || scheduled != was_scheduled {
            wake(py, l)?; // the loop computed its wait before this step
        }
        Ok((task, done))
    });
    if holds {
        turn.give_back();
    }
    let (task, done) = outcome?;
    if done && bare {
        finish(py, &task, frame, translator)?;
    }
    Ok(true)
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
    let before = counts(py, l)?;
    let coroutine = if bare {
        coro.clone()
    } else {
        aio::run(py)?.call1((coro, frame, translator))?
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "loop"), lp)?;
    kwargs.set_item(intern!(py, "context"), inst.task_context(py, translator)?)?;
    // Named, so that asyncio does not format a name for each task.
    kwargs.set_item(intern!(py, "name"), fop_name(py, frame)?)?;
    // The task's constructor hands its first step to the loop's call_soon:
    // for that call, an attribute of the loop object shadows the method and
    // keeps the step for us (only the turn's holder may call call_soon).
    let capture = Bound::new(py, Capture::default())?;
    lp.setattr(intern!(py, "call_soon"), &capture)?;
    let task = l.task.bind(py).call((coroutine,), Some(&kwargs));
    lp.delattr(intern!(py, "call_soon"))?;
    let task = task?;
    let Some((step, args, context)) = capture.get().taken.lock().ok().and_then(|mut c| c.take())
    else {
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
    }));
    if let Some(context) = context {
        let mut call = vec![step];
        call.extend(args.iter());
        context.call_method1(intern!(py, "run"), PyTuple::new(py, call)?)?;
    } else {
        step.call1(args)?;
    }
    Ok(task)
}

/// The task ended in its first step: a Reply of the frame's fop is
/// answered here; anything else (an error, a cancellation, another value,
/// an answer that fails) by `_aio._settled`, as when it ends on the loop.
fn finish(
    py: Python<'_>,
    task: &Bound<'_, PyAny>,
    frame: &Bound<'_, PyAny>,
    translator: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if !task.call_method0(intern!(py, "cancelled"))?.is_truthy()?
        && task.call_method0(intern!(py, "exception"))?.is_none()
    {
        let result = task.call_method0(intern!(py, "result"))?;
        let frame_ref = frame.cast::<Frame>()?.get();
        if frame_ref.is_answered() {
            return Ok(()); // the coroutine answered itself
        }
        if result.get_type().is(aio::reply(py)?) {
            let fop: String = result.getattr(intern!(py, "fop"))?.extract()?;
            if fop == FOPS[frame_ref.fop_index()].name.as_str() {
                let op_ret: i32 = result.getattr(intern!(py, "op_ret"))?.extract()?;
                let op_errno: i32 = result.getattr(intern!(py, "op_errno"))?.extract()?;
                let args = result.getattr(intern!(py, "args"))?;
                if frame_ref
                    .unwind(py, op_ret, op_errno, args.cast::<PyTuple>()?)
                    .is_ok()
                {
                    return Ok(());
                }
                // (a reply it cannot send: _settled tries again and says why)
            }
        }
    }
    aio::settled(py)?.call1((frame, translator, task))?;
    Ok(())
}

/// A wind from a first step is about to run GlusterFS's code on this
/// thread: the task leaves the loop (as between two steps) and the turn is
/// given back meanwhile. False if this thread is not in a first step.
pub fn pause(py: Python<'_>) -> PyResult<bool> {
    let step = match take_here() {
        Here::Running(step) => step,
        other => {
            set_here(other);
            return Ok(false);
        }
    };
    let l = the_loop(py)?;
    let lp = l.lp.bind(py);
    let left = l
        .leave_task
        .bind(py)
        .call1((lp, step.task.bind(py)))
        .and_then(|_| l.set_running_loop.bind(py).call1((step.previous.bind(py),)));
    let mut step = step;
    let woke = left.and_then(|_| {
        let now = counts(py, l)?;
        if now.0 > step.before.0 || now.1 != step.before.1 {
            // The step made work for the loop (a timer, a task): it may
            // run while the wind does (the loop computed its wait before).
            step.before = now;
            wake(py, l)?;
        }
        Ok(())
    });
    if let Err(e) = woke {
        set_here(Here::Running(step)); // still holding the turn
        return Err(e);
    }
    set_here(Here::Paused(step));
    l.turn.get().give_back();
    Ok(true)
}

/// The wind returned: the turn is taken back (waiting without the GIL, as
/// Python's locks do) and the step goes on.
pub fn resume(py: Python<'_>) -> PyResult<()> {
    let step = match take_here() {
        Here::Paused(step) => step,
        other => {
            set_here(other);
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "glupy: a first step resumed without being paused",
            ));
        }
    };
    let l = the_loop(py)?;
    let lp = l.lp.bind(py);
    l.turn.get().take(py, None);
    let task = step.task.clone_ref(py);
    set_here(Here::Running(step));
    l.set_running_loop.bind(py).call1((lp,))?;
    l.enter_task.bind(py).call1((lp, task))?;
    Ok(())
}

/// The awaitable `frame.wind` returns in a coroutine.
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

/// A wind's reply as a `glupy.Reply`, made without running its Python
/// `__init__` (a Python call per wind): the same four slots it sets, `args`
/// a tuple already.
pub fn new_reply<'py>(
    py: Python<'py>,
    fop: usize,
    op_ret: i32,
    op_errno: i32,
    args: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let class = aio::reply(py)?;
    let reply = class.call_method1(intern!(py, "__new__"), (class,))?;
    reply.setattr(
        intern!(py, "fop"),
        PyString::intern(py, FOPS[fop].name.as_str()),
    )?;
    reply.setattr(intern!(py, "op_ret"), op_ret)?;
    reply.setattr(intern!(py, "op_errno"), op_errno)?;
    reply.setattr(intern!(py, "args"), args)?;
    Ok(reply)
}

/// The fop's name as an interned Python string (a task's name).
fn fop_name<'py>(py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let fop = frame.cast::<Frame>()?.get().fop_index();
    Ok(PyString::intern(py, FOPS[fop].name.as_str()))
}

/// What a task's constructor passed to `call_soon`: its first step.
type Captured = (Py<PyAny>, Py<PyTuple>, Option<Py<PyAny>>);

/// Stands for the loop's `call_soon` while a first step's task is made.
#[pyclass(frozen, module = "glupy._glupy")]
#[derive(Default)]
pub struct Capture {
    taken: Mutex<Option<Captured>>,
}

#[pymethods]
impl Capture {
    #[pyo3(signature = (callback, *args, context=None))]
    fn __call__(
        &self,
        callback: Py<PyAny>,
        args: Py<PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let mut taken = self.taken.lock().map_err(|_| {
            pyo3::exceptions::PyRuntimeError::new_err("glupy: a first step's capture is poisoned")
        })?;
        if taken.is_some() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "glupy: call_soon called twice while a first step's task was made",
            ));
        }
        *taken = Some((callback, args, context));
        Ok(())
    }
}

/// The glupy loop's turn (`_aio._Loop.turn`): a lock that the thread
/// holding it may give back from another thread's point of view (the loop
/// thread takes it after select, a first step between its winds). In Rust
/// so that a first step takes and gives it without a Python call.
#[pyclass(frozen, module = "glupy._glupy")]
#[derive(Default)]
pub struct Turn {
    state: Mutex<TurnState>,
    given_back: Condvar,
}

#[derive(Default)]
struct TurnState {
    held: bool,
    /// Threads waiting for it: giving it back wakes one only if there is
    /// one (a futex wake is a system call, twice per async fop otherwise).
    waiting: usize,
}

impl Turn {
    /// Takes the turn, waiting without the GIL at most `wait` seconds
    /// (None: as long as it takes); false if it was not taken.
    fn take(&self, py: Python<'_>, wait: Option<f64>) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if !state.held {
            state.held = true;
            return true;
        }
        if wait.is_some_and(|w| w <= 0.0) {
            return false;
        }
        state.waiting += 1;
        drop(state);
        py.detach(|| {
            let deadline = wait.map(|w| Instant::now() + Duration::from_secs_f64(w));
            let Ok(mut state) = self.state.lock() else {
                return false;
            };
            let taken = loop {
                if !state.held {
                    state.held = true;
                    break true;
                }
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let woken = match left {
                    None => self.given_back.wait(state).ok(),
                    Some(left) if left.is_zero() => break false,
                    Some(left) => self
                        .given_back
                        .wait_timeout(state, left)
                        .ok()
                        .map(|(s, _)| s),
                };
                // (poisoned: no thread panics holding it)
                let Some(woken) = woken else { return false };
                state = woken;
            };
            state.waiting -= 1;
            taken
        })
    }

    /// Gives the turn back; false if it was not held.
    fn give_back(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let was = std::mem::replace(&mut state.held, false);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.given_back.notify_one();
        }
        was
    }
}

#[pymethods]
impl Turn {
    #[new]
    fn new() -> Self {
        Turn::default()
    }

    /// Like threading.Lock.acquire: blocking, timeout in seconds (-1: none).
    #[pyo3(signature = (blocking=true, timeout=-1.0))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: f64) -> bool {
        let wait = match (blocking, timeout) {
            (false, _) => Some(0.0),
            (true, t) if t < 0.0 => None,
            (true, t) => Some(t),
        };
        self.take(py, wait)
    }

    fn release(&self) -> PyResult<()> {
        if self.give_back() {
            Ok(())
        } else {
            Err(pyo3::exceptions::PyRuntimeError::new_err(
                "release unlocked turn",
            ))
        }
    }

    fn locked(&self) -> bool {
        self.state.lock().map(|s| s.held).unwrap_or(true)
    }
}
