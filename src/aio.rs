//! The host's calls into `glupy._aio` (python/glupy/_aio.py) and asyncio,
//! looked up once per process: the module is the process's, never reloaded,
//! and the interpreter is never finalized.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

macro_rules! looked_up_once {
    ($($fn:ident => $module:literal . $attr:literal;)*) => {$(
        pub fn $fn(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
            static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            CELL.import(py, $module, $attr)
        }
    )*};
}

looked_up_once! {
    event_loop => "glupy._aio"."loop";
    submit => "glupy._aio"."submit";
    run => "glupy._aio"."_run";
    settled => "glupy._aio"."_settled";
    track => "glupy._aio"."_track";
    task_context => "glupy._aio"."task_context";
    new_future => "glupy._aio"."new_future";
    resolve => "glupy._aio"."resolve";
    fail => "glupy._aio"."fail";
    reply => "glupy._aio"."Reply";
    iscoroutine => "asyncio"."iscoroutine";
}

/// An attribute an asyncio object holds itself, read from its `__dict__`
/// (`attrs`) without an attribute lookup; `owner` names it in the error.
pub fn own_attr<'py>(
    attrs: &Bound<'py, PyDict>,
    name: &Bound<'py, PyString>,
    owner: &str,
) -> PyResult<Bound<'py, PyAny>> {
    attrs.get_item(name)?.ok_or_else(|| {
        pyo3::exceptions::PyAttributeError::new_err(format!(
            "glupy: {owner} has no attribute {name} (a Python whose asyncio differs?)"
        ))
    })
}
