//! `glupy.Loc`: an owned copy of a loc_t (path, name, gfids, inode refs).

use super::inode::{Inode, Owner};
use super::refs::InodeRef;
use crate::ffi;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ffi::{CStr, CString};

/// A loc_t we own: path allocated by GlusterFS, inode and parent referenced.
pub struct OwnedLoc(Box<ffi::loc_t>);

// SAFETY: the loc is never mutated after construction, and its inode refs
// are atomic inside GlusterFS.
unsafe impl Send for OwnedLoc {}
// SAFETY: as above, shared access is read-only.
unsafe impl Sync for OwnedLoc {}

impl OwnedLoc {
    /// Deep copy of `src` (loc_copy); None for NULL.
    ///
    /// # Safety
    /// `src` must be NULL or a valid loc_t.
    pub unsafe fn copy_from(src: *const ffi::loc_t) -> Option<Self> {
        if src.is_null() {
            return None;
        }
        let mut dst: Box<ffi::loc_t> = Box::default();
        // SAFETY: src is valid by contract; dst is zeroed, as loc_copy expects.
        unsafe { ffi::loc_copy(&mut *dst, src as *mut _) };
        Some(OwnedLoc(dst))
    }

    pub fn as_ptr(&self) -> *mut ffi::loc_t {
        &*self.0 as *const ffi::loc_t as *mut ffi::loc_t
    }

    fn build(
        path: &CStr,
        inode: Option<&InodeRef>,
        parent: Option<&InodeRef>,
        gfid: [u8; 16],
        pargfid: [u8; 16],
    ) -> Self {
        let mut loc: Box<ffi::loc_t> = Box::default();
        // SAFETY: gf_strdup copies the NUL-terminated path; `name` points
        // inside that copy, as loc_wipe expects; the refs we add are
        // released by loc_wipe.
        unsafe {
            loc.path = ffi::glupy_strdup(path.as_ptr());
            let bytes = path.to_bytes();
            if let Some(slash) = bytes.iter().rposition(|&b| b == b'/') {
                loc.name = loc.path.add(slash + 1);
            }
            if let Some(i) = inode {
                loc.inode = ffi::inode_ref(i.as_ptr());
            }
            if let Some(p) = parent {
                loc.parent = ffi::inode_ref(p.as_ptr());
            }
        }
        loc.gfid = gfid;
        loc.pargfid = pargfid;
        OwnedLoc(loc)
    }
}

impl Drop for OwnedLoc {
    fn drop(&mut self) {
        // SAFETY: we own the loc and its refs; loc_wipe frees and zeroes them.
        unsafe { ffi::loc_wipe(&mut *self.0) };
    }
}

fn cstr_opt(p: *const libc::c_char) -> Option<std::ffi::OsString> {
    // SAFETY: loc strings are NULL or NUL-terminated and live with the loc.
    (!p.is_null()).then(|| super::os_string(unsafe { CStr::from_ptr(p) }.to_bytes()))
}

fn gfid_arg(gfid: Option<&[u8]>) -> PyResult<[u8; 16]> {
    match gfid {
        None => Ok([0; 16]),
        Some(b) => b
            .try_into()
            .map_err(|_| PyValueError::new_err("a gfid is 16 bytes")),
    }
}

#[pyclass(frozen, module = "glupy", name = "Loc")]
pub struct Loc {
    /// Released on drop only while the owner's graph lives (see `Life`).
    pub(crate) loc: std::mem::ManuallyDrop<OwnedLoc>,
    pub(crate) owner: Owner,
}

impl Drop for Loc {
    fn drop(&mut self) {
        if self.owner.alive() {
            // SAFETY: dropped once, here; the field is not used after.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.loc) };
        }
    }
}

impl Loc {
    pub fn new(loc: OwnedLoc, owner: Owner) -> Self {
        Loc {
            loc: std::mem::ManuallyDrop::new(loc),
            owner,
        }
    }

    fn raw(&self) -> &ffi::loc_t {
        &self.loc.0
    }

    /// The loc, with its inode and parent still live.
    fn live(&self) -> PyResult<&ffi::loc_t> {
        self.owner.check()?;
        Ok(&self.loc.0)
    }

    fn inode_ref(&self, p: *mut ffi::inode_t) -> Option<Inode> {
        // SAFETY: our loc holds a reference on its inode and parent.
        unsafe { InodeRef::take(p) }.map(|i| Inode::new(i, self.owner.clone()))
    }
}

#[pymethods]
impl Loc {
    /// Address of the C loc_t this object owns (for ctypes-based Glupy 1
    /// code); valid while this object lives.
    #[getter]
    fn address(&self) -> usize {
        self.loc.as_ptr() as usize
    }

    /// A new location, e.g. to wind a fop somewhere else than asked.
    #[new]
    #[pyo3(signature = (path, inode=None, parent=None, gfid=None, pargfid=None))]
    fn py_new(
        path: std::path::PathBuf,
        inode: Option<PyRef<'_, Inode>>,
        parent: Option<PyRef<'_, Inode>>,
        gfid: Option<&[u8]>,
        pargfid: Option<&[u8]>,
    ) -> PyResult<Self> {
        use std::os::unix::ffi::OsStrExt;
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| PyValueError::new_err("path contains NUL"))?;
        let owner = inode
            .as_ref()
            .or(parent.as_ref())
            .map(|i| i.owner.clone())
            .unwrap_or_else(Owner::none);
        one_graph(&owner, [&inode, &parent])?;
        let loc = OwnedLoc::build(
            &path,
            inode.as_ref().map(|i| &*i.inode),
            parent.as_ref().map(|i| &*i.inode),
            gfid_arg(gfid)?,
            gfid_arg(pargfid)?,
        );
        Ok(Loc::new(loc, owner))
    }

    /// A copy with another path (same inode and parent unless given).
    #[pyo3(signature = (path=None, inode=None, parent=None))]
    fn copy(
        &self,
        path: Option<std::path::PathBuf>,
        inode: Option<PyRef<'_, Inode>>,
        parent: Option<PyRef<'_, Inode>>,
    ) -> PyResult<Self> {
        use std::os::unix::ffi::OsStrExt;
        let raw = self.live()?;
        // A loc Python built without inodes takes the graph of those given.
        let owner = match &self.owner.life {
            Some(_) => self.owner.clone(),
            None => inode
                .as_ref()
                .or(parent.as_ref())
                .map_or_else(Owner::none, |i| i.owner.clone()),
        };
        one_graph(&owner, [&inode, &parent])?;
        let path = match path {
            Some(p) => CString::new(p.as_os_str().as_bytes())
                .map_err(|_| PyValueError::new_err("path contains NUL"))?,
            None if raw.path.is_null() => CString::default(),
            // SAFETY: a non-NULL loc path is NUL-terminated and ours.
            None => unsafe { CStr::from_ptr(raw.path) }.to_owned(),
        };
        // SAFETY: our loc's inode/parent are NULL or referenced by us.
        let (own_inode, own_parent) =
            unsafe { (InodeRef::take(raw.inode), InodeRef::take(raw.parent)) };
        let inode = inode.map(|i| InodeRef::clone(&i.inode)).or(own_inode);
        let parent = parent.map(|i| InodeRef::clone(&i.inode)).or(own_parent);
        Ok(Loc::new(
            OwnedLoc::build(
                &path,
                inode.as_ref(),
                parent.as_ref(),
                raw.gfid,
                raw.pargfid,
            ),
            owner,
        ))
    }

    #[getter]
    fn path(&self) -> Option<std::ffi::OsString> {
        cstr_opt(self.raw().path)
    }

    #[getter]
    fn name(&self) -> Option<std::ffi::OsString> {
        cstr_opt(self.raw().name)
    }

    /// The gfid: the loc's own, or its inode's when the loc has none.
    #[getter]
    fn gfid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let raw = self.live()?;
        let mut gfid = raw.gfid;
        if gfid == [0; 16] && !raw.inode.is_null() {
            // SAFETY: our loc references its inode.
            gfid = unsafe { (*raw.inode).gfid };
        }
        Ok(PyBytes::new(py, &gfid))
    }

    #[getter]
    fn pargfid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let raw = self.live()?;
        let mut gfid = raw.pargfid;
        if gfid == [0; 16] && !raw.parent.is_null() {
            // SAFETY: our loc references its parent.
            gfid = unsafe { (*raw.parent).gfid };
        }
        Ok(PyBytes::new(py, &gfid))
    }

    #[getter]
    fn inode(&self) -> PyResult<Option<Inode>> {
        Ok(self.inode_ref(self.live()?.inode))
    }

    #[getter]
    fn parent(&self) -> PyResult<Option<Inode>> {
        Ok(self.inode_ref(self.live()?.parent))
    }

    fn __repr__(&self) -> String {
        format!("<glupy.Loc {:?}>", self.path().unwrap_or_default())
    }
}

/// RuntimeError if an inode given for a loc is of another graph than the
/// loc's (see `Life::check_in`): the loc would carry it past that check.
fn one_graph(owner: &Owner, inodes: [&Option<PyRef<'_, Inode>>; 2]) -> PyResult<()> {
    let Some(graph) = owner.life.as_ref().map(|l| l.graph()) else {
        return Ok(());
    };
    for inode in inodes.into_iter().flatten() {
        if let Some(life) = &inode.owner.life {
            life.check_in(graph)?;
        }
    }
    Ok(())
}
