//! Where a Python call runs. Python needs a deep stack, and GlusterFS calls
//! fops on io-threads workers (256 KiB stacks), on event threads (which
//! must never wait for Python) and elsewhere. The `python-thread` option:
//!
//! - `pool`: always on the host's Python threads (a thread switch per call);
//! - `caller`: on the calling thread, on a large stack segment the host
//!   switches to (no thread switch; a slow translator holds that thread);
//! - `auto` (default): on the calling thread where that is what the thread
//!   is for — io-threads workers, and the host's own Python threads — and on
//!   the pool everywhere else (event threads, FUSE, timers, synctasks).

use crate::pool::{self, Job};
use std::cell::Cell;

/// Stack a Python call is guaranteed, and the size of the segment switched
/// to when the current stack has less left.
const PYTHON_STACK_MIN: usize = 8 << 20;
const PYTHON_STACK_SEGMENT: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Auto,
    Pool,
    Caller,
}

impl Policy {
    pub fn parse(value: Option<&str>) -> Result<Policy, String> {
        match value.unwrap_or("auto") {
            "auto" => Ok(Policy::Auto),
            "pool" => Ok(Policy::Pool),
            "caller" => Ok(Policy::Caller),
            other => Err(format!(
                "option python-thread is {other:?}: use auto, pool or caller"
            )),
        }
    }
}

thread_local! {
    /// Whether this GlusterFS thread is an io-threads worker (cached).
    static IO_WORKER: Cell<Option<bool>> = const { Cell::new(None) };
}

fn is_io_worker() -> bool {
    IO_WORKER.with(|c| {
        *c.get().get_or_insert_with(|| {
            let mut name = [0u8; 16];
            // SAFETY: the buffer is 16 bytes, the size pthread names have.
            let rc = unsafe {
                libc::pthread_getname_np(libc::pthread_self(), name.as_mut_ptr().cast(), name.len())
            };
            // GlusterFS names io-threads workers glfs_iotwrNNN.
            rc == 0 && name.starts_with(b"glfs_iotwr")
        })
    })
}

/// Runs `job` on the calling thread with a large stack.
pub fn on_python_stack<T>(job: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(PYTHON_STACK_MIN, PYTHON_STACK_SEGMENT, job)
}

/// Runs or queues a Python job as `policy` says. False if it could not be
/// queued (before the pool exists).
pub fn dispatch(policy: Policy, job: Job) -> bool {
    let here = pool::on_worker()
        || match policy {
            Policy::Caller => true,
            Policy::Auto => is_io_worker(),
            Policy::Pool => false,
        };
    if here {
        on_python_stack(|| crate::guard::guarded("a glupy job", (), job));
        true
    } else {
        pool::submit(job)
    }
}
