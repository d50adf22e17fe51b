//! Counted references to GlusterFS objects. Holding one keeps the object
//! alive whatever thread drops it: refs are atomic or locked inside
//! GlusterFS, which makes these `Send + Sync`.

use crate::ffi;

macro_rules! counted_ref {
    ($name:ident, $c:ty, $ref_fn:path, $unref_fn:path) => {
        pub struct $name(*mut $c);

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
                    Some($name(ptr))
                }
            }

            /// Adopts a reference the caller already owns.
            ///
            /// # Safety
            /// `ptr` must be non-NULL and carry one reference given to us.
            #[allow(dead_code)] // not every kind is adopted
            pub unsafe fn adopt(ptr: *mut $c) -> Self {
                $name(ptr)
            }

            pub fn as_ptr(&self) -> *mut $c {
                self.0
            }
        }

        impl Clone for $name {
            fn clone(&self) -> Self {
                // SAFETY: we hold a reference, so the object is live.
                unsafe { Self::take(self.0).expect("non-null") }
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: we own exactly one reference.
                unsafe { $unref_fn(self.0) };
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
