//! asyncio's registry of tasks, its two per-task methods done natively.
//!
//! Every `asyncio.Task` is added to a `weakref.WeakSet` when it is made
//! (`asyncio.tasks._all_tasks` on Python 3.11, `_scheduled_tasks` on 3.12
//! and 3.13), and the weak reference's callback takes it out when the task
//! dies: `asyncio.all_tasks()` reads it. Both are Python functions, about
//! 3,600 instructions of the 35,000 an `async def` fop adds to a sync
//! one's work (BENCHMARKS.md, "Host hot spots" 12). Here they are done by
//! builtins with the very same effect, put in that one set's `__dict__`
//! (where an instance's attribute shadows its class's method): `add` adds
//! a weak reference whose callback is the builtin `_remove`; `_remove`
//! discards it, or leaves it pending while the set is iterated over, as
//! `_weakrefset.WeakSet` does. Every other method of the set stays the
//! class's and works on the same `data`, `_pending_removals` and
//! `_iterating`. A set whose attributes are not those of the WeakSet this
//! was written against is left as it is.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PySet, PyString, PyWeakrefReference};

/// The registry whose methods are replaced, and its attributes (the
/// instance's `__dict__`, read per call: a method of the class may rebind
/// them, none does in CPython 3.11-3.13).
struct Registry {
    set: Py<PyAny>,
    attrs: Py<PyDict>,
    remove: Py<PyAny>,
}

static REGISTRY: PyOnceLock<Option<Registry>> = PyOnceLock::new();
/// Set once the builtins are in the registry: they are put there only
/// after REGISTRY is set, as they read it.
static NATIVE: PyOnceLock<()> = PyOnceLock::new();

/// Replaces the registry's `add` and `_remove` with the builtins below, once
/// per process (if the registry is the WeakSet expected).
pub fn make_native(py: Python<'_>) -> PyResult<()> {
    NATIVE
        .get_or_try_init(py, || {
            let Some(r) = REGISTRY.get_or_try_init(py, || find(py))? else {
                return Ok(());
            };
            let attrs = r.attrs.bind(py);
            // `_remove` first: a reference made by `add` from now on has it.
            attrs.set_item("_remove", r.remove.bind(py))?;
            attrs.set_item("add", wrap_pyfunction!(add_task, py)?)
        })
        .map(drop)
}

fn find(py: Python<'_>) -> PyResult<Option<Registry>> {
    let tasks = py.import("asyncio.tasks")?;
    let weak_set = py.import("_weakrefset")?.getattr("WeakSet")?;
    for name in ["_all_tasks", "_scheduled_tasks"] {
        let Ok(set) = tasks.getattr(name) else {
            continue;
        };
        if !set.get_type().is(&weak_set) {
            continue;
        }
        let attrs = set.getattr("__dict__")?.cast_into::<PyDict>()?;
        let expected = attrs
            .get_item("data")?
            .is_some_and(|d| d.is_exact_instance_of::<PySet>())
            && attrs
                .get_item("_pending_removals")?
                .is_some_and(|p| p.is_exact_instance_of::<PyList>())
            && attrs
                .get_item("_iterating")?
                .is_some_and(|i| i.is_exact_instance_of::<PySet>())
            && !attrs.contains("add")?;
        if !expected {
            return Ok(None);
        }
        return Ok(Some(Registry {
            set: set.unbind(),
            attrs: attrs.unbind(),
            remove: wrap_pyfunction!(remove_task_ref, py)?.into_any().unbind(),
        }));
    }
    Ok(None)
}

fn registry(py: Python<'_>) -> PyResult<&Registry> {
    // Always there: the builtins are put in the registry after it is known.
    REGISTRY.get(py).and_then(Option::as_ref).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("glupy: asyncio's task registry is not known")
    })
}

/// The registry's attribute `name`, as `WeakSet.__init__` made it.
fn attr<'py>(
    py: Python<'py>,
    r: &Registry,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    crate::aio::own_attr(r.attrs.bind(py), name, "asyncio's task registry")
}

/// `WeakSet.add`: commits pending removals, then adds a weak reference to
/// `item` whose callback takes it out again.
#[pyfunction]
fn add_task(py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<()> {
    let r = registry(py)?;
    if attr(py, r, intern!(py, "_pending_removals"))?.is_truthy()? {
        r.set
            .bind(py)
            .call_method0(intern!(py, "_commit_removals"))?;
    }
    let reference = PyWeakrefReference::new_with(item, r.remove.bind(py))?;
    attr(py, r, intern!(py, "data"))?
        .cast_into::<PySet>()?
        .add(reference)
}

/// The callback of the registry's weak references (`WeakSet._remove`): a
/// task died; its reference leaves the set now, or after the iteration
/// under way.
#[pyfunction]
fn remove_task_ref(py: Python<'_>, reference: &Bound<'_, PyAny>) -> PyResult<()> {
    let r = registry(py)?;
    if attr(py, r, intern!(py, "_iterating"))?.is_truthy()? {
        attr(py, r, intern!(py, "_pending_removals"))?
            .cast_into::<PyList>()?
            .append(reference)
    } else {
        attr(py, r, intern!(py, "data"))?
            .cast_into::<PySet>()?
            .discard(reference)
            .map(drop)
    }
}
