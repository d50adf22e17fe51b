//! `glupy._glupy`: the native half of the `glupy` Python package, made
//! by the host and placed in sys.modules before the package is imported.

use crate::fops::FOPS;
use crate::frame::Frame;
use crate::instance::Xlator;
use crate::values::buffer::{Iobref, Vector};
use crate::values::dict::Dict;
use crate::values::dirent::Dirent;
use crate::values::iatt::Iatt;
use crate::values::inode::{Fd, Inode};
use crate::values::loc::Loc;
use crate::values::locks::ActiveLock;
use crate::values::plain::{Flock, Lease, Statvfs};
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Writes one line to the GlusterFS log of the translator `log_id` (a
/// translator's logger carries it), else of the translator this thread
/// works for, else of the process.
#[pyfunction]
#[pyo3(signature = (level, message, domain=None, file="python", function="-", line=0, log_id=None))]
fn log(
    level: i32,
    message: &Bound<'_, PyString>,
    domain: Option<String>,
    file: &str,
    function: &str,
    line: u32,
    log_id: Option<u64>,
) {
    let (current, current_id) = crate::logging::current();
    let place = crate::logging::Place {
        file,
        function,
        line,
    };
    crate::logging::write_at(
        domain.as_deref().unwrap_or(&current),
        log_id.or(current_id),
        place,
        crate::logging::from_python_level(level),
        &crate::interp::text_of(message),
    );
}

/// Tests only: the next time a thread passes the host's fault point
/// `point`, it faults: "callback-entry" panics, "conversion" fails with
/// MemoryError (see `fault`).
#[pyfunction]
fn _panic_at(point: &str) -> PyResult<()> {
    crate::fault::arm(point).map_err(pyo3::exceptions::PyValueError::new_err)
}

/// The fop table: (name, [(arg, kind)], [(cbk arg, kind)], in_glupy_v1).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn fop_table() -> Vec<(String, Vec<(String, String)>, Vec<(String, String)>, bool)> {
    let list = |args: &[crate::fop_spec::Arg]| {
        args.iter()
            .map(|a| (a.name.clone(), format!("{:?}", a.ty)))
            .collect()
    };
    FOPS.iter()
        .map(|f| {
            (
                f.name.clone(),
                list(&f.args),
                list(&f.cbk_args),
                f.in_glupy_v1,
            )
        })
        .collect()
}

/// Creates the module and registers it as `glupy._glupy`. (Built by hand,
/// not with #[pymodule], so the .so exports no PyInit symbol: only
/// xlator_api.)
pub fn install(py: Python<'_>) -> PyResult<()> {
    let m = PyModule::new(py, "glupy._glupy")?;
    m.add_class::<Frame>()?;
    m.add_class::<Loc>()?;
    m.add_class::<Iatt>()?;
    m.add_class::<Inode>()?;
    m.add_class::<Fd>()?;
    m.add_class::<Dict>()?;
    m.add_class::<Vector>()?;
    m.add_class::<Iobref>()?;
    m.add_class::<Dirent>()?;
    m.add_class::<Flock>()?;
    m.add_class::<Statvfs>()?;
    m.add_class::<Lease>()?;
    m.add_class::<ActiveLock>()?;
    m.add_class::<crate::answer_table::AnswerTable>()?;
    m.add_class::<Xlator>()?;
    m.add_class::<crate::turn::Turn>()?;
    m.add_class::<crate::reply_fields::ReplyFields>()?;
    m.add_function(wrap_pyfunction!(log, &m)?)?;
    m.add_function(wrap_pyfunction!(crate::step::_serving_the_loop, &m)?)?;
    m.add_function(wrap_pyfunction!(crate::step::_runs_a_first_step, &m)?)?;
    m.add_function(wrap_pyfunction!(fop_table, &m)?)?;
    m.add_function(wrap_pyfunction!(_panic_at, &m)?)?;
    m.add("HOSTED", true)?;
    m.add("GLUSTERFS_VERSION", crate::gluster_version::BUILT_FOR)?;
    m.add("XLATORDIR", env!("GLUPY_XLATORDIR"))?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("glupy._glupy", m)?;
    Ok(())
}
