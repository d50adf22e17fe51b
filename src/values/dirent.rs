//! `glupy.Dirent`: one directory entry of readdir/readdirp, as a plain
//! Python object; lists of them are rebuilt into gf_dirent_t lists when
//! unwound, so a translator can filter or edit them.

use super::dict::Dict;
use super::iatt::Iatt;
use super::inode::{Inode, Owner};
use super::refs::{DictRef, InodeRef, Life};
use crate::ffi;
use pyo3::prelude::*;
use std::ffi::{CStr, CString};
use std::sync::Arc;

/// A directory entry copied out of GlusterFS, before Python sees it.
pub struct DirentData {
    pub name: Vec<u8>,
    pub d_ino: u64,
    pub d_off: u64,
    pub d_type: u32,
    pub stat: ffi::iatt,
    pub inode: Option<InodeRef>,
    pub dict: Option<DictRef>,
}

impl DirentData {
    /// Its references bound to the life of the graph they came from.
    pub fn bound(mut self, life: Option<&std::sync::Arc<super::refs::Life>>) -> Self {
        self.inode = self.inode.map(|i| i.bound(life));
        self.dict = self.dict.map(|d| d.bound(life));
        self
    }
}

/// Copies every entry of a gf_dirent_t list.
///
/// # Safety
/// `head` must be NULL or the head of a valid list.
pub unsafe fn read_list(head: *mut ffi::gf_dirent_t) -> Vec<DirentData> {
    let mut out = Vec::new();
    if head.is_null() {
        return out;
    }
    let mut cur = std::ptr::null_mut();
    loop {
        // SAFETY: head is a valid list by contract; we only walk it.
        cur = unsafe { ffi::glupy_dirents_next(head, cur) };
        if cur.is_null() {
            return out;
        }
        // SAFETY: cur is an entry of that list.
        let e = unsafe { &*cur };
        out.push(DirentData {
            // SAFETY: d_name is a NUL-terminated flexible array member.
            name: unsafe { CStr::from_ptr(e.d_name.as_ptr()) }
                .to_bytes()
                .to_vec(),
            d_ino: e.d_ino,
            d_off: e.d_off,
            d_type: e.d_type,
            stat: e.d_stat,
            // SAFETY: entry pointers are NULL or live while the list is.
            inode: unsafe { InodeRef::take(e.inode) },
            // SAFETY: as above.
            dict: unsafe { DictRef::take(e.dict) },
        });
    }
}

/// A gf_dirent_t list we built; freed (entries, inode and dict refs) on drop.
pub struct OwnedDirents(pub Box<ffi::gf_dirent_t>);

// SAFETY: the list is only touched by the thread that owns this value, and
// the refs it holds are thread-safe.
unsafe impl Send for OwnedDirents {}

impl OwnedDirents {
    /// `in_graph` refuses an entry's inode or dict of another graph.
    pub fn build(
        entries: &[Py<Dirent>],
        py: Python<'_>,
        in_graph: &dyn Fn(Option<&Arc<Life>>) -> PyResult<()>,
    ) -> PyResult<Self> {
        let mut head: Box<ffi::gf_dirent_t> = Box::default();
        // SAFETY: head is ours; initialising its list makes it empty.
        unsafe { ffi::glupy_dirents_init(&mut *head) };
        let list = OwnedDirents(head);
        for d in entries {
            let d = d.borrow(py);
            let name = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(d.name.as_os_str()))
                .map_err(|_| {
                    pyo3::exceptions::PyValueError::new_err("a name cannot contain NUL")
                })?;
            if let Some(i) = &d.inode {
                in_graph(i.get().inode.life())?;
            }
            if let Some(x) = &d.dict {
                in_graph(x.get().dict.life())?;
            }
            let inode = d.inode.as_ref().map(|i| i.get().inode.get()).transpose()?;
            let dict = d.dict.as_ref().map(|x| x.get().dict.get()).transpose()?;
            // SAFETY: gf_dirent_for_name allocates an entry with the name;
            // the refs we take are dropped by gf_dirent_free.
            unsafe {
                let e = ffi::gf_dirent_for_name(name.as_ptr());
                if e.is_null() {
                    return Err(pyo3::exceptions::PyMemoryError::new_err(
                        "gf_dirent_for_name failed",
                    ));
                }
                (*e).d_ino = d.d_ino;
                (*e).d_off = d.d_off;
                (*e).d_type = d.d_type;
                if let Some(st) = &d.stat {
                    (*e).d_stat = st.borrow(py).raw;
                }
                if let Some(i) = inode {
                    (*e).inode = ffi::inode_ref(i);
                }
                if let Some(x) = dict {
                    (*e).dict = ffi::dict_ref(x);
                }
                ffi::glupy_dirents_append(list.as_ptr(), e);
            }
        }
        Ok(list)
    }

    pub fn as_ptr(&self) -> *mut ffi::gf_dirent_t {
        &*self.0 as *const _ as *mut _
    }
}

impl Drop for OwnedDirents {
    fn drop(&mut self) {
        // SAFETY: every entry was allocated by gf_dirent_for_name and linked
        // into our head; gf_dirent_free unlinks and frees them.
        unsafe { ffi::gf_dirent_free(&mut *self.0) };
    }
}

#[pyclass(module = "glupy", name = "Dirent", get_all, set_all)]
pub struct Dirent {
    pub name: std::ffi::OsString,
    pub d_ino: u64,
    pub d_off: u64,
    pub d_type: u32,
    pub stat: Option<Py<Iatt>>,
    pub inode: Option<Py<Inode>>,
    pub dict: Option<Py<Dict>>,
}

impl Dirent {
    pub fn from_data(py: Python<'_>, d: DirentData, owner: Owner) -> PyResult<Self> {
        Ok(Dirent {
            name: super::os_string(&d.name),
            d_ino: d.d_ino,
            d_off: d.d_off,
            d_type: d.d_type,
            stat: Some(Py::new(py, Iatt { raw: d.stat })?),
            inode: d
                .inode
                .map(|i| Py::new(py, Inode::new(i, owner.clone())))
                .transpose()?,
            dict: d
                .dict
                .map(|x| Py::new(py, Dict::new(x.bound(owner.life.as_ref()))))
                .transpose()?,
        })
    }
}

#[pymethods]
impl Dirent {
    #[new]
    #[pyo3(signature = (name, d_ino=0, d_off=0, d_type=0, stat=None, inode=None, dict=None))]
    fn py_new(
        name: std::ffi::OsString,
        d_ino: u64,
        d_off: u64,
        d_type: u32,
        stat: Option<Py<Iatt>>,
        inode: Option<Py<Inode>>,
        dict: Option<Py<Dict>>,
    ) -> Self {
        Dirent {
            name,
            d_ino,
            d_off,
            d_type,
            stat,
            inode,
            dict,
        }
    }

    fn __repr__(&self) -> String {
        format!("<glupy.Dirent {:?} off={}>", self.name, self.d_off)
    }
}
