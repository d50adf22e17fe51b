//! A client process's registration: what a glupy translator in a FUSE
//! mount or a gfapi application runs, written by the process itself as an
//! extended attribute on the volume's root, so that `glupy status` on any
//! server of the pool reads it from the bricks (clients do not listen, so
//! nothing can ask them; python/glupy/brickquery.py).
//!
//! The name is `trusted.glupy.client.<host id>.<pid>.<translator>`, where
//! the host id tells machines (and UTS namespaces) apart whatever their host
//! names: the first 8 hex digits of the kernel's boot id and the inode of
//! the UTS namespace. The value is the translator's status answer without
//! its helpers (`status::client_text`): module, sha256, load time, pid,
//! host name and id, volfile server, mount point, and when it was written
//! and how often it is written again. It goes down this translator's own
//! child (not through its Python), with frames of its own, as GlusterFS's
//! internal clients do: so through DHT and AFR to every brick, and healed
//! like any xattr of the root.
//!
//! One thread per translator writes it at the first CHILD_UP, again after
//! every CHILD_UP (a brick came back) and every reload or option change,
//! and every `status-interval` seconds (option; 0 = none: the registration
//! is removed). Nothing removes it when the process ends (GlusterFS calls no
//! fini at unmount), so each write first removes what is left behind: the
//! registrations of this host whose process is gone, and any not written
//! again for a day past its own interval (bricks' xattr space is finite:
//! ext4 keeps all of an inode's in one block). `glupy status` calls a
//! registration not written again for three intervals gone, and `glupy
//! disable` removes them all. A graph switch in one process writes under
//! the same name; only the newest graph's translator writes it, and a
//! graph that is no longer the process's active one (a new volfile came:
//! fuse switches an idle mount only at its next request) writes no more.
//!
//! The end of a graph: PARENT_DOWN stops the writes; the thread then
//! removes the registration if it still owns it (no newer graph of the
//! process writes it: a graph switch to a graph without glupy, a disable,
//! a glfs_fini), best effort, while the children disconnect. CHILD_DOWN
//! after it waits for the call in flight (answered, ENOTCONN at the latest,
//! as the children disconnect) and lets no other start, before GlusterFS
//! goes on to free the inode table (gfapi's glfs_fini frees it after the
//! CHILD_DOWN, before any fini). fini joins the thread.
//!
//! Not for bricks (the status key answers for them) nor for GlusterFS's
//! internal clients (a negative client pid: self-heal, glfsheal,
//! geo-replication and quota mounts), which come and go.

use crate::ffi;
use crate::instance::Instance;
use crate::logging;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The default of option status-interval, in seconds.
pub const DEFAULT_INTERVAL: u64 = 60;
/// The default of option status-space, in bytes: what registrations may
/// take of the root's xattrs (names and values; about 600 bytes each).
/// ext4 keeps all of an inode's xattrs in one 4 KiB block: 6 registrations
/// filled it on a brick root (after that GlusterFS could not add a key
/// there, such as AFR's mark for a new brick); this keeps 1 KiB for it.
pub const DEFAULT_SPACE: u64 = 3072;
/// A registration not written again for this long past three of its
/// intervals is removed by any writer.
const FORGET_AFTER_SECS: u64 = 24 * 3600;
/// How long CHILD_DOWN waits for a call in flight after PARENT_DOWN.
const DRAIN: Duration = Duration::from_secs(10);
/// How long PARENT_DOWN waits for the registration to be removed.
const WITHDRAW: Duration = Duration::from_secs(2);

/// One translator's registration writer.
#[derive(Default)]
pub struct Announcer {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    started: bool,
    /// Write again now (a CHILD_UP, a reload, an option change).
    poked: bool,
    /// PARENT_DOWN or fini: nothing is written any more; the registration
    /// is removed once, if this writer still owns it.
    stopped: bool,
    /// CHILD_DOWN after PARENT_DOWN, or fini: no call goes down any more.
    closed: bool,
    /// A call of the writer is down the graph.
    in_flight: bool,
    /// The writer is over (its last removal done or given up).
    finished: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Which announcer of this process writes a name: the newest to claim it
/// (0: none). `writing` is held across the check and the write, so a
/// replaced graph's writer never writes after the newer one. Each name has
/// its own: a write stuck below one translator (a child that does not
/// answer) holds up no other translator's registration.
#[derive(Default)]
struct Claim {
    newest: AtomicU64,
    writing: Mutex<()>,
}

impl Claim {
    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

static CLAIMS: Mutex<Option<HashMap<String, Arc<Claim>>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The claim on `key` (made at its first use, kept for the process).
fn claim_of(key: &str) -> Arc<Claim> {
    let mut claims = CLAIMS.lock().unwrap_or_else(|p| p.into_inner());
    let claims = claims.get_or_insert_with(HashMap::new);
    Arc::clone(claims.entry(key.to_string()).or_default())
}

/// An xlator pointer the writer thread may carry: the translator outlives
/// the thread (fini joins it before the xlator goes).
struct Xl(*mut ffi::xlator_t);
// SAFETY: see above; GlusterFS allows an xlator's use from any thread.
unsafe impl Send for Xl {}

impl Announcer {
    fn state(&self) -> MutexGuard<'_, State> {
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
        // SAFETY: notify gets a live xlator.
        if unsafe { ffi::glupy_registers(this) } == 0 {
            return;
        }
        let me = Arc::clone(self);
        let xl = Xl(this);
        // Spawned and kept under the lock: join() finds it.
        let spawned = std::thread::Builder::new()
            .name("glupy-announce".into())
            .spawn(move || {
                let xl = xl;
                crate::guard::guarded("a client registration", (), || me.run(xl.0));
                me.state().finished = true;
                me.wake.notify_all();
            });
        match spawned {
            Ok(handle) => state.thread = Some(handle),
            Err(e) => tracing::error!(
                "cannot start the thread that registers this client for glupy status ({e})"
            ),
        }
    }

    /// A reload or an option change: write (or remove) now.
    pub fn poke(&self) {
        self.state().poked = true;
        self.wake.notify_all();
    }

    /// PARENT_DOWN, before it goes on to the children: nothing more is
    /// written, and the writer removes its registration if it owns it (a
    /// graph switch to a graph without it, a disable, a glfs_fini) while
    /// the children are still there. Waits for that at most WITHDRAW (it
    /// needs no lock and no GIL of the caller's; GlusterFS's other threads
    /// carry its answer), none where no writer runs (bricks).
    pub fn stop(&self) {
        let mut state = self.state();
        state.stopped = true;
        self.wake.notify_all();
        let _ = self
            .wake
            .wait_timeout_while(state, WITHDRAW, |s| s.thread.is_some() && !s.finished);
    }

    /// CHILD_DOWN after PARENT_DOWN: waits (bounded) until the call in
    /// flight, answered as the children disconnect, is over; none starts
    /// after this (gfapi frees the inode table right after).
    pub fn child_down(&self) {
        let mut state = self.state();
        if !state.stopped {
            return;
        }
        state.closed = true;
        let (_state, waited) = self
            .wake
            .wait_timeout_while(state, DRAIN, |s| s.in_flight)
            .unwrap_or_else(|p| p.into_inner());
        if waited.timed_out() {
            tracing::warn!(
                "the graph is going down while its glupy status registration is still \
                 waiting for an answer after {} s",
                DRAIN.as_secs()
            );
        }
    }

    /// fini: closes and waits for the writer.
    pub fn join(&self) {
        {
            let mut state = self.state();
            state.stopped = true;
            state.closed = true;
        }
        self.wake.notify_all();
        let handle = self.state().thread.take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn run(&self, this: *mut ffi::xlator_t) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let me = Identity::of_this_process();
        let mut name: Option<(String, Arc<Claim>)> = None;
        let mut written = false;
        let mut failing = false;
        let mut over_space = false;
        loop {
            // SAFETY: `this` lives until fini, which stops and joins us
            // first; current() reads the slot GlusterFS has not freed.
            let Some(inst) = (unsafe { crate::lifecycle::current(this) }) else {
                break;
            };
            let (key, claim) = name.get_or_insert_with(|| {
                let key = client_key(&me, &inst);
                let claim = claim_of(&key);
                claim.newest.store(id, Ordering::SeqCst);
                (key, claim)
            });
            let (key, claim) = (key.clone(), Arc::clone(claim));
            let interval = inst.status.interval();
            let space = inst.status.space();
            let text = crate::status::client_text(&inst, this, &me, interval);
            let domain = inst.name.clone();
            drop(inst);
            let mut wait = Some(Duration::from_secs(interval));
            let result = {
                let _writing = claim.writing();
                if claim.newest.load(Ordering::SeqCst) != id {
                    written = false; // a newer graph's translator writes it now
                    break;
                }
                if self.state().stopped {
                    break;
                }
                // SAFETY: a live xlator (see above).
                let superseded = unsafe { ffi::glupy_graph_active(this) } == 0;
                if interval == 0 || superseded {
                    // Until poked or stopped. A graph a new volfile replaced
                    // (a disable, an idle mount's lazy switch) writes no more:
                    // the new graph's translator, if any, registers itself.
                    wait = None;
                    if written {
                        self.call(this, ffi::GLUPY_ROOT_REMOVE, &key, None)
                    } else {
                        Ok(())
                    }
                } else {
                    match self.tidy(this, &me, &key) {
                        Err(e) => Err(e),
                        Ok(used)
                            if space != 0 && used + key.len() + text.len() > space as usize =>
                        {
                            if !over_space {
                                over_space = true;
                                logging::write(
                                    &domain,
                                    logging::GF_LOG_WARNING,
                                    &format!(
                                        "not registered for glupy status: the other clients' \
                                         registrations take {used} of the {space} bytes of \
                                         status-space on the volume's root, and this one needs \
                                         {}; raise status-space where the bricks are on XFS \
                                         (ext4 keeps all of an inode's xattrs in one block)",
                                        key.len() + text.len()
                                    ),
                                );
                            }
                            if written {
                                self.call(this, ffi::GLUPY_ROOT_REMOVE, &key, None)
                                    .map(|()| written = false)
                            } else {
                                Ok(())
                            }
                        }
                        Ok(_) => {
                            over_space = false;
                            self.call(this, ffi::GLUPY_ROOT_SET, &key, Some(&text))
                                .map(|()| written = true)
                        }
                    }
                }
            };
            match result {
                // The mount's inode table comes right after this CHILD_UP.
                Err(e) if e == libc::EAGAIN => wait = Some(Duration::from_millis(200)),
                Err(e) if e == libc::ECANCELED => break,
                Err(e) => {
                    if !failing {
                        failing = true;
                        logging::write(
                            &domain,
                            logging::GF_LOG_WARNING,
                            &format!(
                                "cannot {} this client's registration for glupy status ({}: \
                                 {key} on the volume's root); trying again every {interval} s",
                                if interval == 0 { "remove" } else { "write" },
                                std::io::Error::from_raw_os_error(e)
                            ),
                        );
                    }
                    wait = wait.map(|w| w.max(Duration::from_secs(1)));
                }
                Ok(()) => {
                    if wait.is_none() {
                        written = false;
                    }
                    if failing {
                        failing = false;
                        logging::write(
                            &domain,
                            logging::GF_LOG_INFO,
                            &format!("glupy status registration {key} written again"),
                        );
                    }
                }
            }
            if !self.wait(wait) {
                break;
            }
        }
        // Not newest any more (ids are never reused): nothing to remove,
        // and no waiting for a newer writer's call in flight.
        if let Some((key, claim)) = name.filter(|(_, c)| c.newest.load(Ordering::SeqCst) == id) {
            let _writing = claim.writing();
            let owned = claim
                .newest
                .compare_exchange(id, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if owned && written {
                // Nobody else writes it: gone with this graph.
                let _ = self.call(this, ffi::GLUPY_ROOT_REMOVE, &key, None);
            }
        }
    }

    /// Removes the registrations nobody will write again (this host's whose
    /// process is gone, and any silent for a day past three of its
    /// intervals); the bytes the others take (name and value).
    fn tidy(&self, this: *mut ffi::xlator_t, me: &Identity, mine: &str) -> Result<usize, i32> {
        let all = self.list(this)?;
        let now = unix_now();
        let mut used = 0;
        for (key, text) in all {
            if key == mine || !key.starts_with(prefix()) {
                continue;
            }
            let size = key.len() + text.len();
            // (stored with the C string's NUL, as setxattr got it)
            let Ok(value) = serde_json::from_str::<serde_json::Value>(text.trim_end_matches('\0'))
            else {
                used += size;
                continue;
            };
            let number = |k: &str| value.get(k).and_then(serde_json::Value::as_u64);
            let host_gone = value.get("host_id").and_then(serde_json::Value::as_str)
                == Some(me.host_id.as_str())
                && number("pid").is_some_and(|pid| !pid_alive(pid));
            let silent = number("written_at").is_some_and(|at| {
                at + 3 * number("interval").unwrap_or(DEFAULT_INTERVAL) + FORGET_AFTER_SECS < now
            });
            if !(host_gone || silent)
                || self.call(this, ffi::GLUPY_ROOT_REMOVE, &key, None).is_err()
            {
                used += size;
            }
        }
        Ok(used)
    }

    /// Every xattr of the volume's root, as text.
    fn list(&self, this: *mut ffi::xlator_t) -> Result<BTreeMap<String, String>, i32> {
        let mut all: *mut ffi::dict_t = std::ptr::null_mut();
        self.guarded_call(|proceed, arg| {
            // SAFETY: a live xlator (see run); `all` receives a reference
            // we own.
            unsafe {
                ffi::glupy_root_xattr(
                    this,
                    ffi::GLUPY_ROOT_LIST as c_int,
                    std::ptr::null(),
                    std::ptr::null(),
                    &mut all,
                    proceed,
                    arg,
                )
            }
        })?;
        let map = crate::instance::options_map(all);
        if !all.is_null() {
            // SAFETY: the reference syncop_getxattr handed us.
            unsafe { ffi::dict_unref(all) };
        }
        Ok(map)
    }

    /// Sets (value) or removes `key` on the volume's root.
    fn call(
        &self,
        this: *mut ffi::xlator_t,
        op: u32,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), i32> {
        let key = CString::new(key).map_err(|_| libc::EINVAL)?;
        let value = value
            .map(|v| CString::new(v).map_err(|_| libc::EINVAL))
            .transpose()?;
        self.guarded_call(|proceed, arg| {
            // SAFETY: a live xlator (see run); the strings are
            // NUL-terminated and live across the call, which copies them.
            unsafe {
                ffi::glupy_root_xattr(
                    this,
                    op as c_int,
                    key.as_ptr(),
                    value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
                    std::ptr::null_mut(),
                    proceed,
                    arg,
                )
            }
        })
    }

    /// Runs a call down the graph marked in flight, unless closed; the
    /// shim asks `proceed` again before each of its syncops.
    fn guarded_call(
        &self,
        body: impl FnOnce(ffi::glupy_proceed_t, *mut c_void) -> c_int,
    ) -> Result<(), i32> {
        {
            let mut state = self.state();
            if state.closed {
                return Err(libc::ECANCELED);
            }
            state.in_flight = true;
        }
        let ret = body(Some(proceed), self as *const Self as *mut c_void);
        self.state().in_flight = false;
        self.wake.notify_all();
        if ret < 0 {
            Err(-ret)
        } else {
            Ok(())
        }
    }

    /// Until the interval passes or a poke (true), or a stop (false);
    /// None: no interval.
    fn wait(&self, interval: Option<Duration>) -> bool {
        let deadline = interval.map(|i| Instant::now() + i);
        let mut state = self.state();
        while !state.stopped && !state.poked {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
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

/// The shim's question before each syncop: not closed?
unsafe extern "C" fn proceed(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Announcer of guarded_call, alive across it.
    let me = unsafe { &*(arg as *const Announcer) };
    c_int::from(!me.state().closed)
}

/// Who this process is, for its registration.
pub struct Identity {
    /// The boot id's first 8 hex digits and the UTS namespace's inode.
    pub host_id: String,
    pub hostname: String,
}

impl Identity {
    fn of_this_process() -> Self {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let uts = std::fs::metadata("/proc/self/ns/uts")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap_or(0);
        let boot: String = boot.trim().chars().take(8).collect();
        Identity {
            host_id: format!("{boot}-{uts}"),
            hostname: crate::status::hostname(),
        }
    }
}

fn prefix() -> &'static str {
    std::str::from_utf8(ffi::GLUPY_CLIENT_KEY_PREFIX)
        .unwrap_or_default()
        .trim_end_matches('\0')
}

/// `trusted.glupy.client.<host id>.<pid>.<translator>`.
fn client_key(me: &Identity, inst: &Instance) -> String {
    format!(
        "{}{}.{}.{}",
        prefix(),
        me.host_id,
        std::process::id(),
        inst.name
    )
}

fn pid_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A string GlusterFS's context holds for the process's life, or "".
pub fn context_string(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string of the process's context.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}
