//! Small fixed structs copied both ways: flock, statvfs, lease.

use crate::ffi;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[pyclass(
    skip_from_py_object,
    module = "glupy",
    name = "Flock",
    get_all,
    set_all
)]
#[derive(Clone, Default)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub l_owner: Vec<u8>,
}

impl Flock {
    pub fn from_c(f: &ffi::gf_flock) -> Self {
        let n = (f.l_owner.len.max(0) as usize).min(f.l_owner.data.len());
        Flock {
            l_type: f.l_type,
            l_whence: f.l_whence,
            l_start: f.l_start,
            l_len: f.l_len,
            l_pid: f.l_pid,
            l_owner: f.l_owner.data[..n].iter().map(|&c| c as u8).collect(),
        }
    }

    pub fn to_c(&self) -> Box<ffi::gf_flock> {
        let mut f: Box<ffi::gf_flock> = Box::default();
        f.l_type = self.l_type;
        f.l_whence = self.l_whence;
        f.l_start = self.l_start;
        f.l_len = self.l_len;
        f.l_pid = self.l_pid;
        let n = self.l_owner.len().min(f.l_owner.data.len());
        for (dst, src) in f.l_owner.data.iter_mut().zip(&self.l_owner[..n]) {
            *dst = *src as libc::c_char;
        }
        f.l_owner.len = n as i32;
        f
    }
}

#[pymethods]
impl Flock {
    #[new]
    #[pyo3(signature = (l_type=0, l_whence=0, l_start=0, l_len=0, l_pid=0, l_owner=Vec::new()))]
    fn py_new(
        l_type: i16,
        l_whence: i16,
        l_start: i64,
        l_len: i64,
        l_pid: i32,
        l_owner: Vec<u8>,
    ) -> Self {
        Flock {
            l_type,
            l_whence,
            l_start,
            l_len,
            l_pid,
            l_owner,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<glupy.Flock type={} start={} len={} pid={}>",
            self.l_type, self.l_start, self.l_len, self.l_pid
        )
    }
}

#[pyclass(
    skip_from_py_object,
    module = "glupy",
    name = "Statvfs",
    get_all,
    set_all
)]
#[derive(Clone, Default)]
pub struct Statvfs {
    pub f_bsize: u64,
    pub f_frsize: u64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_favail: u64,
    pub f_fsid: u64,
    pub f_flag: u64,
    pub f_namemax: u64,
}

impl Statvfs {
    pub fn from_c(s: &ffi::statvfs) -> Self {
        Statvfs {
            f_bsize: s.f_bsize,
            f_frsize: s.f_frsize,
            f_blocks: s.f_blocks,
            f_bfree: s.f_bfree,
            f_bavail: s.f_bavail,
            f_files: s.f_files,
            f_ffree: s.f_ffree,
            f_favail: s.f_favail,
            f_fsid: s.f_fsid,
            f_flag: s.f_flag,
            f_namemax: s.f_namemax,
        }
    }

    pub fn to_c(&self) -> Box<ffi::statvfs> {
        let mut s: Box<ffi::statvfs> = Box::default();
        s.f_bsize = self.f_bsize;
        s.f_frsize = self.f_frsize;
        s.f_blocks = self.f_blocks;
        s.f_bfree = self.f_bfree;
        s.f_bavail = self.f_bavail;
        s.f_files = self.f_files;
        s.f_ffree = self.f_ffree;
        s.f_favail = self.f_favail;
        s.f_fsid = self.f_fsid;
        s.f_flag = self.f_flag;
        s.f_namemax = self.f_namemax;
        s
    }
}

#[pymethods]
impl Statvfs {
    #[new]
    fn py_new() -> Self {
        Statvfs::default()
    }

    fn __repr__(&self) -> String {
        format!(
            "<glupy.Statvfs bsize={} blocks={} bfree={}>",
            self.f_bsize, self.f_blocks, self.f_bfree
        )
    }
}

#[pyclass(
    skip_from_py_object,
    module = "glupy",
    name = "Lease",
    get_all,
    set_all
)]
#[derive(Clone, Default)]
pub struct Lease {
    pub cmd: u32,
    pub lease_type: u32,
    pub lease_id: Vec<u8>,
    pub lease_flags: u32,
}

impl Lease {
    pub fn from_c(l: &ffi::gf_lease) -> Self {
        Lease {
            cmd: l.cmd,
            lease_type: l.lease_type,
            lease_id: l.lease_id.iter().map(|&c| c as u8).collect(),
            lease_flags: l.lease_flags,
        }
    }

    pub fn to_c(&self) -> PyResult<Box<ffi::gf_lease>> {
        let mut l: Box<ffi::gf_lease> = Box::default();
        l.cmd = self.cmd;
        l.lease_type = self.lease_type;
        l.lease_flags = self.lease_flags;
        if self.lease_id.len() > l.lease_id.len() {
            return Err(PyValueError::new_err("lease_id is at most 16 bytes"));
        }
        for (dst, src) in l.lease_id.iter_mut().zip(&self.lease_id) {
            *dst = *src as libc::c_char;
        }
        Ok(l)
    }
}

#[pymethods]
impl Lease {
    #[new]
    #[pyo3(signature = (cmd=0, lease_type=0, lease_id=Vec::new(), lease_flags=0))]
    fn py_new(cmd: u32, lease_type: u32, lease_id: Vec<u8>, lease_flags: u32) -> Self {
        Lease {
            cmd,
            lease_type,
            lease_id,
            lease_flags,
        }
    }
}
