//! Fop and callback arguments between C slots and Python, driven by the
//! argument kinds of the fop table. Coming in, everything is copied or
//! referenced at once (no GIL needed), so the values outlive the C call;
//! going out, Python values become C values kept alive for one wind or
//! unwind.

use crate::ffi::{self, glupy_slot_t};
use crate::fop_spec::{Arg, Ty};
use crate::values::buffer::{Iobref, Vector};
use crate::values::dict::Dict;
use crate::values::dirent::{read_list, Dirent, DirentData, OwnedDirents};
use crate::values::iatt::Iatt;
use crate::values::inode::{Fd, Inode, Owner};
use crate::values::loc::{Loc, OwnedLoc};
use crate::values::locks::{self, ActiveLock, LockData, OwnedLockList};
use crate::values::plain::{Flock, Lease, Statvfs};
use crate::values::refs::{DictRef, FdRef, InodeRef, IobrefRef, Life};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList};
use smallvec::SmallVec;
use std::any::Any;
use std::ffi::{CStr, CString, OsString};
use std::sync::Arc;

/// Length of rchecksum's strong checksum (SHA-256 in 10.3).
const STRONG_CHECKSUM_LEN: usize = 32;
/// rchecksum's strong checksum is MD5 unless the reply's xdata says
/// fips-mode-rchecksum (then SHA-256), as posix writes it and afr reads it.
const MD5_CHECKSUM_LEN: usize = 16;

/// The length of the strong checksum a reply with this xdata carries.
///
/// # Safety
/// `xdata` must be NULL or a live dict_t.
unsafe fn checksum_len(xdata: *mut ffi::dict_t) -> usize {
    let key = c"fips-mode-rchecksum".as_ptr() as *mut libc::c_char;
    // SAFETY: a live dict (by contract) and a NUL-terminated key.
    if !xdata.is_null() && unsafe { ffi::dict_get_str_boolean(xdata, key, 0) } > 0 {
        STRONG_CHECKSUM_LEN
    } else {
        MD5_CHECKSUM_LEN
    }
}

/// One argument, owned by the host, before Python sees it.
pub enum Owned {
    Null,
    Loc(OwnedLoc),
    Fd(FdRef),
    Dict(DictRef),
    Inode(InodeRef),
    Iatt(ffi::iatt),
    Str(OsString),
    Int(i64),
    Uint(u64),
    Vector(Vector),
    Iobref(IobrefRef),
    Flock(Flock),
    Statvfs(Statvfs),
    Dirents(Vec<DirentData>),
    Lease(Lease),
    Checksum(Vec<u8>),
    Locks(Vec<LockData>),
}

// SAFETY: every variant owns copies or thread-safe counted references.
unsafe impl Send for Owned {}

/// A call's arguments as taken from C, on their way to Python. What is
/// left of them when this is dropped (a conversion failed midway, or the
/// job that carried them never ran) is let go as a Python value is: its
/// GlusterFS references released while the graph they came from lives,
/// kept once it is gone, when releasing them would touch freed memory
/// (see `Life`).
pub struct Taken {
    /// The arguments not yet converted, the last one first (converted by
    /// popping, so that what is left stays here).
    rest: Vec<Owned>,
    life: Arc<Life>,
}

impl Taken {
    /// Each argument as its Python value, in the call's order.
    pub fn into_python(self, py: Python<'_>, owner: &Owner) -> PyResult<Vec<Py<PyAny>>> {
        let mut values = Vec::with_capacity(self.rest.len());
        self.push_python(py, owner, |value| values.push(value))?;
        Ok(values)
    }

    /// Hands each argument, as its Python value and in the call's order, to
    /// `push` (into a vector the caller made for the whole call).
    pub fn push_python(
        mut self,
        py: Python<'_>,
        owner: &Owner,
        mut push: impl FnMut(Py<PyAny>),
    ) -> PyResult<()> {
        while let Some(value) = self.rest.pop() {
            push(to_python(py, value, owner.clone())?);
            if !self.rest.is_empty() && crate::fault::fails(crate::fault::Point::Conversion) {
                return Err(pyo3::exceptions::PyMemoryError::new_err(
                    "a conversion failure injected (glupy._glupy._panic_at)",
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if self.rest.is_empty() {
            return;
        }
        let rest = std::mem::take(&mut self.rest);
        // Under the GIL: the graph's end ends its life, then waits until it
        // has held the GIL once (`lifecycle::gil_handoff`) before its inodes
        // go, so releases that saw the life alive are over by then.
        Python::attach(|_| {
            if self.life.alive() {
                drop(rest);
            } else {
                rest.into_iter().for_each(std::mem::forget);
            }
        });
    }
}

/// Copies the arguments out of `slots` (or takes references that keep
/// them alive): nothing returned points into what the call lent. `life`
/// is the life of `this`'s graph.
///
/// # Safety
/// `slots` must hold `specs.len()` values of the kinds in `specs`, live for
/// the duration of this call; `this` is our live xlator.
pub unsafe fn take_args(
    specs: &[Arg],
    slots: *const glupy_slot_t,
    op_ret: i32,
    this: *mut ffi::xlator_t,
    life: &Arc<Life>,
) -> Taken {
    // SAFETY: by contract.
    let s = unsafe { std::slice::from_raw_parts(slots, specs.len()) };
    let find = |ty: Ty| specs.iter().position(|a| a.ty == ty);
    let mut rest: Vec<Owned> = specs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            // SAFETY: the union member read matches the kind (build.rs packs
            // pointers in p and scalars in i); pointers are NULL or live.
            unsafe {
                let p = s[i].p;
                if a.ty.is_pointer() && p.is_null() {
                    return Owned::Null;
                }
                match a.ty {
                    Ty::Loc => OwnedLoc::copy_from(p.cast()).map_or(Owned::Null, Owned::Loc),
                    Ty::Fd => FdRef::take(p.cast()).map_or(Owned::Null, Owned::Fd),
                    Ty::Dict => DictRef::take(p.cast()).map_or(Owned::Null, Owned::Dict),
                    Ty::Inode => InodeRef::take(p.cast()).map_or(Owned::Null, Owned::Inode),
                    Ty::Iatt => Owned::Iatt(*(p as *const ffi::iatt)),
                    Ty::Str => Owned::Str(crate::values::os_string(
                        CStr::from_ptr(p.cast()).to_bytes(),
                    )),
                    Ty::Int => Owned::Int(s[i].i),
                    Ty::Uint => Owned::Uint(s[i].i as u64),
                    Ty::Iovec => {
                        let count = s[i + 1].i as i32;
                        let iobref =
                            find(Ty::Iobref).map_or(std::ptr::null_mut(), |j| s[j].p.cast());
                        Vector::from_c(p.cast(), count, iobref, this)
                            .map_or(Owned::Null, Owned::Vector)
                    }
                    Ty::Iobref => IobrefRef::take(p.cast()).map_or(Owned::Null, Owned::Iobref),
                    Ty::Flock => Owned::Flock(Flock::from_c(&*(p as *const ffi::gf_flock))),
                    Ty::Statvfs => Owned::Statvfs(Statvfs::from_c(&*(p as *const ffi::statvfs))),
                    Ty::Dirents => Owned::Dirents(read_list(p.cast())),
                    Ty::Lease => Owned::Lease(Lease::from_c(&*(p as *const ffi::gf_lease))),
                    Ty::Checksum if op_ret >= 0 => {
                        let xdata = find(Ty::Dict).map_or(std::ptr::null_mut(), |j| s[j].p);
                        let len = checksum_len(xdata.cast());
                        Owned::Checksum(std::slice::from_raw_parts(p as *const u8, len).to_vec())
                    }
                    Ty::Checksum => Owned::Null,
                    Ty::LockList => Owned::Locks(locks::copy_list(p.cast())),
                }
            }
        })
        .collect();
    rest.reverse();
    Taken {
        rest,
        life: Arc::clone(life),
    }
}

/// Turns an owned argument into its Python value.
pub fn to_python(py: Python<'_>, value: Owned, owner: Owner) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Owned::Null => py.None(),
        Owned::Loc(l) => Py::new(py, Loc::new(l, owner))?.into_any(),
        Owned::Fd(f) => Py::new(py, Fd::new(f, owner))?.into_any(),
        Owned::Dict(d) => Py::new(py, Dict::new(d.bound(owner.life.as_ref())))?.into_any(),
        Owned::Inode(i) => Py::new(py, Inode::new(i, owner))?.into_any(),
        Owned::Iatt(raw) => Py::new(py, Iatt { raw })?.into_any(),
        Owned::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        Owned::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Owned::Uint(u) => u.into_pyobject(py)?.into_any().unbind(),
        Owned::Vector(v) => Py::new(py, v.bound(owner.life.as_ref()))?.into_any(),
        Owned::Iobref(r) => Py::new(
            py,
            Iobref {
                iobref: r.bound(owner.life.as_ref()),
            },
        )?
        .into_any(),
        Owned::Flock(f) => Py::new(py, f)?.into_any(),
        Owned::Statvfs(s) => Py::new(py, s)?.into_any(),
        Owned::Dirents(list) => {
            // Bound first: entries left unconverted by a failure midway
            // are let go by their graph's life too.
            let bound: Vec<DirentData> = list
                .into_iter()
                .map(|d| d.bound(owner.life.as_ref()))
                .collect();
            let items = bound
                .into_iter()
                .map(|d| Py::new(py, Dirent::from_data(py, d, owner.clone())?))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Owned::Lease(l) => Py::new(py, l)?.into_any(),
        Owned::Checksum(c) => PyBytes::new(py, &c).into_any().unbind(),
        Owned::Locks(list) => {
            let items = list
                .into_iter()
                .map(|d| Py::new(py, ActiveLock::from_data(py, d)?))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
    })
}

/// C arguments built from Python values, with what keeps them alive: GlusterFS
/// references and copies of our own (`keep`, `iatts`), which any thread may
/// drop without the GIL, and only for a loc (never in a reply) the Python
/// value itself (`python`), which must be dropped with the GIL held.
///
/// One allocation holds it all up to a typical call's size (a lookup's
/// reply: four slots, two iatts, two references): a wind and its unwind
/// were a dozen, one for each vector and each reference boxed. Boxed as a
/// whole, it moves as a pointer (an answer goes through several hands), and
/// what the slots point to stays where it is.
pub struct Outgoing(Box<Parts>);

/// What an `Outgoing` holds, never moved out of its box while the slots
/// point into it: private to this module (no `&mut Parts` leaves it), and
/// taken apart only by `release`, after the call.
struct Parts {
    slots: SmallVec<[glupy_slot_t; INLINE_SLOTS]>,
    keep: SmallVec<[Kept; 4]>,
    /// Copies of the iatt arguments, the slots pointing into them: room for
    /// every iatt of the call is made first, so they never move.
    iatts: SmallVec<[ffi::iatt; 2]>,
    python: PythonHeld,
    /// The dict_t's the arguments carry, as arguments or in directory
    /// entries (see `carries_dict`).
    dicts: SmallVec<[*const libc::c_void; 2]>,
    /// Bytes in the vector argument, if there is one.
    data_len: Option<usize>,
}

/// Slots held without an allocation of their own: every callback of the
/// fop table, and every fop but put (ten arguments), fits (checked by a
/// test).
const INLINE_SLOTS: usize = 8;

/// The Python values an `Outgoing` keeps (a wound loc), to drop with the GIL.
pub type PythonHeld = SmallVec<[Py<PyAny>; 1]>;

/// A value an `Outgoing` keeps alive for its call. The counted references
/// are held as they are (their object is what a slot points to); anything
/// else is boxed, so that what the slot points into does not move.
#[allow(dead_code)] // held only to be dropped (released) after the call
enum Kept {
    Inode(Arc<InodeRef>),
    Fd(FdRef),
    Dict(DictRef),
    Iobref(IobrefRef),
    Any(Box<dyn Any + Send>),
}

// SAFETY: the slots point into the boxed parts (`iatts`), into heap values
// `keep` owns (boxed, or a reference's GlusterFS object), or into the
// `OwnedLoc` a held `Loc` (`python`) owns; moving the whole bundle to
// another thread moves that ownership with it.
unsafe impl Send for Outgoing {}

impl Outgoing {
    /// All-NULL/zero arguments, as an error reply carries.
    pub fn empty(n: usize) -> Self {
        Outgoing(Box::new(Parts {
            slots: smallvec::smallvec![glupy_slot_t { i: 0 }; n.max(1)],
            keep: SmallVec::new(),
            iatts: SmallVec::new(),
            python: SmallVec::new(),
            dicts: SmallVec::new(),
            data_len: None,
        }))
    }

    pub fn as_ptr(&self) -> *const glupy_slot_t {
        self.0.slots.as_ptr()
    }

    /// Whether the arguments carry `dict` (compared, never read).
    pub fn carries_dict(&self, dict: *const libc::c_void) -> bool {
        self.0
            .dicts
            .iter()
            .any(|&carried| std::ptr::eq(carried, dict))
    }

    /// Lets go of the C arguments and of what kept them alive, except the
    /// Python values, given back for the caller to drop with the GIL held
    /// (none for a reply: no callback takes a loc).
    pub fn release(self) -> PythonHeld {
        let Parts { keep, python, .. } = *self.0;
        drop(keep);
        python
    }
}

impl Parts {
    /// Keeps `value` boxed, returning it where it stays until released (a
    /// slot's pointer is taken from this, after the value is in place).
    fn hold<T: Any + Send>(&mut self, value: T) -> &mut T {
        let boxed: Box<dyn Any + Send> = Box::new(value);
        self.keep.push(Kept::Any(boxed));
        match self.keep.last_mut() {
            Some(Kept::Any(b)) => b.downcast_mut::<T>().expect("just pushed"),
            _ => unreachable!("just pushed"),
        }
    }

    /// Copies `raw` into the call's iatts, returning where it stays.
    fn hold_iatt(&mut self, raw: ffi::iatt) -> *mut libc::c_void {
        // A push past the room made first would move those already pointed to.
        assert!(
            self.iatts.len() < self.iatts.capacity(),
            "room for every iatt was made"
        );
        self.iatts.push(raw);
        let held: &mut ffi::iatt = self.iatts.last_mut().expect("just pushed");
        (held as *mut ffi::iatt).cast()
    }
}

/// Names a call in error messages: ("lookup", "wind") -> "lookup wind".
pub struct Call<'a>(pub &'a str, pub &'a str);

impl std::fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

fn wrong_type(what: &Call<'_>, arg: &Arg, got: &Bound<'_, PyAny>) -> PyErr {
    let got = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    PyTypeError::new_err(format!(
        "{what}: argument {:?} must be {:?} or None, not {got}",
        arg.name, arg.ty
    ))
}

/// Builds C arguments for `specs` from Python values. `what` names the
/// call in error messages ("lookup wind").
pub fn from_python(
    what: &Call<'_>,
    specs: &[Arg],
    values: &[Bound<'_, PyAny>],
    this: *mut ffi::xlator_t,
) -> PyResult<Outgoing> {
    if values.len() != specs.len() {
        let names: Vec<&str> = specs.iter().map(|a| a.name.as_str()).collect();
        return Err(PyTypeError::new_err(format!(
            "{what} takes {} arguments ({}), got {}",
            specs.len(),
            names.join(", "),
            values.len()
        )));
    }
    // SAFETY: `this` is the live translator winding or answering.
    let graph = unsafe { (*this).graph } as usize;
    // A value bound to a graph (GlusterFS's, or Python's built in one)
    // goes only down or up that graph.
    let in_graph = |life: Option<&Arc<Life>>| life.map_or(Ok(()), |l| l.check_in(graph));
    let mut outgoing = Outgoing::empty(specs.len());
    let out = &mut *outgoing.0;
    out.iatts
        .reserve_exact(specs.iter().filter(|a| a.ty == Ty::Iatt).count());
    let mut vector_count: Option<(usize, i64)> = None;
    let mut vector_iobref: *mut ffi::iobref = std::ptr::null_mut();
    for (i, (arg, v)) in specs.iter().zip(values).enumerate() {
        if v.is_none() {
            continue; // NULL pointer or zero
        }
        let bad = || wrong_type(what, arg, v);
        let slot = &mut out.slots[i];
        match arg.ty {
            Ty::Int => slot.i = v.extract::<i64>().map_err(|_| bad())?,
            Ty::Uint => slot.i = v.extract::<u64>().map_err(|_| bad())? as i64,
            Ty::Loc => {
                let l = v.cast::<Loc>().map_err(|_| bad())?;
                in_graph(l.get().owner.life.as_ref())?;
                // A loc is only wound, never answered: kept as it is, the
                // wind drops it with the GIL back (a copy costs loc_copy).
                out.slots[i].p = l.get().loc.as_ptr().cast();
                out.python.push(l.clone().into_any().unbind());
            }
            Ty::Fd => {
                let f = v.cast::<Fd>().map_err(|_| bad())?;
                in_graph(f.get().fd.life())?;
                out.slots[i].p = f.get().fd.get()?.cast();
                out.keep.push(Kept::Fd(f.get().fd.clone()));
            }
            Ty::Inode => {
                let n = v.cast::<Inode>().map_err(|_| bad())?;
                in_graph(n.get().inode.life())?;
                out.slots[i].p = n.get().inode.get()?.cast();
                out.keep.push(Kept::Inode(Arc::clone(&n.get().inode)));
            }
            Ty::Dict => {
                let d = match v.cast::<Dict>() {
                    Ok(d) => d.clone(),
                    // Any mapping becomes a new dict.
                    Err(_) => v
                        .py()
                        .get_type::<Dict>()
                        .call1((v,))
                        .map_err(|e| {
                            // A mapping that cannot become a Dict: say why.
                            let why = if v.hasattr("items").unwrap_or(false) {
                                format!(
                                    " (as a mapping: {e}; keys are str, values bytes, str or int)"
                                )
                            } else {
                                String::new()
                            };
                            PyTypeError::new_err(format!("{}{why}", bad().value(v.py())))
                        })?
                        .cast_into::<Dict>()?,
                };
                in_graph(d.get().dict.life())?;
                out.slots[i].p = d.get().dict.get()?.cast();
                out.dicts.push(d.get().dict.as_ptr().cast());
                out.keep.push(Kept::Dict(d.get().dict.clone()));
            }
            Ty::Iatt => {
                let a = v.cast::<Iatt>().map_err(|_| bad())?;
                out.slots[i].p = out.hold_iatt(a.borrow().raw);
            }
            Ty::Str => {
                let bytes: Vec<u8> = if let Ok(b) = v.cast::<PyBytes>() {
                    b.as_bytes().to_vec()
                } else {
                    use std::os::unix::ffi::OsStringExt;
                    v.extract::<OsString>().map_err(|_| bad())?.into_vec()
                };
                let c = CString::new(bytes).map_err(|_| {
                    PyValueError::new_err(format!("{what}: {:?} contains NUL", arg.name))
                })?;
                let p = c.as_ptr() as *mut libc::c_void;
                out.hold(c);
                out.slots[i].p = p;
            }
            Ty::Iovec => {
                let vec = match v.cast::<Vector>() {
                    Ok(vec) => vec.clone(),
                    Err(_) => {
                        let data: Vec<u8> = if let Ok(b) = v.cast::<PyBytes>() {
                            b.as_bytes().to_vec()
                        } else if let Ok(b) = v.cast::<PyByteArray>() {
                            b.to_vec()
                        } else if let Ok(m) = v.extract::<Vec<u8>>() {
                            m
                        } else {
                            return Err(bad());
                        };
                        Bound::new(v.py(), Vector::from_bytes(this, &data)?)?
                    }
                };
                let inner = vec.get();
                in_graph(inner.iobref.as_ref().and_then(|r| r.life()))?;
                vector_iobref = inner
                    .iobref
                    .as_ref()
                    .map_or(Ok(std::ptr::null_mut()), |r| r.get())?;
                vector_count = Some((i + 1, inner.iov.len() as i64));
                out.data_len = Some(inner.total_len());
                // A Vector of our own: the iovecs copied, the iobref that
                // owns their buffers referenced.
                let copy = out.hold(Vector {
                    iov: inner.iov.clone(),
                    iobref: inner.iobref.clone(),
                });
                out.slots[i].p = copy.iov.as_ptr() as *mut libc::c_void;
            }
            Ty::Iobref => {
                let r = v.cast::<Iobref>().map_err(|_| bad())?;
                in_graph(r.get().iobref.life())?;
                out.slots[i].p = r.get().iobref.get()?.cast();
                out.keep.push(Kept::Iobref(r.get().iobref.clone()));
            }
            Ty::Flock => {
                let f = v.cast::<Flock>().map_err(|_| bad())?.borrow().to_c();
                let held: &mut ffi::gf_flock = out.hold(*f);
                out.slots[i].p = (held as *mut ffi::gf_flock).cast();
            }
            Ty::Statvfs => {
                let s = v.cast::<Statvfs>().map_err(|_| bad())?.borrow().to_c();
                let held: &mut ffi::statvfs = out.hold(*s);
                out.slots[i].p = (held as *mut ffi::statvfs).cast();
            }
            Ty::Lease => {
                let l = v.cast::<Lease>().map_err(|_| bad())?.borrow().to_c()?;
                let held: &mut ffi::gf_lease = out.hold(*l);
                out.slots[i].p = (held as *mut ffi::gf_lease).cast();
            }
            Ty::Dirents => {
                let items: Vec<Py<Dirent>> = v.extract().map_err(|_| bad())?;
                let list = OwnedDirents::build(&items, v.py(), &in_graph)?;
                for item in &items {
                    if let Some(dict) = &item.borrow(v.py()).dict {
                        out.dicts.push(dict.get().dict.as_ptr().cast());
                    }
                }
                out.slots[i].p = list.as_ptr().cast();
                out.hold(list);
            }
            Ty::Checksum => {
                let mut b: Vec<u8> = v.extract().map_err(|_| bad())?;
                if b.len() != MD5_CHECKSUM_LEN && b.len() != STRONG_CHECKSUM_LEN {
                    return Err(PyValueError::new_err(format!(
                        "{what}: strong_checksum is {MD5_CHECKSUM_LEN} bytes (MD5) or \
                         {STRONG_CHECKSUM_LEN} (SHA-256, with fips-mode-rchecksum in xdata)"
                    )));
                }
                // Readers take 16 or 32 bytes by the xdata flag: never less.
                b.resize(STRONG_CHECKSUM_LEN, 0);
                out.slots[i].p = b.as_ptr() as *mut libc::c_void;
                out.hold(b);
            }
            Ty::LockList => {
                let items: Vec<Py<ActiveLock>> = v.extract().map_err(|_| bad())?;
                let list = OwnedLockList::build(v.py(), &items)?;
                out.slots[i].p = list.as_ptr().cast();
                out.hold(list);
            }
        }
    }
    pair_vector_and_iobref(specs, out, vector_count, vector_iobref)?;
    Ok(outgoing)
}

/// The count after a vector is always the vector's own (0 with no vector:
/// a NULL iovec with a count crashes whoever reads it). The iobref passed
/// on must hold every buffer the iovec points into, or a layer that keeps
/// the request (write-behind, io-threads, the socket layer) sends memory
/// freed when our wind returns: if the translator gave another iobref than
/// the vector's own (the request's, with new data), both are merged into a
/// fresh one.
fn pair_vector_and_iobref(
    specs: &[Arg],
    out: &mut Parts,
    vector_count: Option<(usize, i64)>,
    vector_iobref: *mut ffi::iobref,
) -> PyResult<()> {
    let Some(vector_at) = specs.iter().position(|a| a.ty == Ty::Iovec) else {
        return Ok(());
    };
    let count_at = vector_at + 1;
    let Some((_, n)) = vector_count else {
        out.slots[count_at].i = 0;
        return Ok(());
    };
    out.slots[count_at].i = n;
    let Some(j) = specs.iter().position(|a| a.ty == Ty::Iobref) else {
        return Ok(());
    };
    // SAFETY: reading the pointer member the loop above wrote (or NULL).
    let given = unsafe { out.slots[j].p } as *mut ffi::iobref;
    if given.is_null() || given == vector_iobref {
        out.slots[j].p = vector_iobref.cast();
        return Ok(());
    }
    if vector_iobref.is_null() {
        return Ok(()); // an empty vector: nothing of it to keep alive
    }
    let merged = IobrefRef::new()
        .ok_or_else(|| pyo3::exceptions::PyMemoryError::new_err("iobref_new failed"))?;
    // SAFETY: all three iobrefs are live (the vector and the given Iobref
    // are held by `out`); iobref_merge takes references on the buffers.
    let failed = unsafe {
        ffi::iobref_merge(merged.as_ptr(), vector_iobref) != 0
            || ffi::iobref_merge(merged.as_ptr(), given) != 0
    };
    if failed {
        return Err(pyo3::exceptions::PyMemoryError::new_err(
            "iobref_merge failed",
        ));
    }
    out.slots[j].p = merged.as_ptr().cast();
    out.keep.push(Kept::Iobref(merged));
    Ok(())
}

/// A successful reply must carry the values GlusterFS reads from it (the
/// server and the clients dereference them): refuse one without, rather
/// than let it crash the process further up.
pub fn check_success_reply(fop: &str, specs: &[Arg], out: &Outgoing, op_ret: i32) -> PyResult<()> {
    let missing: Vec<&str> = specs
        .iter()
        .enumerate()
        .filter(|(_, a)| match a.ty {
            Ty::Dict | Ty::Iobref | Ty::LockList | Ty::Int | Ty::Uint => false,
            Ty::Iovec => op_ret > 0,
            _ => true,
        })
        // SAFETY: reading the pointer member of slots we built for pointers.
        .filter(|(i, _)| unsafe { out.0.slots[*i].p.is_null() })
        .map(|(_, a)| a.name.as_str())
        .collect();
    if let Some(len) = out.0.data_len.filter(|len| *len < op_ret as usize) {
        // Clients copy op_ret bytes out of the vector: more than it holds
        // would hand them whatever memory follows.
        return Err(PyValueError::new_err(format!(
            "a successful {fop} reply's op_ret ({op_ret}) is more than its data ({len} bytes): \
             answer op_ret = len(data)"
        )));
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "a successful {fop} reply (op_ret {op_ret}) needs {}; got None. Pass the values from the \
         callback, or answer an error (op_ret -1, an errno).",
        missing.join(", ")
    )))
}

#[cfg(test)]
#[test]
fn every_callback_and_all_fops_but_put_fit_the_inline_slots() {
    let fops = &crate::fops::FOPS;
    assert!(fops.iter().all(|f| f.cbk_args.len() <= INLINE_SLOTS));
    let over: Vec<&str> = fops
        .iter()
        .filter(|f| f.args.len() > INLINE_SLOTS)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(over, ["put"]);
}
