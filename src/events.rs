//! What reaches a translator besides fops: graph events (notify), and
//! the end of inodes and fds, which frees the Python objects a translator
//! kept in their context. None of these ever waits for the GIL on the
//! calling thread: GlusterFS may hold its own locks there. They reach
//! Python one at a time, in the order GlusterFS sent them (per
//! translator): a `child_down` never overtakes the `child_up` before it.

use crate::ffi;
use crate::instance::Instance;
use crate::logging;
use crate::pool::{self, Job};
use crate::values::inode::ctx_from_raw;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A translator's events not yet run, and whether a pool job is running
/// them: at most one is, so they run in order.
#[derive(Default)]
pub struct EventQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Job>,
    draining: bool,
}

impl EventQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`; true if no job runs the queue now (the caller starts one).
    fn push(&self, job: Job) -> bool {
        let mut state = self.state();
        state.waiting.push_back(job);
        !std::mem::replace(&mut state.draining, true)
    }

    /// The next event, or None (and nobody drains any more) when empty.
    fn next(&self) -> Option<Job> {
        let mut state = self.state();
        let job = state.waiting.pop_front();
        if job.is_none() {
            state.draining = false;
        }
        job
    }

    /// Runs the events queued so far and those queued meanwhile, in order.
    fn drain(&self) {
        while let Some(job) = self.next() {
            crate::guard::guarded("a glupy event", (), job);
        }
    }
}

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

/// Runs `body` with the GIL on a pool thread, for this instance, after the
/// instance's events queued before it. Only takes a short lock here.
fn later(inst: Arc<Instance>, body: impl FnOnce(Python<'_>, &Instance) + Send + 'static) {
    let job_inst = Arc::clone(&inst);
    let job: Job = Box::new(move || {
        logging::with_domain(&job_inst.name, || Python::attach(|py| body(py, &job_inst)))
    });
    if !inst.events.push(job) {
        return; // the job draining this queue will run it
    }
    let drainer = Arc::clone(&inst);
    if !pool::submit(Box::new(move || drainer.events.drain())) {
        // Only before the pool exists, when no instance does either.
        while inst.events.next().is_some() {}
    }
}

pub unsafe extern "C" fn on_notify(this: *mut ffi::xlator_t, event: i32, data: *mut libc::c_void) {
    crate::guard::guarded("notify", (), || {
        if event as u32 == ffi::glusterfs_event_t_GF_EVENT_PARENT_DOWN {
            // The graph is going away: see lifecycle.
            crate::lifecycle::graph_going_down(this);
        }
        // SAFETY: notify gets a live glupy xlator.
        if let Some(slot) = unsafe { crate::lifecycle::slot(this) } {
            match event as u32 {
                ffi::glusterfs_event_t_GF_EVENT_CHILD_UP => slot.announcer.child_up(this),
                ffi::glusterfs_event_t_GF_EVENT_CHILD_DOWN => slot.announcer.child_down(),
                _ => {}
            }
        }
        let Some(name) = event_name(event) else {
            return;
        };
        // SAFETY: notify gets a live xlator; private is NULL before init.
        let Some(inst) = (unsafe { Instance::of(this) }) else {
            return;
        };
        if event as u32 == ffi::glusterfs_event_t_GF_EVENT_UPCALL && !data.is_null() {
            // SAFETY: for GF_EVENT_UPCALL, data is a struct gf_upcall, live
            // during this call.
            unsafe { forget_decided_answers(&inst, data as *const ffi::gf_upcall) };
        }
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

/// A cache-invalidation upcall: answer tables forget what they decided
/// about the inode and about the directories it changed in, before the
/// upcall returns (no later hit can be stale).
///
/// # Safety
/// `upcall` must be live for the call.
unsafe fn forget_decided_answers(inst: &Instance, upcall: *const ffi::gf_upcall) {
    if inst.tables.all.is_empty() {
        return;
    }
    // SAFETY: by contract; a cache invalidation carries its data struct.
    unsafe {
        let u = &*upcall;
        inst.tables.changed(u.gfid);
        if u.event_type == ffi::gf_upcall_event_t_GF_UPCALL_CACHE_INVALIDATION && !u.data.is_null()
        {
            let ci = &*(u.data as *const ffi::gf_upcall_cache_invalidation);
            for parent in [ci.p_stat.ia_gfid, ci.oldp_stat.ia_gfid] {
                if parent != [0; 16] {
                    inst.tables.changed(parent);
                }
            }
        }
    }
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
        if ffi::glupy_fd_ctx_del(fd, this, &mut raw) == 0 && raw != 0 {
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
