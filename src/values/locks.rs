//! `glupy.ActiveLock`: one entry of the lock list getactivelk replies with
//! and setactivelk carries. GlusterFS lends that list only for the call
//! (features/locks unwinds a list on its stack and frees it as soon as the
//! callback returns), so it is copied when it arrives, and a list built
//! from Python values lives as long as the wind or unwind that passes it.

use super::plain::Flock;
use crate::ffi;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::ffi::{CStr, CString};

#[pyclass(
    skip_from_py_object,
    module = "glupy",
    name = "ActiveLock",
    get_all,
    set_all
)]
pub struct ActiveLock {
    pub flock: Py<Flock>,
    /// The client that holds the lock (its uid string), as bytes.
    pub client_uid: Vec<u8>,
    pub lk_flags: u32,
}

/// An entry copied out of GlusterFS's list, before Python sees it.
pub struct LockData {
    flock: Flock,
    client_uid: Vec<u8>,
    lk_flags: u32,
}

/// Copies the whole list.
///
/// # Safety
/// `head` must be a live list head of `lock_migration_info_t` entries,
/// unchanged during this call.
pub unsafe fn copy_list(head: *mut ffi::lock_migration_info_t) -> Vec<LockData> {
    let mut out = Vec::new();
    let mut cur = std::ptr::null_mut();
    loop {
        // SAFETY: walking a live list by contract.
        cur = unsafe { ffi::glupy_locklist_next(head, cur) };
        if cur.is_null() {
            return out;
        }
        // SAFETY: cur is a live entry of the list.
        let e = unsafe { &*cur };
        let client_uid = if e.client_uid.is_null() {
            Vec::new()
        } else {
            // SAFETY: a NUL-terminated string owned by the entry.
            unsafe { CStr::from_ptr(e.client_uid) }.to_bytes().to_vec()
        };
        out.push(LockData {
            flock: Flock::from_c(&e.flock),
            client_uid,
            lk_flags: e.lk_flags,
        });
    }
}

impl ActiveLock {
    pub fn from_data(py: Python<'_>, d: LockData) -> PyResult<Self> {
        Ok(ActiveLock {
            flock: Py::new(py, d.flock)?,
            client_uid: d.client_uid,
            lk_flags: d.lk_flags,
        })
    }
}

#[pymethods]
impl ActiveLock {
    #[new]
    #[pyo3(signature = (flock, client_uid=Vec::new(), lk_flags=0))]
    fn py_new(flock: Py<Flock>, client_uid: Vec<u8>, lk_flags: u32) -> Self {
        ActiveLock {
            flock,
            client_uid,
            lk_flags,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let f = self.flock.borrow(py);
        format!(
            "<glupy.ActiveLock client={} type={} start={} len={}>",
            String::from_utf8_lossy(&self.client_uid),
            f.l_type,
            f.l_start,
            f.l_len
        )
    }
}

/// A lock list built for one wind or unwind: a head and its entries, with
/// the strings they point to, all owned here.
pub struct OwnedLockList {
    head: Box<ffi::lock_migration_info_t>,
    // Boxed: the list links point at each entry, which must not move.
    #[allow(clippy::vec_box)]
    _entries: Vec<Box<ffi::lock_migration_info_t>>,
    _uids: Vec<CString>,
}

// SAFETY: the list is only read by GlusterFS during the one call the
// owning Outgoing is passed to; nothing else shares it.
unsafe impl Send for OwnedLockList {}

impl OwnedLockList {
    pub fn build(py: Python<'_>, locks: &[Py<ActiveLock>]) -> PyResult<Self> {
        // SAFETY: lock_migration_info_t is plain data; all-zero is empty.
        let mut head: Box<ffi::lock_migration_info_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: head is ours and stays at this address (boxed).
        unsafe { ffi::glupy_locklist_init(&mut *head) };
        let mut entries = Vec::with_capacity(locks.len());
        let mut uids = Vec::with_capacity(locks.len());
        for lock in locks {
            let lock = lock.borrow(py);
            let uid = CString::new(lock.client_uid.clone())
                .map_err(|_| PyValueError::new_err("ActiveLock.client_uid cannot contain NUL"))?;
            // SAFETY: as for head.
            let mut e: Box<ffi::lock_migration_info_t> = Box::new(unsafe { std::mem::zeroed() });
            e.flock = *lock.flock.borrow(py).to_c();
            e.lk_flags = lock.lk_flags;
            e.client_uid = uid.as_ptr() as *mut libc::c_char;
            // SAFETY: both are boxed (stable addresses) and owned by the
            // returned value, which outlives every use of the list.
            unsafe { ffi::glupy_locklist_append(&mut *head, &mut *e) };
            entries.push(e);
            uids.push(uid);
        }
        Ok(OwnedLockList {
            head,
            _entries: entries,
            _uids: uids,
        })
    }

    pub fn as_ptr(&self) -> *mut ffi::lock_migration_info_t {
        &*self.head as *const _ as *mut _
    }
}
