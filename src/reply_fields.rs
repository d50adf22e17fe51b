//! The fields of a `glupy.Reply` (python/glupy/_aio.py subclasses this
//! with its `__init__` and methods): a wind's reply in a coroutine, and what
//! a coroutine returns to answer. Native so that the host makes one per
//! wind and reads one per answer without a Python call or an attribute
//! lookup: as a Python class with slots, those cost more than the rest of a
//! first step's glue (issue 14).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

/// `fop`, `op_ret`, `op_errno` and `args` (the callback's other arguments,
/// in its order), each settable as a slot of the Python class was; None
/// until `Reply.__init__` (or the host) sets them.
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
    /// Takes whatever the class is called with: `__init__` (Reply's, or a
    /// subclass's with its own signature) sets the fields.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        py: Python<'_>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> Self {
        ReplyFields {
            fop: py.None(),
            op_ret: py.None(),
            op_errno: py.None(),
            args: py.None(),
        }
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

/// A `class` (glupy.Reply) with these fields, made without running its
/// `__init__` (a Python call): by the fields' `__new__`, then set here.
pub fn make<'py>(
    class: &Bound<'py, PyAny>,
    fop: &Bound<'py, PyAny>,
    op_ret: i32,
    op_errno: i32,
    args: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    static NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let new = NEW.get_or_try_init(py, || {
        py.get_type::<ReplyFields>()
            .getattr("__new__")
            .map(Bound::unbind)
    })?;
    let made = new.bind(py).call1((class,))?;
    {
        let mut fields = made.cast::<ReplyFields>()?.try_borrow_mut()?;
        fields.fop = fop.clone().unbind();
        fields.op_ret = op_ret.into_pyobject(py)?.into_any().unbind();
        fields.op_errno = op_errno.into_pyobject(py)?.into_any().unbind();
        fields.args = args.into_any().unbind();
    }
    Ok(made)
}

/// The fields of `value` if it is exactly a `class` (glupy.Reply): a
/// subclass may compute them (properties), so it is read by attribute, in
/// Python (`_aio._answer`).
pub fn read<'py>(value: &Bound<'py, PyAny>, class: &Bound<'py, PyAny>) -> Option<Answering<'py>> {
    if !value.get_type().is(class) {
        return None;
    }
    let fields = value.cast::<ReplyFields>().ok()?.try_borrow().ok()?;
    let py = value.py();
    Some(Answering {
        fop: fields.fop.bind(py).clone(),
        op_ret: fields.op_ret.bind(py).clone(),
        op_errno: fields.op_errno.bind(py).clone(),
        args: fields.args.bind(py).clone(),
    })
}
