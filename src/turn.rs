//! The glupy event loop's turn: who may run the loop's work right now (the
//! loop thread outside select, or a coroutine's first step, src/step.rs).

use pyo3::prelude::*;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

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
    pub fn take(&self, py: Python<'_>, wait: Option<f64>) -> bool {
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
            let Ok(state) = self.state.lock() else {
                return false;
            };
            let waited = match wait {
                None => self.given_back.wait_while(state, |s| s.held).ok(),
                Some(wait) => self
                    .given_back
                    .wait_timeout_while(state, Duration::from_secs_f64(wait), |s| s.held)
                    .ok()
                    .map(|(s, _)| s),
            };
            // (poisoned: no thread panics holding it)
            let Some(mut state) = waited else {
                return false;
            };
            let taken = !state.held;
            state.held = true;
            state.waiting -= 1;
            taken
        })
    }

    /// Gives the turn back; false if it was not held.
    pub fn give_back(&self) -> bool {
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
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: f64) -> PyResult<bool> {
        use pyo3::exceptions::{PyOverflowError, PyValueError};
        let wait = match (blocking, timeout) {
            (false, t) if t != -1.0 => {
                return Err(PyValueError::new_err(
                    "can't specify a timeout for a non-blocking call",
                ))
            }
            (false, _) => Some(0.0),
            (true, -1.0) => None,
            (true, t) if t.is_nan() || t < 0.0 => {
                return Err(PyValueError::new_err(
                    "timeout value must be a non-negative number",
                ))
            }
            // (threading's own limit is about 292 years; a day of waiting
            // for the turn is a hang by then)
            (true, t) if t > 1e9 => {
                return Err(PyOverflowError::new_err("timeout value is too large"))
            }
            (true, t) => Some(t),
        };
        Ok(self.take(py, wait))
    }

    fn __enter__(&self, py: Python<'_>) -> bool {
        self.take(py, None)
    }

    fn __exit__(
        &self,
        _kind: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.release()
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
