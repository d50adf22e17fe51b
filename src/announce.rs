//! A client process's registration: what a glupy translator in a FUSE
//! mount or a gfapi application runs, written by the process itself as an
//! extended attribute on the volume's root, so that `glupy status` on any
//! server of the pool reads it from the bricks (clients do not listen, so
//! nothing can ask them; python/glupy/brickquery.py).
//!
//! The name is `trusted.glupy.client.<hostname>.<pid>.<translator>`; the
//! value is the status answer (`status::client_text`): module, sha256, load
//! time, pid, host, volfile server, mount point, and when it was written
//! and how often it is written again. It goes down this translator's own
//! child (not through its Python), with a frame of its own, as GlusterFS's
//! internal clients do: so through DHT and AFR to every brick, and healed
//! like any xattr of the root.
//!
//! One thread per translator writes it at the first CHILD_UP, again after
//! every CHILD_UP (a brick came back) and every reload, and every
//! `status-interval` seconds (option; 0 = never). Nothing removes it when
//! the process ends (GlusterFS calls no fini at unmount): `glupy status`
//! calls a registration not written again for three intervals gone, and
//! `glupy disable` removes them all. A graph switch in one process writes
//! under the same name; only the newest graph's translator writes it (an
//! old graph, until its PARENT_DOWN, would write back the old module).
//!
//! Not for bricks (the status key answers for them) nor for GlusterFS's internal clients (a negative
//! client pid: glfsheal, geo-replication and quota mounts), which come and
//! go and would only leave registrations behind.

use crate::ffi;
use crate::instance::Instance;
use crate::logging;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The default of option status-interval, in seconds.
pub const DEFAULT_INTERVAL: u64 = 60;

/// One translator's registration writer.
#[derive(Default)]
pub struct Announcer {
    state: Mutex<State>,
    wake: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    started: bool,
    /// Write again now (a CHILD_UP or a reload), not at the next interval.
    poked: bool,
    stopped: bool,
}

/// Which announcer of this process writes each name: the newest.
static NEWEST: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn newest() -> std::sync::MutexGuard<'static, Option<HashMap<String, u64>>> {
    NEWEST.lock().unwrap_or_else(|p| p.into_inner())
}

/// An xlator pointer the writer thread may carry: the translator outlives
/// the thread (fini joins it before the xlator goes).
struct Xl(*mut ffi::xlator_t);
// SAFETY: see above; GlusterFS allows an xlator's use from any thread.
unsafe impl Send for Xl {}

impl Announcer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A child came up: the first time, starts the writer (if this process
    /// registers at all); later, asks it to write again now.
    pub fn child_up(self: &Arc<Self>, this: *mut ffi::xlator_t) {
        let mut state = self.state();
        if state.stopped {
            return;
        }
        if state.started {
            state.poked = true;
            self.wake.notify_all();
            return;
        }
        state.started = true;
        drop(state);
        // SAFETY: notify gets a live xlator.
        if unsafe { ffi::glupy_registers(this) } == 0 {
            return;
        }
        let me = Arc::clone(self);
        let xl = Xl(this);
        let spawned = std::thread::Builder::new()
            .name("glupy-announce".into())
            .spawn(move || {
                let xl = xl;
                crate::guard::guarded("a client registration", (), || me.run(xl.0))
            });
        match spawned {
            Ok(handle) => {
                *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            }
            Err(e) => tracing::error!(
                "cannot start the thread that registers this client for glupy status ({e})"
            ),
        }
    }

    /// A reload installed a new instance: write its registration now.
    pub fn poke(&self) {
        let mut state = self.state();
        state.poked = true;
        self.wake.notify_all();
    }

    /// The graph is going down: no more writes (never waits: PARENT_DOWN
    /// comes on GlusterFS's threads).
    pub fn stop(&self) {
        self.state().stopped = true;
        self.wake.notify_all();
    }

    /// fini: stops and waits for the writer (a write in flight is answered
    /// by the child, at the latest when its connection goes).
    pub fn join(&self) {
        self.stop();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn run(&self, this: *mut ffi::xlator_t) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut key = None;
        let mut failing = false;
        loop {
            // SAFETY: `this` lives until fini, which stops and joins us
            // first; current() reads the slot GlusterFS has not freed.
            let Some(inst) = (unsafe { crate::lifecycle::current(this) }) else {
                return;
            };
            let interval = inst.status_interval();
            if interval == 0 {
                logging::write(
                    &inst.name,
                    logging::GF_LOG_DEBUG,
                    "status-interval 0: this client does not register for glupy status",
                );
                return;
            }
            let name = key
                .get_or_insert_with(|| {
                    let name = client_key(&inst);
                    newest()
                        .get_or_insert_with(HashMap::new)
                        .insert(name.clone(), id);
                    name
                })
                .clone();
            if newest().as_ref().and_then(|m| m.get(&name)) != Some(&id) {
                return; // a newer graph's translator writes it now
            }
            let text = crate::status::client_text(&inst, this, interval);
            drop(inst);
            let result = write(this, &name, &text);
            // SAFETY: as above.
            let Some(inst) = (unsafe { crate::lifecycle::current(this) }) else {
                return;
            };
            let mut wait = Duration::from_secs(interval);
            match result {
                // The mount's inode table comes right after this CHILD_UP.
                Err(e) if e == libc::EAGAIN => wait = Duration::from_millis(200),
                Err(e) if !failing => {
                    failing = true;
                    logging::write(
                        &inst.name,
                        logging::GF_LOG_WARNING,
                        &format!(
                            "cannot register this client for glupy status ({}: setxattr of \
                             {name} on the volume's root); trying again every {interval} s",
                            std::io::Error::from_raw_os_error(e)
                        ),
                    );
                }
                Err(_) => {}
                Ok(()) if failing => {
                    failing = false;
                    logging::write(
                        &inst.name,
                        logging::GF_LOG_INFO,
                        &format!("registered for glupy status again ({name})"),
                    );
                }
                Ok(()) => {}
            }
            drop(inst);
            if !self.wait(wait) {
                break;
            }
        }
        let mut map = newest();
        if let (Some(m), Some(name)) = (map.as_mut(), key) {
            if m.get(&name) == Some(&id) {
                m.remove(&name);
            }
        }
    }

    /// Until the interval passes or a poke (true), or a stop (false).
    fn wait(&self, interval: Duration) -> bool {
        let mut state = self.state();
        let deadline = std::time::Instant::now() + interval;
        while !state.stopped && !state.poked {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.poked = false;
        !state.stopped
    }
}

/// `trusted.glupy.client.<hostname>.<pid>.<translator>`.
pub fn client_key(inst: &Instance) -> String {
    let prefix = std::str::from_utf8(ffi::GLUPY_CLIENT_KEY_PREFIX)
        .unwrap_or_default()
        .trim_end_matches('\0');
    format!(
        "{prefix}{}.{}.{}",
        crate::status::hostname(),
        std::process::id(),
        inst.name
    )
}

/// Sets `name` to `text` on the volume's root (blocks until answered).
fn write(this: *mut ffi::xlator_t, name: &str, text: &str) -> Result<(), i32> {
    let (Ok(name), Ok(text)) = (CString::new(name), CString::new(text)) else {
        return Err(libc::EINVAL);
    };
    // SAFETY: a live xlator (see run); both strings are NUL-terminated and
    // live across the call, which copies them.
    let ret = unsafe { ffi::glupy_root_setxattr(this, name.as_ptr(), text.as_ptr()) };
    if ret < 0 {
        Err(-ret)
    } else {
        Ok(())
    }
}

/// A string GlusterFS's context holds for the process's life, or "".
pub fn context_string(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string of the process's context.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}
