//! The two hooks every generated fop and callback entry calls, and the
//! jobs that run Python for them on the pool's threads.

use crate::answer::{Answer, Refusal, Ticket};
use crate::awaited::Awaited;
use crate::convert::{self, Taken};
use crate::ffi::{self, glupy_slot_t};
use crate::fops::FOPS;
use crate::frame::{Frame, FrameState, Held, WindCtx};
use crate::guard::guarded;
use crate::instance::Instance;
use crate::{after_call, aio, logging, pool, threads};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use smallvec::SmallVec;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// More than any callback of the fop table has (checked by a test).
const MOST_CBK_ARGS: usize = 12;

pub fn install_hooks() {
    // SAFETY: sets the function pointers the shim reads; each function
    // has the signature the shim declares.
    unsafe {
        ffi::glupy_set_hooks(
            Some(on_fop),
            Some(on_cbk),
            Some(crate::events::on_notify),
            Some(crate::status::on_status),
        )
    };
}

/// Which method of the translator a job calls.
#[derive(Clone, Copy)]
enum Side {
    Fop,
    Cbk {
        child: usize,
        op_ret: i32,
        op_errno: i32,
    },
}

unsafe extern "C" fn on_fop(
    fop: libc::c_int,
    frame: *mut ffi::call_frame_t,
    this: *mut ffi::xlator_t,
    args: *const glupy_slot_t,
) {
    let fop = fop as usize;
    guarded("a fop entry", (), || {
        // SAFETY: the shim calls us only for initialised glupy xlators.
        let Some(inst) = (unsafe { Instance::of(this) }) else {
            // Not initialised (init failed, so the graph should not be up).
            // SAFETY: the frame we were given, answered once, here.
            unsafe { answer_unattached(fop, frame, libc::EIO) };
            return;
        };
        inst.stats[fop].calls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: args holds this fop's arguments, live during this call.
        if let Some(errno) = unsafe { inst.tables.decided(fop, args) } {
            // Decided by the translator beforehand: answered here, without
            // Python, before the frame is ever ours (nothing to attach).
            let stats = &inst.stats[fop];
            stats.answered.fetch_add(1, Ordering::Relaxed);
            stats.errors.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the frame we were given, answered once, here.
            unsafe { answer_unattached(fop, frame, errno) };
            return;
        }
        // SAFETY: as above.
        let made = unsafe { inst.tables.making_name(fop, args) };
        // SAFETY: a frame reaching our fop entry is ours. From here on the
        // ticket answers EIO if it is let go unused, even by a panic.
        let held = unsafe { FrameState::attach(frame, fop, Arc::clone(&inst)) };
        if let Some(made) = made {
            held.state.set_made_name(made);
        }
        if inst.fop_methods[fop].is_none() {
            // Only the callback is in Python: wind on untouched, no Python.
            if held.state.begin_wind(held.ticket()).is_err() {
                return; // cannot happen on a fresh frame; `held` answers
            }
            held.state.track();
            // SAFETY: this is our live xlator.
            let child = unsafe { ffi::glupy_first_child(this) };
            let cookie = WindCtx {
                child,
                awaited: None,
                made: None,
            }
            .into_cookie();
            // SAFETY: winding our own frame with the arguments we were given.
            unsafe { ffi::glupy_wind(fop as i32, frame, child, cookie, args) };
            return;
        }
        // SAFETY: args holds this fop's arguments, live during this call.
        let owned =
            unsafe { convert::take_args(&FOPS[fop].args, args, 0, this, &held.state.inst.life) };
        held.state.track();
        submit(held, Side::Fop, owned);
    })
}

/// Answers op_ret -1 with `errno` (NULL values, as any error reply) for a
/// frame the host never attached state to, leaving its local as it came.
///
/// # Safety
/// `frame` is the frame our fop entry was just given for `fop`, answered
/// by nobody else.
unsafe fn answer_unattached(fop: usize, frame: *mut ffi::call_frame_t, errno: i32) {
    let none = [glupy_slot_t { i: 0 }; MOST_CBK_ARGS];
    // SAFETY: by contract; `none` covers every callback argument (see
    // MOST_CBK_ARGS) and lives across the call.
    unsafe { ffi::glupy_unwind(fop as i32, frame, -1, errno, none.as_ptr(), (*frame).local) };
}

unsafe extern "C" fn on_cbk(
    fop: libc::c_int,
    frame: *mut ffi::call_frame_t,
    cookie: *mut libc::c_void,
    this: *mut ffi::xlator_t,
    op_ret: i32,
    op_errno: i32,
    args: *const glupy_slot_t,
) {
    let fop = fop as usize;
    guarded("a callback entry", (), || {
        // SAFETY: every glupy wind passes a WindCtx cookie, returned once.
        let WindCtx {
            child,
            awaited,
            made,
        } = *unsafe { WindCtx::from_cookie(cookie) };
        // SAFETY: our callbacks only answer frames our fop entry attached.
        let state = unsafe { FrameState::of(frame) };
        if let Some(made) = &made {
            // The name the translator's own wind made exists now.
            state.inst.tables.made_name(made);
        }
        // From here until the machine is told, a panic still answers.
        let mut arrival = Arrival {
            state: Arc::clone(&state),
            asynchronous: awaited.is_some(),
            awaited,
            told: false,
        };
        crate::fault::point(crate::fault::Point::CallbackEntry);
        if arrival.asynchronous {
            // A coroutine awaits this reply.
            // SAFETY: args holds this callback's arguments, live during this call.
            let owned = unsafe {
                convert::take_args(&FOPS[fop].cbk_args, args, op_ret, this, &state.inst.life)
            };
            let late = match arrival.awaited.take() {
                Some(Awaited::Future(future)) => Some((future, owned)),
                // Kept for the first step's wind, unless it returned first.
                Some(Awaited::Slot(slot)) => slot.reply(op_ret, op_errno, owned).err(),
                None => None,
            };
            if let Some((future, owned)) = late {
                resolve_later(&state, fop, op_ret, op_errno, owned, future);
            }
            arrival.told = true;
            state.async_reply();
            return;
        }
        // With no Python callback (or the translator shut down), the
        // reply goes up as it is.
        let callback = state.inst.cbk_methods[fop]
            .as_ref()
            .and_then(|_| state.reply_for_callback());
        // The machine took the reply: the callback's ticket (`Held`)
        // answers from here if it is let go unused, or `pass_up` does.
        arrival.told = true;
        let Some(held) = callback else {
            // SAFETY: args are the reply's own, live during this call.
            unsafe { state.pass_up(op_ret, op_errno, args) };
            return;
        };
        // SAFETY: args holds this callback's arguments, live during this call.
        let owned = unsafe {
            convert::take_args(&FOPS[fop].cbk_args, args, op_ret, this, &state.inst.life)
        };
        submit(
            held,
            Side::Cbk {
                child: child as usize,
                op_ret,
                op_errno,
            },
            owned,
        );
    })
}

/// A wind's reply in the callback entry, until the answering machine is
/// told of it (RAII). Dropped before that — by a panic unwinding through
/// the entry — it tells the machine the reply was lost, so the request is
/// still answered exactly once: a synchronous wind's request is answered
/// EIO; a coroutine's wind is counted back and its awaitable fails with
/// RuntimeError (the coroutine's answer, or a kept one, then goes).
struct Arrival {
    state: Arc<FrameState>,
    asynchronous: bool,
    /// How a coroutine awaits the reply, until it is handed over.
    awaited: Option<Awaited>,
    told: bool,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if self.told {
            return;
        }
        if !self.asynchronous {
            self.state.reply_lost(libc::EIO);
            return;
        }
        let future = match self.awaited.take() {
            Some(Awaited::Future(future)) => Some(future),
            Some(Awaited::Slot(slot)) => slot.lose(),
            None => None,
        };
        if let Some(future) = future {
            fail_later(future, FOPS[self.state.fop].name.as_str());
        }
        self.state.async_reply();
    }
}

/// Fails a coroutine's awaitable whose reply was lost (on a Python thread:
/// the caller may be GlusterFS's and hold no GIL).
fn fail_later(future: Py<PyAny>, fop: &'static str) {
    let job: pool::Job = Box::new(move || {
        Python::attach(|py| {
            let error = PyRuntimeError::new_err(format!(
                "the reply to this {fop} wind was lost by an internal error in glupy"
            ));
            let _ = py
                .import("glupy._aio")
                .and_then(|aio| aio.call_method1("fail", (future.bind(py), error.value(py))));
        })
    });
    // Without a pool there is no coroutine either: the future just goes.
    let _ = pool::submit_or_return(job);
}

/// Hands a reply to the coroutine awaiting it (as a `glupy.Reply`).
fn resolve_later(
    state: &Arc<FrameState>,
    fop: usize,
    op_ret: i32,
    op_errno: i32,
    owned: Taken,
    future: Py<PyAny>,
) {
    let inst = Arc::clone(&state.inst);
    let policy = inst.thread_policy();
    let job: pool::Job = Box::new(move || {
        logging::with_domain(&inst.name, || {
            Python::attach(|py| {
                let delivered = owned.into_python(py, &inst.owner()).and_then(|values| {
                    let reply = crate::step::new_reply(
                        py,
                        fop,
                        op_ret,
                        op_errno,
                        PyTuple::new(py, values)?,
                    )?;
                    crate::step::resolve(py, future.bind(py), reply)
                });
                if let Err(e) = delivered {
                    let _ =
                        aio::fail(py).and_then(|fail| fail.call1((future.bind(py), e.value(py))));
                }
            })
        })
    });
    // Back inside a wind from a coroutine's first step on this thread: the
    // future is resolved when the wind returns, under the GIL it takes back.
    if let Err(job) = threads::defer_while_winding(state.key(), threads::Deferred::Resolve, job) {
        threads::dispatch(policy, job);
    }
}

/// Queues the Python call; the job holds the turn's ticket (let go of
/// unused, it answers the request EIO).
fn submit(held: Held, side: Side, owned: Taken) {
    let policy = held.state.inst.thread_policy();
    let request = held.state.key();
    let mut job: pool::Job = Box::new(move || run(held, side, owned));
    if matches!(side, Side::Cbk { .. }) {
        match threads::defer_while_winding(request, threads::Deferred::Callback, job) {
            Ok(()) => return,
            Err(back) => job = back,
        }
    }
    // Not queued (only before the pool exists): the job is dropped, and
    // its ticket with it answers EIO.
    threads::dispatch(policy, job);
}

/// Runs the translator's method for one fop or callback.
fn run(held: Held, side: Side, owned: Taken) {
    let state = Arc::clone(&held.state);
    let ticket = held.ticket();
    let inst = Arc::clone(&state.inst);
    let fop = state.fop;
    // SAFETY: setting THIS for this thread to our live xlator, as GlusterFS
    // threads do, so allocations and log filtering are attributed to it; put
    // back after, since on an io-threads worker the thread is GlusterFS's.
    let previous_this = unsafe { std::mem::replace(&mut *ffi::glupy_this_location(), inst.xl) };
    let _restore = RestoreThis(previous_this);
    // Answers decided in the call are performed after it (after_call.rs).
    logging::with_domain(&inst.name, || {
        after_call::python_call(&state, |py| {
            // The Frame takes the ticket: if it cannot be built, the ticket
            // goes with it and answers EIO (logged as dropped).
            let frame = match Py::new(py, Frame::new(held)) {
                Ok(f) => f,
                Err(e) => {
                    report(py, &state, ticket, &e, "building the frame");
                    return;
                }
            };
            let owner = inst.owner();
            // Inline for the values that follow (no allocation per call up
            // to a create callback's twelve), with a free slot first for a
            // bound method's self (see `call_vector`).
            let frame_obj = frame.into_any();
            let mut call_args: SmallVec<[Option<Py<PyAny>>; 12]> = SmallVec::new();
            call_args.extend([None, Some(frame_obj.clone_ref(py))]);
            let (method, what) = match side {
                Side::Fop => {
                    call_args.push(Some(inst.this_obj.clone_ref(py).into_any()));
                    (inst.fop_methods[fop].as_ref(), "fop")
                }
                Side::Cbk {
                    child,
                    op_ret,
                    op_errno,
                } => {
                    call_args.extend([
                        Some(child_name(py, &inst, child)),
                        Some(inst.this_obj.clone_ref(py).into_any()),
                        Some(
                            op_ret
                                .into_pyobject(py)
                                .map(|v| v.into_any().unbind())
                                .unwrap_or_else(|_| py.None()),
                        ),
                        Some(
                            op_errno
                                .into_pyobject(py)
                                .map(|v| v.into_any().unbind())
                                .unwrap_or_else(|_| py.None()),
                        ),
                    ]);
                    (inst.cbk_methods[fop].as_ref(), "cbk")
                }
            };
            let Some(method) = method else { return };
            if let Err(e) = owned.push_python(py, &owner, |value| call_args.push(Some(value))) {
                report(py, &state, ticket, &e, "converting arguments");
                return;
            }
            let stats = &inst.stats[fop];
            // Python's own time: without the winds and unwinds it made
            // (the child's and the parents' time, see outside_python).
            let (started, outside) = (Instant::now(), threads::outside_ns());
            let result = call_vector(py, method, &mut call_args);
            // The arguments' references go now, as a tuple's would.
            drop(call_args);
            let elapsed = started.elapsed().as_nanos() as u64;
            let own = elapsed.saturating_sub(threads::outside_ns().wrapping_sub(outside));
            stats.python_ns.fetch_add(own, Ordering::Relaxed);
            stats.python_calls.fetch_add(1, Ordering::Relaxed);
            let outcome = result.and_then(|ret| {
                if ret.is_none(py) || !is_coroutine(py, ret.bind(py))? {
                    return Ok(());
                }
                // An async def method: the host's event loop runs it.
                state
                    .set_asynchronous(ticket)
                    .map_err(|why| PyRuntimeError::new_err(why.message(&FOPS[fop].name)))?;
                // Its first step runs here, where a sync method would run
                // (unless the loop is busy: then the loop runs all of it).
                let translator = inst.translator.bind(py);
                let here = crate::step::first_step(
                    py,
                    &inst,
                    ret.bind(py),
                    frame_obj.bind(py),
                    translator,
                )?;
                if !here {
                    aio::submit(py)?.call1((ret, frame_obj, translator))?;
                }
                Ok(())
            });
            if let Err(e) = outcome {
                report(
                    py,
                    &state,
                    ticket,
                    &e,
                    &format!("{}_{what}", FOPS[fop].name),
                );
            }
        })
    });
}

/// Calls `method` with `slots[1..]` as positional arguments by vectorcall:
/// no argument tuple is made and freed per call, and `slots[0]`, empty,
/// lets a bound method put its self there for the call instead of copying
/// the arguments into a new array (CPython does so past four of them).
fn call_vector(
    py: Python<'_>,
    method: &Py<PyAny>,
    slots: &mut [Option<Py<PyAny>>],
) -> PyResult<Py<PyAny>> {
    let well_formed = matches!(slots.first(), Some(None)) && slots[1..].iter().all(Option::is_some);
    if !well_formed {
        return Err(PyRuntimeError::new_err("malformed call arguments"));
    }
    let count = slots.len() - 1;
    // SAFETY: the GIL is held (`py`). `Option<Py<PyAny>>` has the layout of
    // a nullable object pointer (pyo3 documents `Py<T>` as a non-null
    // pointer, and `Option` of one is the null niche), so from the second
    // slot on there are `count` owned, non-null references that outlive the
    // call (borrowed by it). The pointer is taken from the whole of `slots`,
    // mutably borrowed: PY_VECTORCALL_ARGUMENTS_OFFSET lets the callee write
    // the slot before the arguments, our empty first one, for the duration
    // of the call; CPython writes a borrowed self there and puts the NULL
    // back before it returns. No keyword names. The result is a new
    // reference, or NULL with an exception set, which
    // `from_owned_ptr_or_err` takes as such.
    unsafe {
        let args = slots.as_mut_ptr().add(1);
        let ret = pyo3::ffi::PyObject_Vectorcall(
            method.as_ptr(),
            args.cast::<*mut pyo3::ffi::PyObject>(),
            count | pyo3::ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            std::ptr::null_mut(),
        );
        // A callee that broke vectorcall's contract and left its borrowed
        // self in the free slot: never released as if it were ours.
        if let Some(stray) = slots[0].take() {
            std::mem::forget(stray);
        }
        Bound::from_owned_ptr_or_err(py, ret).map(Bound::unbind)
    }
}

// `call_vector` passes `Option<Py<PyAny>>` slots as object pointers.
const _: () = assert!(
    std::mem::size_of::<Option<Py<PyAny>>>() == std::mem::size_of::<*mut pyo3::ffi::PyObject>()
);

struct RestoreThis(*mut ffi::xlator_t);

impl Drop for RestoreThis {
    fn drop(&mut self) {
        // SAFETY: writing back the value this thread's THIS had.
        unsafe { *ffi::glupy_this_location() = self.0 };
    }
}

#[cfg(test)]
#[test]
fn no_callback_has_more_arguments_than_a_decided_answer_carries() {
    assert!(FOPS.iter().all(|f| f.cbk_args.len() <= MOST_CBK_ARGS));
}

/// The name of the child a reply comes from: the callback's `cookie`.
fn child_name(py: Python<'_>, inst: &Instance, child: usize) -> Py<PyAny> {
    let xl = child as *mut ffi::xlator_t;
    if xl.is_null() {
        return py.None();
    }
    if let Some(name) = inst.child_name(py, child) {
        return name;
    }
    // SAFETY: the child we wound to is part of our live graph.
    let name = unsafe { std::ffi::CStr::from_ptr((*xl).name) }
        .to_string_lossy()
        .into_owned();
    name.into_pyobject(py)
        .map(|s| s.into_any().unbind())
        .unwrap_or_else(|_| py.None())
}

fn is_coroutine(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    crate::step::is_coroutine(py, value)
}

/// Answers a request whose Python code raised, as the answering machine
/// allows: FopError/OSError carry the errno to answer; anything else is a
/// bug in the translator, logged with its traceback and answered EIO. A
/// method that raised after winding does not answer: the wind's reply does
/// (answer.rs, rule 3).
fn report(py: Python<'_>, state: &Arc<FrameState>, ticket: Ticket, err: &PyErr, what: &str) {
    let inst = &state.inst;
    let errno = crate::interp::errno_of(py, err);
    // Decided first, logged, then answered: the log line comes before the reply.
    let decision = state.decide(ticket, Answer::Error(errno.unwrap_or(libc::EIO)));
    let (level, message) = match (&decision, errno) {
        (Ok(_), Some(_)) => (None, String::new()),
        (Ok(_), None) => (
            Some(logging::GF_LOG_ERROR),
            format!("{what} raised; the request is answered EIO."),
        ),
        (Err(Refusal::Answered), Some(e)) => (
            Some(logging::GF_LOG_WARNING),
            format!("{what} raised errno {e} after the request was answered; ignored"),
        ),
        (Err(Refusal::Answered), None) => (
            Some(logging::GF_LOG_ERROR),
            format!("{what} raised after the request was answered; ignored."),
        ),
        (Err(_), Some(e)) => (
            Some(logging::GF_LOG_WARNING),
            format!("{what} raised errno {e} after winding; the child's reply answers the request"),
        ),
        (Err(_), None) => (
            Some(logging::GF_LOG_ERROR),
            format!("{what} raised after winding; the child's reply answers the request."),
        ),
    };
    if errno.is_none() {
        inst.stats[state.fop]
            .exceptions
            .fetch_add(1, Ordering::Relaxed);
    }
    if let Some(level) = level {
        let traceback = if errno.is_none() {
            format!(" {}", crate::interp::format_exception(py, err))
        } else {
            String::new()
        };
        logging::write(
            &inst.name,
            level,
            &format!("{} {message}{traceback}", inst.module),
        );
    }
    if let Ok(go) = decision {
        if let Some(go) = after_call::keep(state, go) {
            let answering = Arc::clone(state);
            threads::outside_python(|| py.detach(move || answering.perform(go)));
        }
    }
}
