//! The fields of a `glupy.Reply` (python/glupy/_aio.py subclasses this
//! with its methods): a wind's reply in a coroutine, and what a coroutine
//! returns to answer. Native so that the host makes one per wind and reads
//! one per answer without a Python call or an attribute lookup: as a Python
//! class with slots, those cost more than the rest of a first step's glue
//! (issue 14).

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

/// `fop`, `op_ret`, `op_errno` and `args` (the callback's other arguments,
/// in its order), each settable as a slot of the Python class was.
#[pyclass(subclass, module = "glupy._glupy")]
pub struct ReplyFields {
    #[pyo3(get, set)]
    fop: Py<PyAny>,
    #[pyo3(get, set)]
    op_ret: Py<PyAny>,
    #[pyo3(get, set)]
    op_errno: Py<PyAny>,
    #[pyo3(get, set)]
    args: Py<PyAny>,
}

/// What the host reads of a reply to answer with it.
pub struct Answering<'py> {
    pub fop: Bound<'py, PyAny>,
    pub op_ret: Bound<'py, PyAny>,
    pub op_errno: Bound<'py, PyAny>,
    pub args: Bound<'py, PyAny>,
}

#[pymethods]
impl ReplyFields {
    /// `args` is any iterable (kept as a tuple).
    #[new]
    fn new(
        fop: Py<PyAny>,
        op_ret: Py<PyAny>,
        op_errno: Py<PyAny>,
        args: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let args = match args.cast_exact::<PyTuple>() {
            Ok(tuple) => tuple.clone().into_any(),
            Err(_) => args.py().get_type::<PyTuple>().call1((args,))?,
        };
        Ok(ReplyFields {
            fop,
            op_ret,
            op_errno,
            args: args.unbind(),
        })
    }

    /// For copy and pickle: the arguments `__new__` takes.
    fn __getnewargs__(&self, py: Python<'_>) -> (Py<PyAny>, Py<PyAny>, Py<PyAny>, Py<PyAny>) {
        (
            self.fop.clone_ref(py),
            self.op_ret.clone_ref(py),
            self.op_errno.clone_ref(py),
            self.args.clone_ref(py),
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fop)?;
        visit.call(&self.op_ret)?;
        visit.call(&self.op_errno)?;
        visit.call(&self.args)
    }

    /// The collector found a cycle through this reply: its values go (as
    /// a Python object's slots would be cleared).
    fn __clear__(&mut self) {
        Python::attach(|py| {
            let none = py.None();
            self.args = none.clone_ref(py);
            self.op_ret = none.clone_ref(py);
            self.op_errno = none.clone_ref(py);
            self.fop = none;
        });
    }
}

/// The fields of `value` if it is a reply (a `glupy.Reply`, or another
/// subclass of these fields).
pub fn read<'py>(value: &Bound<'py, PyAny>) -> Option<Answering<'py>> {
    let fields = value.cast::<ReplyFields>().ok()?.try_borrow().ok()?;
    let py = value.py();
    Some(Answering {
        fop: fields.fop.bind(py).clone(),
        op_ret: fields.op_ret.bind(py).clone(),
        op_errno: fields.op_errno.bind(py).clone(),
        args: fields.args.bind(py).clone(),
    })
}
