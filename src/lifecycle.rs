//! The life of a translator's instances: the slot `this->private` points
//! to (the live instance, swapped by a reload), the retirement of a
//! replaced instance, and the end of the graph (PARENT_DOWN, then fini).
//!
//! Order, for a reload: the new instance takes the fops at once; the old
//! one is retired on a thread of its own, which waits until none of its
//! requests is pending (with Python, or wound and its callback to come) or
//! GRACE passes, then cancels its coroutines, calls its `fini()` and
//! answers EIO every request Python still keeps. It is freed with its last
//! reference (requests, jobs); if Python still holds frames of it, the
//! translator object is emptied to break that cycle (its caches go).
//!
//! At the end of the graph: GlusterFS destroys the graph's inode table
//! (freeing inodes and fds whatever their references) before it calls
//! fini, so the values Python holds die on PARENT_DOWN, which comes first;
//! kept requests are answered EIO there too, without waiting for the GIL
//! on GlusterFS's thread (see `graph_going_down`). fini then waits for work in
//! flight (bounded by GRACE), calls `fini()` on a large stack, and frees
//! the instance.

use crate::ffi;
use crate::instance::Instance;
use crate::logging;
use crate::values::refs::Life;
use pyo3::prelude::*;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// How long a replaced or finishing instance's work in flight may take
/// before its still-pending requests are answered EIO.
pub const GRACE: Duration = Duration::from_secs(5);

/// What `this->private` points to from the first init to fini.
pub struct Slot {
    current: RwLock<Option<Arc<Instance>>>,
    /// Whether the values handed to this translator's Python may still
    /// touch GlusterFS memory (see `Life`).
    pub life: Arc<Life>,
    /// The fops tables installed for this translator, freed at fini.
    tables: Mutex<Vec<TablePtr>>,
    /// Instances replaced by a reload whose retirement may not be over:
    /// fini finishes them too, before the graph goes.
    retiring: Mutex<Vec<Weak<Instance>>>,
    /// A client's registration for glupy status (src/announce.rs).
    pub announcer: Arc<crate::announce::Announcer>,
}

struct TablePtr(*mut ffi::xlator_fops);
// SAFETY: only freed, once, by fini.
unsafe impl Send for TablePtr {}

impl Slot {
    /// Keeps a fops table installed for this translator until fini.
    pub fn keep_table(&self, table: *mut ffi::xlator_fops) {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(TablePtr(table));
    }

    fn current(&self) -> Option<Arc<Instance>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The live instance and the replaced ones whose retirement may not be
    /// over: every instance that may still hold requests of this graph.
    fn instances(&self) -> Vec<Arc<Instance>> {
        let retiring = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
        self.current()
            .into_iter()
            .chain(retiring.iter().filter_map(Weak::upgrade))
            .collect()
    }

    fn replace(&self, new: Option<Arc<Instance>>) -> Option<Arc<Instance>> {
        std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|p| p.into_inner()),
            new,
        )
    }
}

/// The life of each glupy translator's graph, by xlator address: what a
/// value Python builds itself (`glupy.Dict()`, `glupy.Vector(b"...")`) is
/// bound to, found through THIS (set while the translator's Python runs).
static LIVES: Mutex<Vec<(usize, Weak<Life>)>> = Mutex::new(Vec::new());

fn lives() -> std::sync::MutexGuard<'static, Vec<(usize, Weak<Life>)>> {
    LIVES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `xl` is a glupy translator whose fini has not run.
pub fn is_glupy(xl: *mut ffi::xlator_t) -> bool {
    lives().iter().any(|(x, _)| *x == xl as usize)
}

/// The life of the glupy translator this thread runs for, if any.
pub fn life_of_this() -> Option<Arc<Life>> {
    let this = crate::values::current_this() as usize;
    lives()
        .iter()
        .find(|(xl, _)| *xl == this)
        .and_then(|(_, life)| life.upgrade())
}

/// The translator's slot, made on first use (by init).
///
/// # Safety
/// `this` must be a live glupy xlator, and its fini must not run meanwhile.
pub unsafe fn slot_or_new(this: *mut ffi::xlator_t) -> &'static Slot {
    // SAFETY: private is NULL or the Box::into_raw of a Slot stored below;
    // init and reconfigure are serialised by GlusterFS.
    unsafe {
        if (*this).private.is_null() {
            let name = std::ffi::CStr::from_ptr((*this).name).to_string_lossy();
            let slot = Slot {
                current: RwLock::new(None),
                life: Arc::new(Life::new(&name, (*this).graph as usize)),
                tables: Mutex::new(Vec::new()),
                retiring: Mutex::new(Vec::new()),
                announcer: Default::default(),
            };
            lives().push((this as usize, Arc::downgrade(&slot.life)));
            (*this).private = Box::into_raw(Box::new(slot)).cast();
        }
        &*((*this).private as *const Slot)
    }
}

/// The translator's slot, if init made it.
///
/// # Safety
/// `this` must be a glupy xlator that fini has not freed.
pub unsafe fn slot<'a>(this: *mut ffi::xlator_t) -> Option<&'a Slot> {
    // SAFETY: private is NULL or our Slot, freed only by fini, after which
    // GlusterFS calls no entry of this xlator.
    unsafe { (std::ptr::read_volatile(&(*this).private) as *const Slot).as_ref() }
}

/// The live instance of the translator (a new reference), if any.
///
/// # Safety
/// `this` must be a glupy xlator that fini has not freed.
pub unsafe fn current(this: *mut ffi::xlator_t) -> Option<Arc<Instance>> {
    // SAFETY: private is NULL or our Slot, freed only by fini, after which
    // GlusterFS calls no entry of this xlator.
    unsafe {
        let p = std::ptr::read_volatile(&(*this).private) as *const Slot;
        p.as_ref()?.current()
    }
}

/// Makes `inst` the live instance; a replaced one is retired.
///
/// # Safety
/// As for `slot_or_new`.
pub unsafe fn install(this: *mut ffi::xlator_t, inst: Instance) {
    // SAFETY: by contract.
    let slot = unsafe { slot_or_new(this) };
    let inst = Arc::new(inst);
    crate::collector::watch(&inst);
    if let Some(old) = slot.replace(Some(inst)) {
        let mut retiring = slot.retiring.lock().unwrap_or_else(|p| p.into_inner());
        retiring.retain(|w| w.strong_count() > 0);
        retiring.push(Arc::downgrade(&old));
        drop(retiring);
        retire(old);
        slot.announcer.poke();
    }
}

/// Waits (on a thread of its own) until the replaced instance is idle,
/// then finishes it: its fops already go to the new instance.
fn retire(old: Arc<Instance>) {
    let spawned = std::thread::Builder::new()
        .name("glupy-retire".into())
        .stack_size(crate::pool::PYTHON_STACK_BYTES)
        .spawn(move || {
            crate::guard::guarded("retiring an instance", (), move || {
                wait_idle(&old);
                finish(&old, "replaced by a reload");
                clear_translator(&old);
            })
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start a thread to retire a replaced instance ({e}); it is kept");
    }
}

/// Until no request of `inst` is pending (with Python, or wound and its
/// callback still to come), or GRACE passes.
fn wait_idle(inst: &Instance) -> bool {
    let until = Instant::now() + GRACE;
    while inst.pending_requests() > 0 {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Until no answer of `inst` is going up the graph, or GRACE passes.
fn wait_unwinds(inst: &Instance) {
    let until = Instant::now() + GRACE;
    while inst.unwinds_in_progress() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Cancels the instance's coroutines, calls its `fini()`, and answers EIO
/// the requests still pending (the last step a request kept by Python past
/// fini sees). Once per instance: a second caller waits until the first is
/// done (fini must not go on while a retirement is at it), with no lock
/// held while Python runs.
fn finish(inst: &Instance, why: &str) {
    let Some(_finisher) = inst.finishing.claim() else {
        return;
    };
    logging::with_domain(&inst.name, || {
        crate::threads::on_python_stack(|| {
            crate::guard::guarded("fini", (), || {
                Python::attach(|py| {
                    cancel_coroutines(py, inst);
                    inst.call_hook(py, &inst.hooks.fini, "fini", ());
                })
            })
        });
        answer_kept_frames(inst, why);
        // A method that answered and then waited for the translator's fini
        // performs its answer when it returns (src/after_call.rs): before
        // GlusterFS frees the graph's xlators after fini, not after.
        wait_unwinds(inst);
    })
}

/// Who finishes an instance. The lock only records that (never held while
/// Python runs: SAFETY.md, no Rust lock across a call into Python).
#[derive(Default)]
pub struct Finishing {
    state: Mutex<FinishState>,
    done: Condvar,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum FinishState {
    #[default]
    NotYet,
    /// Being finished by this thread.
    By(std::thread::ThreadId),
    Done,
}

/// The right to finish, held while finishing; marks it done when dropped
/// (a panic included) and wakes whoever waits.
pub struct Finisher<'a>(&'a Finishing);

impl Finishing {
    fn state(&self) -> std::sync::MutexGuard<'_, FinishState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The right to finish if nobody took it; None once it is done. While
    /// another thread finishes, waits until it is done (then None). Called
    /// again on the finishing thread itself (from inside its `fini()`):
    /// None at once, instead of waiting for itself.
    pub fn claim(&self) -> Option<Finisher<'_>> {
        let me = std::thread::current().id();
        let mut state = self.state();
        loop {
            match *state {
                FinishState::NotYet => {
                    *state = FinishState::By(me);
                    return Some(Finisher(self));
                }
                FinishState::By(other) if other != me => {
                    state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                FinishState::By(_) | FinishState::Done => return None,
            }
        }
    }
}

impl Drop for Finisher<'_> {
    fn drop(&mut self) {
        *self.0.state() = FinishState::Done;
        self.0.done.notify_all();
    }
}

fn cancel_coroutines(py: Python<'_>, inst: &Instance) {
    let cancelled = py
        .import("glupy._aio")
        .and_then(|aio| aio.call_method1("cancel_all", (inst.translator.bind(py),)))
        .and_then(|n| n.extract::<usize>());
    match cancelled {
        Ok(0) => {}
        Ok(n) => logging::write(
            &inst.name,
            logging::GF_LOG_WARNING,
            &format!(
                "{}: {n} coroutine(s) still running at fini were cancelled",
                inst.module
            ),
        ),
        Err(e) => logging::write(
            &inst.name,
            logging::GF_LOG_ERROR,
            &format!(
                "cancelling the coroutines of {} failed: {}",
                inst.module,
                crate::interp::format_exception(py, &e)
            ),
        ),
    }
}

fn answer_kept_frames(inst: &Instance, why: &str) {
    let answered = inst.answer_pending(libc::EIO);
    if answered > 0 {
        logging::write(
            &inst.name,
            logging::GF_LOG_WARNING,
            &format!(
                "{}: {answered} request(s) still kept by Python when the translator was {why}; \
                 answered EIO (later use of those frames raises RuntimeError)",
                inst.module
            ),
        );
    }
}

/// The graph is ending: answers and winds queued for a Python thread that
/// none has taken are settled here, while the graph is there
/// (src/queued.rs): the answers go up, the winds are not made.
fn settle_queued_work(inst: &Instance) {
    let settled = inst.queued.close(inst.life.alive());
    if settled.performed + settled.withdrawn > 0 {
        logging::write(
            &inst.name,
            logging::GF_LOG_WARNING,
            &format!(
                "{}: when the graph ended, {} answer(s) and {} wind(s) still waited for a Python \
                 thread (all were busy): the answers went up then, the winds were not made and \
                 their requests were answered EIO (raise python-threads, or keep long work off \
                 glupy's threads)",
                inst.module, settled.performed, settled.withdrawn
            ),
        );
    }
}

/// If Python still holds frames of the finished instance (kept in the
/// translator object, they would keep it alive through the instance, a
/// cycle Python's collector cannot see), empties the translator object:
/// its caches and those frames go, and the instance with them.
fn clear_translator(inst: &Arc<Instance>) {
    if Arc::strong_count(inst) == 1 {
        return;
    }
    Python::attach(|py| {
        if let Ok(d) = inst.translator.bind(py).getattr("__dict__") {
            let _ = d.call_method0("clear");
        }
    });
}

/// PARENT_DOWN reached the translator: its graph is going away, and
/// GlusterFS will free the graph's inodes and fds (and, in gfapi, its
/// dicts and buffers) before fini. The values Python holds die now.
///
/// Never waits for the GIL on the calling thread (GlusterFS's: the
/// application's in glfs_fini, an event thread when a gfapi graph switch
/// ends with a reply, a janitor in a brick detach): a Python thread that
/// holds the GIL while it waits for GlusterFS (for this graph to go down,
/// or for a reply this thread would read) would hang the graph's end. The
/// kept requests are answered and the life ended without it; the GIL is
/// only waited for, bounded, through a thread of its own (`gil_handoff`).
/// A client's registration is removed first, while the children are still
/// there (src/announce.rs: waits at most 2 s, for a thread of its own).
pub fn graph_going_down(this: *mut ffi::xlator_t) {
    // SAFETY: notify gets a live xlator; private is NULL or our Slot.
    let slot = unsafe { ((*this).private as *const Slot).as_ref() };
    let Some(slot) = slot else { return };
    slot.announcer.stop();
    // A replaced instance still retiring (its requests kept past a reload)
    // shares the graph: its requests are answered here too, not when its
    // retirement's GRACE runs out after the graph's values are gone.
    let instances = slot.instances();
    for inst in &instances {
        logging::with_domain(&inst.name, || {
            answer_kept_frames(inst, "going down");
            settle_queued_work(inst);
        });
    }
    // An answer Python gave just before (a kept frame, answered from a
    // thread of its own) may still be going up through the parents'
    // callbacks, which touch the graph's inodes: GlusterFS frees them
    // when this returns (a brick detach does not wait for requests).
    for inst in &instances {
        wait_unwinds(inst);
    }
    slot.life.end();
    gil_handoff(instances.clone());
    // Work a thread holding the GIL queued after the close is counted and
    // settled on a thread of its own (src/queued.rs): the GIL taken once
    // by then, it is counted now.
    for inst in &instances {
        wait_unwinds(inst);
    }
}

/// After the life ended: waits, at most GRACE, until a thread of its own
/// has taken the GIL once. Values read GlusterFS memory only with the GIL
/// held, right after checking the life, so every reader that saw it alive
/// is then done; after GRACE (the GIL held that long, e.g. by a thread
/// waiting on this very graph) the end goes on regardless. That thread
/// then cancels the instances' coroutines (their requests are answered
/// already: they find them so).
fn gil_handoff(instances: Vec<Arc<Instance>>) {
    let (taken, handed) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("glupy-down".into())
        .stack_size(crate::pool::PYTHON_STACK_BYTES)
        .spawn(move || {
            crate::guard::guarded("the end of a graph", (), move || {
                Python::attach(|py| {
                    let _ = taken.send(());
                    for inst in &instances {
                        logging::with_domain(&inst.name, || cancel_coroutines(py, inst));
                    }
                })
            })
        });
    match spawned {
        Ok(_) => {
            if handed.recv_timeout(GRACE).is_err() {
                tracing::warn!(
                    "the graph is going down while a Python thread has held the GIL for {} s; \
                     not waiting for it (its coroutines are cancelled when it lets go)",
                    GRACE.as_secs()
                );
            }
        }
        Err(e) => tracing::error!(
            "cannot start a thread to finish the end of the graph in Python ({e}); its \
             coroutines are cancelled at fini"
        ),
    }
}

/// fini: the instance finishes (see the module's doc) and the slot goes.
///
/// # Safety
/// `this` must be a glupy xlator; GlusterFS calls no other entry of it
/// during or after fini.
pub unsafe fn fini(this: *mut ffi::xlator_t) {
    // SAFETY: private is NULL or our Slot, taken back once here.
    let raw = unsafe { std::mem::replace(&mut (*this).private, std::ptr::null_mut()) };
    if raw.is_null() {
        return;
    }
    // SAFETY: the Box::into_raw of slot_or_new.
    let slot = unsafe { Box::from_raw(raw as *mut Slot) };
    // Its writes go down this graph: done before the graph goes.
    slot.announcer.join();
    // The graph's inodes and fds are gone already (see the module's doc).
    Python::attach(|_py| slot.life.end());
    // Work still queued for a Python thread is settled before the graph's
    // xlators go (PARENT_DOWN did it already unless it never came): a
    // reply among it goes up as EIO, its values left alone.
    for inst in slot.instances() {
        logging::with_domain(&inst.name, || settle_queued_work(&inst));
    }
    lives().retain(|(xl, _)| *xl != this as usize);
    let retiring = std::mem::take(&mut *slot.retiring.lock().unwrap_or_else(|p| p.into_inner()));
    let instances = slot
        .replace(None)
        .into_iter()
        .chain(retiring.iter().filter_map(Weak::upgrade));
    for inst in instances {
        wait_idle(&inst);
        finish(&inst, "shut down");
        clear_translator(&inst);
    }
    let tables = std::mem::take(&mut *slot.tables.lock().unwrap_or_else(|p| p.into_inner()));
    for TablePtr(table) in tables {
        // SAFETY: made by Box::into_raw in api::install_fops; the caller put
        // GlusterFS's own table back in this->fops.
        drop(unsafe { Box::from_raw(table) });
    }
}

#[cfg(test)]
mod tests {
    use super::Finishing;
    use std::sync::mpsc::channel;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_finishes_the_other_waits_without_the_lock_and_reentry_returns() {
        let finishing = Arc::new(Finishing::default());
        let finisher = finishing.claim().expect("the first caller finishes");
        // Re-entered on the finishing thread (from inside its fini()): no
        // wait for itself.
        assert!(finishing.claim().is_none());
        // A second thread waits until the first is done, then does nothing.
        let (tx, rx) = channel();
        let other = Arc::clone(&finishing);
        let waiter = std::thread::spawn(move || tx.send(other.claim().is_none()).unwrap());
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "it waits"
        );
        // While it waits, the lock is free: what the first finisher's
        // Python waits for may take it.
        drop(finishing.state());
        drop(finisher);
        assert!(rx.recv_timeout(Duration::from_secs(30)).unwrap());
        waiter.join().unwrap();
        assert!(finishing.claim().is_none(), "finished once");
    }
}
