//! Where the reply to a coroutine's wind goes. A wind made on the event
//! loop hands its reply to an asyncio future. A wind of a coroutine's first
//! step (src/step.rs), wound on the calling thread, usually has its reply
//! back before the wind returns (a child below io-threads answers inline):
//! the callback entry keeps it in the wind's `ReplySlot`, without the GIL,
//! and the wind returns it as the result of a future made then, with no job
//! deferred to resolve it through the loop (issue 14: an `async def` fop at
//! the cost of a sync one). A reply that is not back when the wind returns
//! resolves that future when it comes, as any other.

use crate::convert::Taken;
use crate::instance::Instance;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::{Arc, Mutex, MutexGuard};

/// How a coroutine awaits a wind's reply (carried in the wind's cookie).
pub enum Awaited {
    /// A future of the event loop, resolved through the loop.
    Future(Py<PyAny>),
    /// A wind of a first step on this thread (see the module's doc).
    Slot(Arc<ReplySlot>),
}

impl Awaited {
    /// Another handle to the same future or slot (the wind keeps one, its
    /// cookie carries the other).
    pub fn clone_ref(&self, py: Python<'_>) -> Awaited {
        match self {
            Awaited::Future(future) => Awaited::Future(future.clone_ref(py)),
            Awaited::Slot(slot) => Awaited::Slot(Arc::clone(slot)),
        }
    }
}

/// A first step's wind, between its callback entry (any thread, no GIL)
/// and its return (the winding thread, GIL and loop's turn held again).
#[derive(Default)]
pub struct ReplySlot(Mutex<Slot>);

#[derive(Default)]
enum Slot {
    /// Neither the reply nor the wind's return yet.
    #[default]
    Waiting,
    /// The reply came first, its values taken from C.
    Replied {
        op_ret: i32,
        op_errno: i32,
        values: Taken,
    },
    /// The reply was lost (a panic in the callback entry).
    Lost,
    /// The wind returned first: the reply resolves this future.
    Future(Py<PyAny>),
    /// The wind returned and took what was here.
    Taken,
}

impl ReplySlot {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        // Nothing panics while holding it: a poisoned lock's data is whole.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The callback entry's reply: kept for the wind's return, or handed
    /// back with the future to resolve if the wind returned first.
    pub fn reply(
        &self,
        op_ret: i32,
        op_errno: i32,
        values: Taken,
    ) -> Result<(), (Py<PyAny>, Taken)> {
        let mut slot = self.slot();
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Waiting => {
                *slot = Slot::Replied {
                    op_ret,
                    op_errno,
                    values,
                };
                Ok(())
            }
            Slot::Future(future) => Err((future, values)),
            // One reply per wind: nothing else can be here.
            other => {
                *slot = other;
                Ok(())
            }
        }
    }

    /// The callback entry lost the reply: the future to fail, if the wind
    /// returned first; else its return raises.
    pub fn lose(&self) -> Option<Py<PyAny>> {
        let mut slot = self.slot();
        match std::mem::replace(&mut *slot, Slot::Lost) {
            Slot::Future(future) => Some(future),
            _ => None,
        }
    }

    /// The wind returned (this thread holds the GIL and the loop's turn):
    /// the future the coroutine awaits, made by `new_future` (no Python
    /// runs holding the slot's lock). A reply already back is made a
    /// `glupy.Reply` and set as its result here; else the reply will
    /// resolve it through the loop.
    pub fn awaitable(
        &self,
        py: Python<'_>,
        inst: &Instance,
        fop: usize,
        new_future: impl FnOnce() -> PyResult<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let future = new_future();
        let mut slot = self.slot();
        let taken = std::mem::replace(&mut *slot, Slot::Taken);
        let (future, (op_ret, op_errno, values)) = match (future, taken) {
            (
                Ok(future),
                Slot::Replied {
                    op_ret,
                    op_errno,
                    values,
                },
            ) => (future, (op_ret, op_errno, values)),
            (Ok(future), Slot::Waiting) => {
                *slot = Slot::Future(future.clone_ref(py));
                return Ok(future);
            }
            // No future for a reply that comes later: it is let go then.
            (Err(e), Slot::Waiting) => return Err(e),
            (Err(e), Slot::Replied { .. }) => {
                drop(slot);
                return Err(e); // the reply's values are released here
            }
            (_, Slot::Lost) => {
                *slot = Slot::Lost;
                return Err(PyRuntimeError::new_err(format!(
                    "the reply to this {} wind was lost by an internal error in glupy",
                    crate::fops::FOPS[fop].name
                )));
            }
            (_, other) => {
                *slot = other;
                return Err(PyRuntimeError::new_err(
                    "glupy: a first step's wind returned twice",
                ));
            }
        };
        drop(slot);
        let values = values.into_python(py, &inst.owner())?;
        let reply = crate::step::new_reply(py, fop, op_ret, op_errno, PyTuple::new(py, values)?)?;
        future
            .bind(py)
            .call_method1(pyo3::intern!(py, "set_result"), (reply,))?;
        Ok(future)
    }
}
