//! The two hooks every generated fop and callback entry calls, and the
//! jobs that run Python for them on the pool's threads.

use crate::convert::{self, Owned};
use crate::ffi::{self, glupy_slot_t};
use crate::fops::FOPS;
use crate::frame::{Frame, FrameState, Phase, WindCtx};
use crate::guard::guarded;
use crate::instance::Instance;
use crate::{logging, pool, threads};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub fn install_hooks() {
    // SAFETY: sets two function pointers the shim reads; both functions
    // have the signatures the shim declares.
    unsafe { ffi::glupy_set_hooks(Some(on_fop), Some(on_cbk), Some(crate::events::on_notify)) };
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
            let none = convert::Outgoing::empty(FOPS[fop].cbk_args.len());
            // SAFETY: answering the frame we were given, with NULL values.
            unsafe { ffi::glupy_unwind(fop as i32, frame, -1, libc::EIO, none.as_ptr()) };
            return;
        };
        inst.stats[fop].calls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: a frame reaching our fop entry is ours, with NULL local.
        let state = unsafe { FrameState::attach(frame, fop, Arc::clone(&inst)) };
        if inst.fop_methods[fop].is_none() {
            // Only the callback is in Python: wind on untouched, no Python.
            let _ = state.begin_wind(&FOPS[fop].name);
            // SAFETY: this is our live xlator.
            let child = unsafe { ffi::glupy_first_child(this) };
            let cookie = WindCtx {
                child,
                future: None,
            }
            .into_cookie();
            // SAFETY: winding our own frame with the arguments we were given.
            unsafe { ffi::glupy_wind(fop as i32, frame, child, cookie, args) };
            state.release_owner();
            return;
        }
        // SAFETY: args holds this fop's arguments, live during this call.
        let owned = unsafe { convert::take_args(&FOPS[fop].args, args, 0) };
        submit(state, Side::Fop, owned);
    })
}

unsafe extern "C" fn on_cbk(
    fop: libc::c_int,
    frame: *mut ffi::call_frame_t,
    cookie: *mut libc::c_void,
    _this: *mut ffi::xlator_t,
    op_ret: i32,
    op_errno: i32,
    args: *const glupy_slot_t,
) {
    let fop = fop as usize;
    guarded("a callback entry", (), || {
        // SAFETY: every glupy wind passes a WindCtx cookie, returned once.
        let wind = unsafe { WindCtx::from_cookie(cookie) };
        // SAFETY: our callbacks only answer frames our fop entry attached.
        let state = unsafe { FrameState::of(frame) };
        if let Some(future) = wind.future {
            // A coroutine awaits this reply.
            // SAFETY: args holds this callback's arguments, live during this call.
            let owned = unsafe { convert::take_args(&FOPS[fop].cbk_args, args, op_ret) };
            state.end_wind(false);
            resolve_later(state, fop, op_ret, op_errno, owned, future);
            return;
        }
        if state.inst.cbk_methods[fop].is_none() {
            // No Python callback: pass the reply up as it is.
            state.end_wind(false);
            if state.advance(Phase::Pending, Phase::Answered) {
                // SAFETY: we won the transition; args are the reply's own.
                unsafe { state.finish_unwind(op_ret, op_errno, args) };
            }
            return;
        }
        state.end_wind(true);
        // SAFETY: args holds this callback's arguments, live during this call.
        let owned = unsafe { convert::take_args(&FOPS[fop].cbk_args, args, op_ret) };
        submit(
            state,
            Side::Cbk {
                child: wind.child as usize,
                op_ret,
                op_errno,
            },
            owned,
        );
    })
}

/// Hands a reply to the coroutine awaiting it (as a `glupy.Reply`).
fn resolve_later(
    state: Arc<FrameState>,
    fop: usize,
    op_ret: i32,
    op_errno: i32,
    owned: Vec<Owned>,
    future: Py<PyAny>,
) {
    let policy = state.inst.thread_policy();
    threads::dispatch(
        policy,
        Box::new(move || {
            let inst = Arc::clone(&state.inst);
            logging::with_domain(&inst.name, || {
                Python::attach(|py| {
                    let live = Arc::new(AtomicBool::new(true));
                    let values: PyResult<Vec<Py<PyAny>>> = owned
                        .into_iter()
                        .map(|v| convert::to_python(py, v, inst.owner(), &live))
                        .collect();
                    let delivered = values.and_then(|values| {
                        let aio = py.import("glupy._aio")?;
                        let reply = aio.getattr("Reply")?.call1((
                            FOPS[fop].name.as_str(),
                            op_ret,
                            op_errno,
                            PyTuple::new(py, values)?,
                        ))?;
                        aio.call_method1("resolve", (future.bind(py), reply))
                    });
                    if let Err(e) = delivered {
                        let _ = py.import("glupy._aio").and_then(|aio| {
                            aio.call_method1("fail", (future.bind(py), e.value(py)))
                        });
                    }
                })
            })
        }),
    );
}

/// Queues the Python call; the job owns one owner count of `state`.
fn submit(state: Arc<FrameState>, side: Side, owned: Vec<Owned>) {
    let job_state = Arc::clone(&state);
    let policy = state.inst.thread_policy();
    let mut job: pool::Job = Box::new(move || run(job_state, side, owned));
    if matches!(side, Side::Cbk { .. }) {
        match threads::defer_while_winding(job) {
            Ok(()) => return,
            Err(back) => job = back,
        }
    }
    if !threads::dispatch(policy, job) {
        // Only possible before the pool exists; never leave a request hanging.
        if state.advance(Phase::Pending, Phase::Answered) {
            state.answer_error(libc::EIO);
        }
        state.release_owner();
    }
}

/// Runs the translator's method for one fop or callback.
fn run(state: Arc<FrameState>, side: Side, owned: Vec<Owned>) {
    let inst = Arc::clone(&state.inst);
    let fop = state.fop;
    // SAFETY: setting THIS for this thread to our live xlator, as GlusterFS
    // threads do, so allocations and log filtering are attributed to it; put
    // back after, since on an io-threads worker the thread is GlusterFS's.
    let previous_this = unsafe { std::mem::replace(&mut *ffi::glupy_this_location(), inst.xl) };
    let _restore = RestoreThis(previous_this);
    logging::with_domain(&inst.name, || {
        Python::attach(|py| {
            let frame = match Py::new(py, Frame::adopt(Arc::clone(&state))) {
                Ok(f) => f,
                Err(e) => {
                    report(py, &state, &e, "building the frame");
                    state.release_owner();
                    return;
                }
            };
            let live = Arc::new(AtomicBool::new(true));
            let owner = inst.owner();
            let (method, what, mut call_args) = match side {
                Side::Fop => (
                    inst.fop_methods[fop].as_ref(),
                    "fop",
                    vec![frame.into_any(), inst.this_obj.clone_ref(py).into_any()],
                ),
                Side::Cbk {
                    child,
                    op_ret,
                    op_errno,
                } => (
                    inst.cbk_methods[fop].as_ref(),
                    "cbk",
                    vec![
                        frame.into_any(),
                        child_name(py, child),
                        inst.this_obj.clone_ref(py).into_any(),
                        op_ret
                            .into_pyobject(py)
                            .map(|v| v.into_any().unbind())
                            .unwrap_or_else(|_| py.None()),
                        op_errno
                            .into_pyobject(py)
                            .map(|v| v.into_any().unbind())
                            .unwrap_or_else(|_| py.None()),
                    ],
                ),
            };
            let Some(method) = method else { return };
            for value in owned {
                match convert::to_python(py, value, owner.clone(), &live) {
                    Ok(v) => call_args.push(v),
                    Err(e) => {
                        report(py, &state, &e, "converting arguments");
                        return;
                    }
                }
            }
            let frame_obj = call_args[0].clone_ref(py);
            let stats = &inst.stats[fop];
            let started = Instant::now();
            let result = PyTuple::new(py, call_args).and_then(|args| method.call1(py, args));
            stats
                .python_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            stats.python_calls.fetch_add(1, Ordering::Relaxed);
            live.store(false, Ordering::Release);
            let outcome = result.and_then(|ret| {
                if ret.is_none(py) || !is_coroutine(py, ret.bind(py))? {
                    return Ok(());
                }
                // An async def method: the host's event loop runs it.
                state.set_asynchronous();
                let aio = py.import("glupy._aio")?;
                aio.call_method1("submit", (ret, frame_obj, inst.translator.clone_ref(py)))?;
                Ok(())
            });
            if let Err(e) = outcome {
                report(py, &state, &e, &format!("{}_{what}", FOPS[fop].name));
            }
        })
    });
}

struct RestoreThis(*mut ffi::xlator_t);

impl Drop for RestoreThis {
    fn drop(&mut self) {
        // SAFETY: writing back the value this thread's THIS had.
        unsafe { *ffi::glupy_this_location() = self.0 };
    }
}

/// The name of the child a reply comes from: the callback's `cookie`.
fn child_name(py: Python<'_>, child: usize) -> Py<PyAny> {
    let xl = child as *mut ffi::xlator_t;
    if xl.is_null() {
        return py.None();
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
    py.import("asyncio")?
        .call_method1("iscoroutine", (value,))?
        .extract()
}

/// Answers a request whose Python code raised: FopError/OSError carry the
/// errno to answer; anything else is a bug in the translator, logged with
/// its traceback and answered EIO.
fn report(py: Python<'_>, state: &Arc<FrameState>, err: &PyErr, what: &str) {
    let inst = &state.inst;
    let errno = crate::interp::errno_of(py, err);
    if errno.is_none() {
        inst.stats[state.fop]
            .exceptions
            .fetch_add(1, Ordering::Relaxed);
        logging::write(
            &inst.name,
            logging::GF_LOG_ERROR,
            &format!(
                "{} {what} raised; the request is answered EIO. {}",
                inst.module,
                crate::interp::format_exception(py, err)
            ),
        );
    }
    if state.advance(Phase::Pending, Phase::Answered) {
        let state = Arc::clone(state);
        let errno = errno.unwrap_or(libc::EIO);
        py.detach(move || state.answer_error(errno));
    } else if let Some(e) = errno {
        logging::write(
            &inst.name,
            logging::GF_LOG_WARNING,
            &format!(
                "{} {what} raised errno {e} after the frame was already wound or answered; ignored",
                inst.module
            ),
        );
    }
}
