//! What reaches a translator besides fops: graph events (notify), and
//! the end of inodes and fds, which frees the Python objects a translator
//! kept in their context. None of these ever waits for the GIL on the
//! calling thread: GlusterFS may hold its own locks there.

use crate::ffi;
use crate::instance::Instance;
use crate::values::inode::ctx_from_raw;
use crate::{logging, pool};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::Arc;

/// Events passed to Python's optional `notify(event, info)`.
fn event_name(event: i32) -> Option<&'static str> {
    Some(match event as u32 {
        ffi::glusterfs_event_t_GF_EVENT_CHILD_UP => "child_up",
        ffi::glusterfs_event_t_GF_EVENT_CHILD_DOWN => "child_down",
        ffi::glusterfs_event_t_GF_EVENT_CHILD_CONNECTING => "child_connecting",
        ffi::glusterfs_event_t_GF_EVENT_SOME_DESCENDENT_DOWN => "some_descendent_down",
        ffi::glusterfs_event_t_GF_EVENT_SOME_DESCENDENT_UP => "some_descendent_up",
        ffi::glusterfs_event_t_GF_EVENT_UPCALL => "upcall",
        ffi::glusterfs_event_t_GF_EVENT_PARENT_DOWN => "parent_down",
        _ => return None,
    })
}

/// Runs `body` with the GIL on a pool thread, for this instance.
fn later(inst: Arc<Instance>, body: impl FnOnce(Python<'_>, &Instance) + Send + 'static) {
    pool::submit(Box::new(move || {
        logging::with_domain(&Arc::clone(&inst.name), || {
            Python::attach(|py| body(py, &inst))
        })
    }));
}

pub unsafe extern "C" fn on_notify(this: *mut ffi::xlator_t, event: i32, data: *mut libc::c_void) {
    crate::guard::guarded("notify", (), || {
        if event as u32 == ffi::glusterfs_event_t_GF_EVENT_PARENT_DOWN {
            // The graph is going away: see lifecycle.
            crate::lifecycle::graph_going_down(this);
        }
        let Some(name) = event_name(event) else {
            return;
        };
        // SAFETY: notify gets a live xlator; private is NULL before init.
        let Some(inst) = (unsafe { Instance::of(this) }) else {
            return;
        };
        if inst.hooks.notify.is_none() {
            return;
        }
        // An upcall's data lives only during this call: copy what matters.
        let upcall = (event as u32 == ffi::glusterfs_event_t_GF_EVENT_UPCALL && !data.is_null())
            .then(|| {
                // SAFETY: for GF_EVENT_UPCALL, data is a struct gf_upcall.
                let u = unsafe { &*(data as *const ffi::gf_upcall) };
                (u.gfid, u.event_type)
            });
        later(inst, move |py, inst| {
            let info = PyDict::new(py);
            if let Some((gfid, kind)) = upcall {
                let _ = info.set_item("gfid", PyBytes::new(py, &gfid));
                let _ = info.set_item("event_type", kind);
            }
            inst.call_hook(py, &inst.hooks.notify, "notify", (name, info));
        });
    })
}

/// GlusterFS forgets an inode: free what Python kept in its context.
pub fn forget_inode(this: *mut ffi::xlator_t, inode: *mut ffi::inode_t) {
    let mut raw = 0u64;
    // SAFETY: forget gets a live inode and our xlator; the slot holds NULL
    // or a value from ctx_into_raw. Dropping the Py without the GIL defers
    // the decref to Python's next turn (PyO3's reference pool).
    unsafe {
        if ffi::inode_ctx_del2(inode, this, &mut raw, std::ptr::null_mut()) == 0 && raw != 0 {
            drop(ctx_from_raw(raw));
        }
    }
    // SAFETY: as for notify.
    if let Some(inst) = unsafe { Instance::of(this) } {
        if inst.hooks.forget.is_some() {
            // SAFETY: the inode is live during forget.
            let gfid = unsafe { (*inode).gfid };
            later(inst, move |py, inst| {
                inst.call_hook(py, &inst.hooks.forget, "forget", (PyBytes::new(py, &gfid),));
            });
        }
    }
}

/// An fd is released: free what Python kept in its context.
pub fn release_fd(this: *mut ffi::xlator_t, fd: *mut ffi::fd_t, dir: bool) {
    let mut raw = 0u64;
    // SAFETY: as for forget_inode, for an fd.
    unsafe {
        if ffi::fd_ctx_del(fd, this, &mut raw) == 0 && raw != 0 {
            drop(ctx_from_raw(raw));
        }
    }
    // SAFETY: as for notify.
    if let Some(inst) = unsafe { Instance::of(this) } {
        let hook = if dir {
            &inst.hooks.releasedir
        } else {
            &inst.hooks.release
        };
        if hook.is_some() {
            // SAFETY: the fd and its inode are live during release.
            let gfid = unsafe { (*(*fd).inode).gfid };
            later(inst, move |py, inst| {
                let (hook, what) = if dir {
                    (&inst.hooks.releasedir, "releasedir")
                } else {
                    (&inst.hooks.release, "release")
                };
                inst.call_hook(py, hook, what, (PyBytes::new(py, &gfid),));
            });
        }
    }
}
