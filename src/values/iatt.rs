//! `glupy.Iatt`: a stat-like copy of struct iatt that Python may edit
//! before unwinding it. Every field of the C struct is kept, so an
//! unedited Iatt unwinds exactly as it came in.

use crate::ffi;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(skip_from_py_object, module = "glupy", name = "Iatt")]
#[derive(Clone)]
pub struct Iatt {
    pub raw: ffi::iatt,
}

// SAFETY: struct iatt is plain data.
unsafe impl Send for Iatt {}
// SAFETY: as above.
unsafe impl Sync for Iatt {}

/// Getter and setter pairs for plain integer fields, under the names of
/// `os.stat_result` (st_*) and of struct iatt (ia_*).
macro_rules! iatt_fields {
    ($($st:ident, $ia:ident, $set_st:ident, $set_ia:ident: $t:ty;)*) => {
        #[pymethods]
        impl Iatt {
            $(
                #[getter]
                fn $st(&self) -> $t { self.raw.$ia }
                #[setter]
                fn $set_st(&mut self, v: $t) { self.raw.$ia = v; }
                #[getter]
                fn $ia(&self) -> $t { self.raw.$ia }
                #[setter]
                fn $set_ia(&mut self, v: $t) { self.raw.$ia = v; }
            )*
        }
    };
}

iatt_fields! {
    st_ino, ia_ino, set_st_ino, set_ia_ino: u64;
    st_dev, ia_dev, set_st_dev, set_ia_dev: u64;
    st_rdev, ia_rdev, set_st_rdev, set_ia_rdev: u64;
    st_size, ia_size, set_st_size, set_ia_size: u64;
    st_nlink, ia_nlink, set_st_nlink, set_ia_nlink: u32;
    st_uid, ia_uid, set_st_uid, set_ia_uid: u32;
    st_gid, ia_gid, set_st_gid, set_ia_gid: u32;
    st_blksize, ia_blksize, set_st_blksize, set_ia_blksize: u32;
    st_blocks, ia_blocks, set_st_blocks, set_ia_blocks: u64;
}

fn ns(sec: i64, nsec: u32) -> i64 {
    sec * 1_000_000_000 + nsec as i64
}

#[pymethods]
impl Iatt {
    /// An Iatt with every field zero (type "invalid").
    #[new]
    fn py_new() -> Self {
        Iatt {
            raw: ffi::iatt::default(),
        }
    }

    /// st_mode: file type and permission bits, as os.stat gives them.
    #[getter]
    fn st_mode(&self) -> u32 {
        // SAFETY: reads our own struct.
        unsafe { ffi::glupy_iatt_mode(&self.raw) }
    }

    #[setter]
    fn set_st_mode(&mut self, mode: u32) {
        // SAFETY: writes our own struct.
        unsafe { ffi::glupy_iatt_set_mode(&mut self.raw, mode) }
    }

    #[getter]
    fn mode(&self) -> u32 {
        self.st_mode()
    }

    #[setter]
    fn set_mode(&mut self, mode: u32) {
        self.set_st_mode(mode)
    }

    #[getter]
    fn ia_type(&self) -> u32 {
        self.raw.ia_type
    }

    /// "file", "dir", "symlink", "block", "char", "fifo", "socket" or "invalid".
    #[getter(r#type)]
    fn type_(&self) -> &'static str {
        super::inode::type_name(self.raw.ia_type)
    }

    #[getter]
    fn gfid<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.raw.ia_gfid)
    }

    #[setter]
    fn set_gfid(&mut self, gfid: &[u8]) -> PyResult<()> {
        self.raw.ia_gfid = gfid
            .try_into()
            .map_err(|_| PyValueError::new_err("a gfid is 16 bytes"))?;
        Ok(())
    }

    #[getter]
    fn st_atime(&self) -> f64 {
        ns(self.raw.ia_atime, self.raw.ia_atime_nsec) as f64 / 1e9
    }

    #[getter]
    fn st_mtime(&self) -> f64 {
        ns(self.raw.ia_mtime, self.raw.ia_mtime_nsec) as f64 / 1e9
    }

    #[getter]
    fn st_ctime(&self) -> f64 {
        ns(self.raw.ia_ctime, self.raw.ia_ctime_nsec) as f64 / 1e9
    }

    #[getter]
    fn st_atime_ns(&self) -> i64 {
        ns(self.raw.ia_atime, self.raw.ia_atime_nsec)
    }

    #[setter]
    fn set_st_atime_ns(&mut self, v: i64) {
        self.raw.ia_atime = v.div_euclid(1_000_000_000);
        self.raw.ia_atime_nsec = v.rem_euclid(1_000_000_000) as u32;
    }

    #[getter]
    fn st_mtime_ns(&self) -> i64 {
        ns(self.raw.ia_mtime, self.raw.ia_mtime_nsec)
    }

    #[setter]
    fn set_st_mtime_ns(&mut self, v: i64) {
        self.raw.ia_mtime = v.div_euclid(1_000_000_000);
        self.raw.ia_mtime_nsec = v.rem_euclid(1_000_000_000) as u32;
    }

    #[getter]
    fn st_ctime_ns(&self) -> i64 {
        ns(self.raw.ia_ctime, self.raw.ia_ctime_nsec)
    }

    #[setter]
    fn set_st_ctime_ns(&mut self, v: i64) {
        self.raw.ia_ctime = v.div_euclid(1_000_000_000);
        self.raw.ia_ctime_nsec = v.rem_euclid(1_000_000_000) as u32;
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    /// Address of this object's struct iatt (valid while it lives; writes
    /// through it change this Iatt).
    #[getter]
    fn address(slf: PyRef<'_, Self>) -> usize {
        &slf.raw as *const ffi::iatt as usize
    }

    fn __repr__(&self) -> String {
        format!(
            "<glupy.Iatt {} mode={:o} size={} gfid={}>",
            self.type_(),
            self.st_mode(),
            self.raw.ia_size,
            super::gfid_str(&self.raw.ia_gfid)
        )
    }
}
