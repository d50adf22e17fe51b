//! Counted references to GlusterFS objects. Holding one keeps the object
//! alive whatever thread drops it: refs are atomic or locked inside
//! GlusterFS, which makes these `Send + Sync` — until the graph they
//! belong to goes away (see `Life`).

use crate::ffi;
use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether GlusterFS objects handed to a translator's Python may still be
/// touched. GlusterFS frees a graph's inodes and fds when the graph goes
/// away whatever their references (`inode_table_destroy`), and gfapi's
/// `glfs_fini` then frees the dict pools and buffers too. Ended under the
/// GIL (so no Python accessor is half-way through) when the graph goes
/// down; after that a reference bound to it raises instead of reading
/// the object, and is abandoned instead of released when dropped.
pub struct Life {
    alive: AtomicBool,
    name: String,
    /// The GlusterFS graph (`glusterfs_graph_t`) of the translator, as an
    /// address only compared: its inodes, fds and (in gfapi) pools are that
    /// graph's, another graph of the same process must not get them.
    graph: usize,
}

impl Life {
    pub fn new(name: &str, graph: usize) -> Life {
        Life {
            alive: AtomicBool::new(true),
            name: name.to_string(),
            graph,
        }
    }

    pub fn end(&self) {
        self.alive.store(false, Ordering::Release);
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn check(&self) -> PyResult<()> {
        if self.alive() {
            Ok(())
        } else {
            Err(PyRuntimeError::new_err(format!(
                "the translator {} was shut down: the GlusterFS object behind this value is gone",
                self.name
            )))
        }
    }

    /// As `check`, and RuntimeError if the value is of another graph than
    /// `graph` (the translator about to wind or answer with it): a brick of
    /// another volume in a multiplexed brick process, another volume (or
    /// the graph before a switch) of a gfapi process. That graph's inodes
    /// and fds are not this one's, and its detach or fini frees them while
    /// this graph would still hold them.
    /// The graph's address (only compared).
    pub fn graph(&self) -> usize {
        self.graph
    }

    pub fn check_in(&self, graph: usize) -> PyResult<()> {
        self.check()?;
        if self.graph == graph {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(format!(
            "this value came from the translator {} in another GlusterFS graph (another brick \
             of a multiplexed brick process, another volume of the same client, or the graph \
             before a switch): a GlusterFS object only goes down or up the graph it came from \
             (copy what it says instead: glupy.Dict(d), glupy.Vector(bytes(v)))",
            self.name
        )))
    }
}

macro_rules! counted_ref {
    ($name:ident, $c:ty, $ref_fn:path, $unref_fn:path) => {
        pub struct $name(*mut $c, Option<Arc<Life>>);

        // SAFETY: GlusterFS's ref/unref for this type are thread-safe, and
        // the pointer is only read through its thread-safe API.
        unsafe impl Send for $name {}
        // SAFETY: as above; no interior mutation happens through &self.
        unsafe impl Sync for $name {}

        impl $name {
            /// Takes a new reference; `None` for NULL.
            ///
            /// # Safety
            /// `ptr` must be NULL or point to a live object.
            pub unsafe fn take(ptr: *mut $c) -> Option<Self> {
                if ptr.is_null() {
                    None
                } else {
                    // SAFETY: live by the caller's contract.
                    unsafe { $ref_fn(ptr) };
                    Some($name(ptr, None))
                }
            }

            /// Adopts a reference the caller already owns.
            ///
            /// # Safety
            /// `ptr` must be non-NULL and carry one reference given to us.
            #[allow(dead_code)] // not every kind is adopted
            pub unsafe fn adopt(ptr: *mut $c) -> Self {
                $name(ptr, None)
            }

            /// Binds the reference to the life of the graph it came from.
            pub fn bound(mut self, life: Option<&Arc<Life>>) -> Self {
                self.1 = life.cloned();
                self
            }

            /// The object, while its graph lives (the address is only
            /// compared or shown, never read, by callers of this one).
            pub fn as_ptr(&self) -> *mut $c {
                self.0
            }

            /// The life of the graph the reference is bound to, if any.
            #[allow(dead_code)] // not every kind is copied
            pub fn life(&self) -> Option<&Arc<Life>> {
                self.1.as_ref()
            }

            /// The object, or RuntimeError once its graph went away.
            pub fn get(&self) -> PyResult<*mut $c> {
                match &self.1 {
                    Some(life) => life.check().map(|()| self.0),
                    None => Ok(self.0),
                }
            }

            fn alive(&self) -> bool {
                self.1.as_ref().is_none_or(|l| l.alive())
            }
        }

        impl Clone for $name {
            fn clone(&self) -> Self {
                // SAFETY: we hold a reference, so the object is live (a
                // dead one is not dereferenced: the clone shares its death).
                if !self.alive() {
                    return $name(self.0, self.1.clone());
                }
                unsafe { Self::take(self.0).expect("non-null") }.bound(self.1.as_ref())
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                if self.alive() {
                    // SAFETY: we own exactly one reference, and its graph lives.
                    unsafe { $unref_fn(self.0) };
                }
            }
        }
    };
}

counted_ref!(InodeRef, ffi::inode_t, ffi::inode_ref, ffi::inode_unref);
counted_ref!(FdRef, ffi::fd_t, ffi::fd_ref, ffi::fd_unref);
counted_ref!(DictRef, ffi::dict_t, ffi::dict_ref, ffi::dict_unref);
counted_ref!(IobrefRef, ffi::iobref, ffi::iobref_ref, ffi::iobref_unref);

impl DictRef {
    /// A new empty dict.
    pub fn new() -> Option<Self> {
        // SAFETY: dict_new returns a dict with one reference, or NULL.
        let d = unsafe { ffi::dict_new() };
        if d.is_null() {
            None
        } else {
            // SAFETY: fresh dict with the one reference we now own.
            Some(unsafe { Self::adopt(d) })
        }
    }
}

impl IobrefRef {
    pub fn new() -> Option<Self> {
        // SAFETY: iobref_new returns an iobref with one reference, or NULL.
        let r = unsafe { ffi::iobref_new() };
        if r.is_null() {
            None
        } else {
            // SAFETY: fresh iobref with the one reference we now own.
            Some(unsafe { Self::adopt(r) })
        }
    }
}

/// A raw pointer passed through a GIL release: the caller guarantees what
/// it points to outlives the call.
pub struct SendPtr<T>(pub *mut T);
// SAFETY: only used to move pointers whose targets are kept alive by the
// sender across a blocking call it waits for.
unsafe impl<T> Send for SendPtr<T> {}
