//! The host's calls into `glupy._aio` (python/glupy/_aio.py) and asyncio,
//! looked up once per process: the module is the process's, never reloaded,
//! and the interpreter is never finalized.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

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
