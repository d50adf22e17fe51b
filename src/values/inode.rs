//! `glupy.Inode` and `glupy.Fd`: counted references with a per-translator
//! context slot that holds any Python object until the inode is forgotten or
//! the fd released.

pub use super::refs::Life;
use super::refs::{FdRef, InodeRef};
use crate::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

/// The translator an Inode/Fd's context belongs to, and the life of its
/// graph (see `Life`).
#[derive(Clone)]
pub struct Owner {
    pub xl: *mut ffi::xlator_t,
    pub life: Option<Arc<Life>>,
}

impl Owner {
    /// RuntimeError once the translator's graph went away.
    pub fn check(&self) -> PyResult<()> {
        self.life.as_ref().map_or(Ok(()), |l| l.check())
    }

    pub fn alive(&self) -> bool {
        self.life.as_ref().is_none_or(|l| l.alive())
    }

    pub fn new(xl: *mut ffi::xlator_t, life: Arc<Life>) -> Owner {
        Owner {
            xl,
            life: Some(life),
        }
    }

    /// No translator (a value Python built without one).
    pub fn none() -> Owner {
        Owner {
            xl: std::ptr::null_mut(),
            life: None,
        }
    }
}
// SAFETY: the xlator outlives every value handed to its Python code (the
// .so is never unloaded and graphs keep their xlators until fini).
unsafe impl Send for Owner {}
// SAFETY: only passed to GlusterFS ctx functions, which lock internally.
unsafe impl Sync for Owner {}

const TYPE_NAMES: [&str; 8] = [
    "invalid", "file", "dir", "symlink", "block", "char", "fifo", "socket",
];

pub fn type_name(ia_type: u32) -> &'static str {
    TYPE_NAMES
        .get(ia_type as usize)
        .copied()
        .unwrap_or("invalid")
}

/// Boxes a Python object for a GlusterFS u64 context slot.
fn ctx_into_raw(value: Py<PyAny>) -> u64 {
    Box::into_raw(Box::new(value)) as u64
}

/// # Safety
/// `raw` must come from `ctx_into_raw` and not have been freed.
pub unsafe fn ctx_from_raw(raw: u64) -> Box<Py<PyAny>> {
    // SAFETY: by the contract above.
    unsafe { Box::from_raw(raw as *mut Py<PyAny>) }
}

#[pyclass(frozen, module = "glupy", name = "Inode")]
pub struct Inode {
    /// Shared with the outgoing arguments of an answer that carries it: a
    /// copy of this costs no inode_ref (which takes the inode table's lock,
    /// the busiest lock of a brick, and inode_unref takes it twice).
    pub(crate) inode: Arc<InodeRef>,
    pub(crate) owner: Owner,
}

impl Inode {
    pub fn new(inode: InodeRef, owner: Owner) -> Self {
        let inode = Arc::new(inode.bound(owner.life.as_ref()));
        Inode { inode, owner }
    }

    fn raw(&self) -> PyResult<&ffi::inode_t> {
        // SAFETY: we hold a reference and its graph lives, so it is live.
        Ok(unsafe { &*self.inode.get()? })
    }
}

#[pymethods]
impl Inode {
    /// Address of the inode_t (referenced while this object lives).
    #[getter]
    fn address(&self) -> usize {
        self.inode.as_ptr() as usize
    }

    #[getter]
    fn gfid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.raw()?.gfid))
    }

    #[getter]
    fn ia_type(&self) -> PyResult<u32> {
        Ok(self.raw()?.ia_type)
    }

    #[getter(r#type)]
    fn type_(&self) -> PyResult<&'static str> {
        Ok(type_name(self.raw()?.ia_type))
    }

    /// The path GlusterFS knows for this inode, or None if it knows none.
    #[getter]
    fn path(&self) -> PyResult<Option<String>> {
        let inode = self.inode.get()?;
        let mut buf: *mut libc::c_char = std::ptr::null_mut();
        // SAFETY: the inode is live; inode_path allocates buf with GF_MALLOC
        // on success and we free it with GF_FREE.
        unsafe {
            let n = ffi::inode_path(inode, std::ptr::null(), &mut buf);
            if n < 0 || buf.is_null() {
                return Ok(None);
            }
            let s = std::ffi::CStr::from_ptr(buf).to_string_lossy().into_owned();
            ffi::glupy_free(buf.cast());
            Ok(Some(s))
        }
    }

    /// This translator's object for the inode (None if never set); kept
    /// until GlusterFS forgets the inode.
    #[getter]
    fn ctx(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let inode = self.inode.get()?;
        let mut raw = 0u64;
        // SAFETY: live inode and owner; value2 may be NULL.
        let rc =
            unsafe { ffi::inode_ctx_get2(inode, self.owner.xl, &mut raw, std::ptr::null_mut()) };
        if rc != 0 || raw == 0 {
            return Ok(None);
        }
        // SAFETY: only ctx_into_raw values are stored in our slot, and they
        // are freed only by forget, which cannot run while we hold a ref.
        let obj = unsafe { &*(raw as *const Py<PyAny>) };
        Ok(Some(obj.clone_ref(py)))
    }

    #[setter]
    fn set_ctx(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let inode = self.inode.get()?;
        let mut old = 0u64;
        // SAFETY: live inode and owner. The GIL serialises Python setters,
        // and forget cannot run while we hold a reference.
        unsafe {
            if ffi::inode_ctx_del2(inode, self.owner.xl, &mut old, std::ptr::null_mut()) == 0
                && old != 0
            {
                drop(ctx_from_raw(old));
            }
            if let Some(value) = value {
                let mut raw = ctx_into_raw(value);
                if ffi::inode_ctx_set2(inode, self.owner.xl, &mut raw, std::ptr::null_mut()) != 0 {
                    drop(ctx_from_raw(raw));
                    return Err(pyo3::exceptions::PyMemoryError::new_err(
                        "inode_ctx_set failed",
                    ));
                }
            }
        }
        Ok(())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Inode>()
            .is_ok_and(|o| o.get().inode.as_ptr() == self.inode.as_ptr())
    }

    fn __hash__(&self) -> u64 {
        self.inode.as_ptr() as u64
    }

    fn __repr__(&self) -> String {
        match self.raw() {
            Ok(raw) => format!(
                "<glupy.Inode {} {}>",
                super::gfid_str(&raw.gfid),
                type_name(raw.ia_type)
            ),
            Err(_) => "<glupy.Inode of a translator that was shut down>".into(),
        }
    }
}

#[pyclass(frozen, module = "glupy", name = "Fd")]
pub struct Fd {
    pub(crate) fd: FdRef,
    pub(crate) owner: Owner,
}

impl Fd {
    pub fn new(fd: FdRef, owner: Owner) -> Self {
        let fd = fd.bound(owner.life.as_ref());
        Fd { fd, owner }
    }

    fn raw(&self) -> PyResult<&ffi::fd_t> {
        // SAFETY: we hold a reference and its graph lives, so it is live.
        Ok(unsafe { &*self.fd.get()? })
    }
}

#[pymethods]
impl Fd {
    /// Address of the fd_t (referenced while this object lives).
    #[getter]
    fn address(&self) -> usize {
        self.fd.as_ptr() as usize
    }

    #[getter]
    fn inode(&self) -> PyResult<Option<Inode>> {
        // SAFETY: a live fd's inode pointer is live while the fd is.
        Ok(unsafe { InodeRef::take(self.raw()?.inode) }.map(|i| Inode::new(i, self.owner.clone())))
    }

    #[getter]
    fn flags(&self) -> PyResult<i32> {
        Ok(self.raw()?.flags)
    }

    #[getter]
    fn pid(&self) -> PyResult<u64> {
        Ok(self.raw()?.pid)
    }

    /// This translator's object for the fd (None if never set); kept until
    /// the fd is released.
    #[getter]
    fn ctx(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let fd = self.fd.get()?;
        let mut raw = 0u64;
        // SAFETY: live fd and owner.
        let rc = unsafe { ffi::glupy_fd_ctx_get(fd, self.owner.xl, &mut raw) };
        if rc != 0 || raw == 0 {
            return Ok(None);
        }
        // SAFETY: as for Inode.ctx: release cannot run while we hold a ref.
        let obj = unsafe { &*(raw as *const Py<PyAny>) };
        Ok(Some(obj.clone_ref(py)))
    }

    #[setter]
    fn set_ctx(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let fd = self.fd.get()?;
        let mut old = 0u64;
        // SAFETY: live fd and owner; the GIL serialises Python setters.
        unsafe {
            if ffi::glupy_fd_ctx_del(fd, self.owner.xl, &mut old) == 0 && old != 0 {
                drop(ctx_from_raw(old));
            }
            if let Some(value) = value {
                let raw = ctx_into_raw(value);
                if ffi::fd_ctx_set(fd, self.owner.xl, raw) != 0 {
                    drop(ctx_from_raw(raw));
                    return Err(pyo3::exceptions::PyMemoryError::new_err(
                        "fd_ctx_set failed",
                    ));
                }
            }
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        match self.raw() {
            Ok(raw) => format!("<glupy.Fd flags={:#o}>", raw.flags),
            Err(_) => "<glupy.Fd of a translator that was shut down>".into(),
        }
    }
}
