//! The answer to the request a translator's Python call is for waits on its
//! thread until the call is over and the GIL let go, and is performed then.
//!
//! So GlusterFS's unwind (the parents' callbacks, the reply written to the
//! socket) never runs inside Python, and it costs no GIL hand-off: a fop
//! whose callback ran when its wind returned takes the GIL twice (the call,
//! and back from the wind), not a third time after its answer. The answer's
//! values hold no Python object (see `Outgoing`), so nothing of Python is
//! left to drop after it. In a coroutine's first step, which holds the event
//! loop's turn, every answer waits so (the unwind never runs holding the
//! turn). Other answers go at once: a translator that answers a request it
//! kept and then waits for its effect (as features/locks grants a waiting
//! lock) is not kept waiting for its own return.

use crate::answer::{Answer, Go};
use crate::ffi;
use crate::frame::{FrameState, Reply};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;

/// A Python call of the host's on this thread: the request it is for, and
/// the answers kept until it is over, with the state they are for.
struct Call {
    request: Arc<FrameState>,
    kept: Vec<(Arc<FrameState>, Go<Reply>)>,
}

thread_local! {
    /// Open (Some) while this thread runs a translator's Python call for
    /// the host; taken out (None) while a wind made in it runs GlusterFS's
    /// code below, so that a call nested there keeps its own.
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
}

/// Whether this thread holds the GIL.
pub fn gil_held() -> bool {
    // SAFETY: both only read the interpreter's and this thread's state.
    unsafe { pyo3::ffi::Py_IsInitialized() != 0 && pyo3::ffi::PyGILState_Check() == 1 }
}

/// Runs `job` with the GIL let go: on this thread, which may hold it (a
/// host job run from inside Python) or not.
pub fn without_gil(job: impl FnOnce() + Send) {
    if gil_held() {
        Python::attach(|py| py.detach(job));
    } else {
        job();
    }
}

/// Runs `call` (a host job that calls a translator's method for `request`)
/// with the GIL, then, the GIL let go, performs the answers kept during it,
/// however it ends (a panic included). Inside a call of this thread for
/// the same request already (a callback run when its fop's wind returned),
/// its answers join that one's; inside one for another request (a parent
/// translator's callback run by an answer performed at once), it keeps its
/// own, and the outer call's are put back after.
pub fn python_call<T>(request: &Arc<FrameState>, call: impl FnOnce(Python<'_>) -> T) -> T {
    let same = CALL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|open| Arc::ptr_eq(&open.request, request))
    });
    if same {
        return Python::attach(call);
    }
    let call = |py: Python<'_>| crate::step::beside_a_paused_step(py, call);
    let outer = CALL.with(|c| {
        c.borrow_mut().replace(Call {
            request: Arc::clone(request),
            kept: Vec::new(),
        })
    });
    let _end = CallEnd(outer);
    Python::attach(call)
}

/// Ends a call: performs its answers, then puts back the call it was
/// nested in, if any.
struct CallEnd(Option<Call>);

impl Drop for CallEnd {
    fn drop(&mut self) {
        let outer = self.0.take();
        let kept = CALL
            .with(|c| std::mem::replace(&mut *c.borrow_mut(), outer))
            .map(|call| call.kept)
            .unwrap_or_default();
        if kept.is_empty() {
            return;
        }
        let perform = move || {
            for (state, go) in kept {
                let go = outlived_its_graph(&state, go);
                crate::guard::guarded("an answer", (), || state.perform(go));
                // Counted from `keep` (see there).
                state.inst.unwound();
            }
        };
        // The job may have run with the GIL already held (a reply's
        // callback run by a wind that did not come from a call of ours).
        without_gil(perform);
    }
}

/// A kept answer whose call outlived the graph's end (the method went on
/// after answering, past PARENT_DOWN's wait or into fini), or a queued one
/// whose pool thread came after it (`frame::perform_later`): a reply's
/// values are of the graph that went away, so it becomes an error, as a
/// reply waiting for winds does at shutdown (`Control::shut_down`). Its
/// values are left alone (leaked): releasing them would touch memory of
/// the gone graph (dicts are freed through its xlator's accounting).
pub fn outlived_its_graph(state: &FrameState, go: Go<Reply>) -> Go<Reply> {
    if state.inst.life.alive() {
        return go;
    }
    match go {
        Go::Answer(Answer::Reply(reply)) => {
            std::mem::forget(reply);
            crate::logging::write(
                &state.inst.name,
                crate::logging::GF_LOG_WARNING,
                &format!(
                    "{}: a {} answer was given before the translator's graph ended, but could go \
                     up only after (its method went on, or the Python threads were busy); answered \
                     EIO (return soon after answering)",
                    state.inst.module,
                    crate::fops::FOPS[state.fop].name
                ),
            );
            Go::Answer(Answer::Error(libc::EIO))
        }
        other => other,
    }
}

/// Keeps `go` for the end of this thread's call if it answers the call's
/// own request, or any while a first step holds the loop's turn; gives it
/// back otherwise (then the caller performs it). A kept answer counts as
/// going up the graph already: the graph's end waits for it (bounded) as
/// for an unwind, so it never unwinds into a graph that went away.
pub fn keep(state: &Arc<FrameState>, go: Go<Reply>) -> Option<Go<Reply>> {
    if go.is_nothing() {
        return None;
    }
    CALL.with(|c| match c.borrow_mut().as_mut() {
        Some(call) if Arc::ptr_eq(&call.request, state) || crate::step::holds_turn() => {
            state.inst.unwinding();
            call.kept.push((Arc::clone(state), go));
            None
        }
        _ => Some(go),
    })
}

/// RuntimeError if an answer this thread keeps for the end of its call
/// carries `dict`: changed now, it would change what was answered before
/// (the answer goes up with the dict itself, not a copy).
pub fn refuse_change_of_answered(dict: *mut ffi::dict_t) -> PyResult<()> {
    let carried = CALL.with(|c| {
        c.borrow().as_ref().is_some_and(|call| {
            call.kept.iter().any(|(_, go)| {
                matches!(go, Go::Answer(Answer::Reply((_, _, out))) if out.carries_dict(dict.cast()))
            })
        })
    });
    if carried {
        return Err(PyRuntimeError::new_err(
            "this Dict is part of an answer given in this call, which goes up when the method \
             returns: change a copy (d.copy()) instead",
        ));
    }
    Ok(())
}

/// Runs `wind` (GlusterFS's code below a wind of this thread's call) with
/// the call's answers set aside: a call nested below keeps its own.
pub fn set_aside<T>(wind: impl FnOnce() -> T) -> T {
    struct PutBack(Option<Call>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            let outer = self.0.take();
            CALL.with(|c| *c.borrow_mut() = outer);
        }
    }
    let _back = PutBack(CALL.with(|c| c.borrow_mut().take()));
    wind()
}
