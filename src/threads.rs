//! Where a Python call runs. Python needs a deep stack, and GlusterFS calls
//! fops on io-threads workers (256 KiB stacks), on event threads (which
//! must never wait for Python) and elsewhere. The `python-thread` option:
//!
//! - `pool`: always on the host's Python threads (a thread switch per call);
//! - `caller`: on the calling thread, on a large stack segment the host
//!   switches to (no thread switch; a slow translator holds that thread);
//! - `auto` (default): on the calling thread where that is what the thread
//!   is for — io-threads workers, the host's own Python threads, and an
//!   application's threads calling gfapi (they wait for the reply anyway) —
//!   and on the pool on GlusterFS's other threads (event threads, FUSE,
//!   timers, synctasks), which must never wait for Python.

use crate::pool::{self, Job};
use std::cell::Cell;

/// Stack a Python call is guaranteed, and the size of the segment switched
/// to when the current stack has less left.
const PYTHON_STACK_MIN: usize = 8 << 20;
const PYTHON_STACK_SEGMENT: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    Auto = 0,
    Pool = 1,
    Caller = 2,
}

impl Policy {
    pub fn from_u8(v: u8) -> Policy {
        match v {
            1 => Policy::Pool,
            2 => Policy::Caller,
            _ => Policy::Auto,
        }
    }

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
    /// Whether `auto` runs Python on this thread (cached: names are set once,
    /// when GlusterFS or the application starts the thread).
    static AUTO_INLINE: Cell<Option<bool>> = const { Cell::new(None) };
}

fn auto_runs_inline() -> bool {
    AUTO_INLINE.with(|cached| {
        if let Some(inline) = cached.get() {
            return inline;
        }
        let mut name = [0u8; 16];
        // SAFETY: the buffer is 16 bytes, the size pthread names have.
        let rc = unsafe {
            libc::pthread_getname_np(libc::pthread_self(), name.as_mut_ptr().cast(), name.len())
        };
        let inline = rc == 0 && inline_by_name(&name);
        cached.set(Some(inline));
        inline
    })
}

/// GlusterFS names its threads glfs_<job> (io-threads workers glfs_iotwrNNN)
/// and its processes' main threads glusterfs/glusterfsd; any other thread
/// that calls a fop is an application's, inside a gfapi call.
fn inline_by_name(name: &[u8]) -> bool {
    name.starts_with(b"glfs_iotwr")
        || !(name.starts_with(b"glfs_")
            || name.starts_with(b"gluster")
            || name.starts_with(b"glupy-"))
}

/// A stack segment mapped once per thread and reused by every Python call
/// on it (mapping one per call cost more than the call: mmap, page faults,
/// munmap and its TLB shoot-down). Unmapped when the thread exits.
struct Segment {
    base: *mut libc::c_void,
}

impl Segment {
    fn map() -> Option<Segment> {
        // SAFETY: an anonymous private mapping, not yet used by anyone; the
        // lowest page becomes a guard so an overflow faults instead of
        // writing into whatever lies below.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                PYTHON_STACK_SEGMENT,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            libc::mprotect(base, page_size(), libc::PROT_NONE);
            Some(Segment { base })
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the thread is exiting and off it.
        unsafe { libc::munmap(self.base, PYTHON_STACK_SEGMENT) };
    }
}

/// The page size, asked once: `on_python_stack` needs it on every call of
/// a thread on its segment (an io-threads worker: every fop), and sysconf
/// showed in the profile of each lookup.
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize })
}

thread_local! {
    static SEGMENT: std::cell::RefCell<Option<Segment>> = const { std::cell::RefCell::new(None) };
    /// Whether this thread is running on its segment now (nested calls,
    /// e.g. a callback inside a wind, simply go on there).
    static ON_SEGMENT: Cell<bool> = const { Cell::new(false) };
}

/// This thread's Python thread state, kept from its first Python call to
/// its exit. Without it every call creates one and every return deletes it
/// (allocations, a data-stack chunk mapped and unmapped, the interpreter's
/// thread list locked): BENCHMARKS.md measured it as the largest remaining
/// cost per call, and the reason throughput fell with more threads.
struct KeptThreadState {
    gilstate: pyo3::ffi::PyGILState_STATE,
    tstate: *mut pyo3::ffi::PyThreadState,
}

impl Drop for KeptThreadState {
    fn drop(&mut self) {
        // SAFETY: the thread is exiting and holds no GIL (it released it
        // after keep_thread_state and every later call gave it back); taking
        // it with the kept state and releasing the outermost Ensure deletes
        // the state, as if the thread had never kept it.
        unsafe {
            pyo3::ffi::PyEval_RestoreThread(self.tstate);
            pyo3::ffi::PyGILState_Release(self.gilstate);
        }
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<KeptThreadState>> = const { std::cell::RefCell::new(None) };
}

/// Gives this thread a Python thread state that outlives each call (once;
/// later attaches find it and only take the GIL). Only where Python is up
/// and the thread has no Python thread state of its own.
pub fn keep_thread_state() {
    KEPT.with(|kept| {
        let Ok(mut kept) = kept.try_borrow_mut() else {
            return;
        };
        if kept.is_some() {
            return;
        }
        // SAFETY: Py_IsInitialized and PyGILState_GetThisThreadState may be called by any
        // thread; Ensure creates this thread's state and takes the GIL, and
        // SaveThread gives the GIL back while keeping the state (its
        // gilstate count stays 1, so later attaches never delete it).
        //
        // A thread that has a state already (a Python-started thread, or one
        // inside Python) keeps its own: Python deletes a thread's state when
        // the thread ends, and a kept pointer to it would then dangle.
        unsafe {
            if pyo3::ffi::Py_IsInitialized() == 0
                || !pyo3::ffi::PyGILState_GetThisThreadState().is_null()
            {
                return;
            }
            let gilstate = pyo3::ffi::PyGILState_Ensure();
            let tstate = pyo3::ffi::PyEval_SaveThread();
            *kept = Some(KeptThreadState { gilstate, tstate });
        }
    })
}

thread_local! {
    /// This thread's own stack, [low, high), as pthread reports it (cached:
    /// it never moves).
    static THREAD_STACK: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

fn thread_stack() -> Option<(usize, usize)> {
    if let Some(bounds) = THREAD_STACK.with(Cell::get) {
        return Some(bounds);
    }
    // SAFETY: pthread_getattr_np fills an attr we own and destroy after;
    // getstack only reads it.
    let bounds = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let (mut addr, mut size) = (std::ptr::null_mut(), 0usize);
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 {
            return None;
        }
        (addr as usize, addr as usize + size)
    };
    THREAD_STACK.with(|c| c.set(Some(bounds)));
    Some(bounds)
}

/// Stack left below the stack pointer, if it is on this thread's own
/// stack. None on any other stack — a ucontext fibre or coroutine
/// (GlusterFS synctasks, Samba's and QEMU's coroutines), whose size nothing
/// tells — or if the thread's stack is unknown.
fn thread_stack_left() -> Option<usize> {
    let sp = psm::stack_pointer() as usize;
    let (low, high) = thread_stack()?;
    (low..high).contains(&sp).then(|| sp - low)
}

/// Whether a Python call may run right here, without switching stacks.
fn has_python_stack() -> bool {
    ON_SEGMENT.with(Cell::get) || thread_stack_left().is_some_and(|left| left >= PYTHON_STACK_MIN)
}

/// Runs `job` on the calling thread with at least PYTHON_STACK_MIN of
/// stack: on the thread's own stack if that has enough left, else (or on
/// a stack that is not the thread's) on the thread's segment. `job` must
/// not panic (dispatch's jobs are guarded).
pub fn on_python_stack<T>(job: impl FnOnce() -> T) -> T {
    keep_thread_state();
    if has_python_stack() {
        return job();
    }
    let base = SEGMENT.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Segment::map();
        }
        s.as_ref().map(|seg| seg.base as usize)
    });
    let Some(base) = base else {
        // No memory for a segment: stacker maps one for this call.
        return stacker::grow(PYTHON_STACK_SEGMENT, job);
    };
    let guard = page_size();
    ON_SEGMENT.with(|on| on.set(true));
    // SAFETY: the segment is ours, mapped read-write above its guard page,
    // and used by no one else: this thread is not on it (ON_SEGMENT was
    // false). `job` does not unwind (see above).
    let out =
        unsafe { psm::on_stack((base + guard) as *mut u8, PYTHON_STACK_SEGMENT - guard, job) };
    ON_SEGMENT.with(|on| on.set(false));
    out
}

/// What a deferred job does for its request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Deferred {
    /// Runs a callback's Python method (which may wind its frame again).
    Callback,
    /// Hands a reply to the coroutine awaiting it (no translator code).
    Resolve,
}

thread_local! {
    /// The requests this thread is winding synchronously now (Python let
    /// go of the GIL for GlusterFS's code below), innermost last. A request
    /// is named by `FrameState::key`, never reused (a frame's address may
    /// be, once it is answered).
    static WINDING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Python jobs for replies of those requests that came back during
    /// their wind, with the request each belongs to.
    static DEFERRED: std::cell::RefCell<Vec<(usize, Deferred, Job)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The requests whose deferred jobs `run_deferred` is running on this
    /// thread now, innermost last.
    static RUNNING_DEFERRED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `wind` (GlusterFS's code below a Python wind of `request`, without
/// the GIL) noting that a reply *to that request* coming back on this
/// thread meanwhile may wait for it. Replies to other requests never wait:
/// the wind may be waiting for one of them (a child that answers a request
/// it kept while it handles this one).
pub fn winding<T>(request: usize, wind: impl FnOnce() -> T) -> T {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            WINDING.with(|w| w.borrow_mut().pop());
        }
    }
    WINDING.with(|w| w.borrow_mut().push(request));
    let _pop = Pop;
    wind()
}

/// Keeps `job` (a reply's Python work) for this thread to run when its
/// wind of `request` returns, if it is winding that request: the thread
/// takes the GIL back then anyway, so the callback costs no GIL hand-off of
/// its own, and it runs after the fop's wind call, never nested inside it.
/// Gives the job back otherwise (a reply to any other request).
pub fn defer_while_winding(request: usize, kind: Deferred, job: Job) -> Result<(), Job> {
    if !WINDING.with(|w| w.borrow().contains(&request)) {
        return Err(job);
    }
    DEFERRED.with(|d| d.borrow_mut().push((request, kind, job)));
    Ok(())
}

/// Runs, in order, the jobs deferred for `request` (after its wind
/// returned, with the GIL held; jobs may wind and defer again, so one at a
/// time).
///
/// A callback of `request` that winds it again (a retry) has its reply's
/// callback left to the loop already running them: it runs when that
/// callback returns, as it would had the reply come back on another thread,
/// instead of inside the callback's wind, a level deeper per retry
/// (Python's recursion limit ended such a chain at about a thousand). A
/// coroutine's reply is still handed over at once (its first step goes
/// straight on): that runs no translator code, so it cannot nest.
pub fn run_deferred(request: usize) {
    let nested = RUNNING_DEFERRED.with(|r| r.borrow().contains(&request));
    struct Done(bool);
    impl Drop for Done {
        fn drop(&mut self) {
            if self.0 {
                RUNNING_DEFERRED.with(|r| r.borrow_mut().pop());
            }
        }
    }
    if !nested {
        RUNNING_DEFERRED.with(|r| r.borrow_mut().push(request));
    }
    let _done = Done(!nested);
    loop {
        let job = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            let at = d.iter().position(|(r, kind, _)| {
                *r == request && !(nested && *kind == Deferred::Callback)
            })?;
            Some(d.remove(at).2)
        });
        let Some(job) = job else { break };
        crate::guard::guarded("a glupy job", (), job);
    }
}

thread_local! {
    /// Nanoseconds this thread spent, inside Python calls of translators,
    /// in code that is not theirs (see `outside_python`).
    static OUTSIDE_NS: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` — GlusterFS's code under a wind or an unwind, with what it
/// runs of other layers and of callbacks (each timed as its own call) —
/// and counts its time as spent outside the Python call around it: a
/// translator's own time (statedump `python_avg_us`) is its call's time
/// minus this. Nested uses are counted once, by the outermost.
pub fn outside_python<T>(f: impl FnOnce() -> T) -> T {
    let before = OUTSIDE_NS.with(Cell::get);
    let started = std::time::Instant::now();
    let out = f();
    let spent = started.elapsed().as_nanos() as u64;
    OUTSIDE_NS.with(|o| o.set(before.wrapping_add(spent)));
    out
}

/// This thread's running total of time outside Python calls: the
/// difference over a call is what it spent outside itself.
pub fn outside_ns() -> u64 {
    OUTSIDE_NS.with(Cell::get)
}

/// Runs or queues a Python job as `policy` says. False if it could not be
/// queued (before the pool exists).
pub fn dispatch(policy: Policy, job: Job) -> bool {
    let here = pool::on_worker()
        || match policy {
            Policy::Caller => true,
            Policy::Auto => auto_runs_inline(),
            Policy::Pool => false,
        };
    if here {
        on_python_stack(|| crate::guard::guarded("a glupy job", (), job));
        true
    } else {
        pool::submit(job)
    }
}

#[cfg(test)]
mod tests {
    use super::{defer_while_winding, inline_by_name, run_deferred, winding, Deferred, DEFERRED};
    use super::{has_python_stack, on_python_stack, thread_stack_left, ON_SEGMENT};
    use std::sync::{Arc, Mutex};

    /// A 256 KiB mapping to run code on, as a ucontext fibre's stack.
    struct FibreStack(usize);

    const FIBRE_STACK: usize = 256 << 10;

    impl FibreStack {
        fn map() -> FibreStack {
            // SAFETY: a fresh anonymous mapping, ours alone.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    FIBRE_STACK,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                    -1,
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED);
            FibreStack(base as usize)
        }

        fn run<T>(&self, body: impl FnOnce() -> T) -> T {
            // SAFETY: the mapping is ours, used by nobody else, and lives
            // until drop.
            unsafe { psm::on_stack(self.0 as *mut u8, FIBRE_STACK, body) }
        }
    }

    impl Drop for FibreStack {
        fn drop(&mut self) {
            // SAFETY: our mapping, no longer in use.
            unsafe { libc::munmap(self.0 as *mut libc::c_void, FIBRE_STACK) };
        }
    }

    /// Uses about `kib` KiB of stack.
    #[inline(never)]
    fn use_stack(kib: usize) -> usize {
        let page = std::hint::black_box([1u8; 1024]);
        if kib == 0 {
            0
        } else {
            page[kib % 1024] as usize + use_stack(kib - 1)
        }
    }

    #[test]
    fn a_fibre_stack_is_never_taken_for_a_python_stack() {
        // Mapped before the thread's stack, so it lies above it, as it can
        // in any program: "stack pointer minus the thread stack's lowest
        // address" then looks like plenty.
        let fibre = FibreStack::map();
        std::thread::Builder::new()
            .stack_size(32 << 20)
            .spawn(move || {
                // The thread's own large stack: enough, and no switch.
                assert!(thread_stack_left().is_some_and(|left| left > 16 << 20));
                assert!(has_python_stack());
                assert!(!on_python_stack(|| ON_SEGMENT.with(|on| on.get())));
                // The same thread on a small fibre stack: not its stack, so
                // Python gets the segment, and deep calls work there.
                fibre.run(|| {
                    assert_eq!(thread_stack_left(), None);
                    assert!(!has_python_stack());
                    let (on_segment, used) =
                        on_python_stack(|| (ON_SEGMENT.with(|on| on.get()), use_stack(4096)));
                    assert!(on_segment, "a Python call on a fibre ran on the fibre");
                    assert_eq!(used, 4096);
                });
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_callback_that_winds_again_runs_the_next_callback_after_it_returns() {
        use std::sync::atomic::{AtomicU32, Ordering};
        const FRAME: usize = 0x4000;
        type Log = Arc<Mutex<Vec<String>>>;
        // Each callback winds the request again (its reply comes back
        // inline, so it is deferred) until three have run, and notes how
        // deep it ran; a coroutine's reply is handed over inside its wind.
        fn callback(n: u32, log: Log, depth: Arc<AtomicU32>) -> super::Job {
            Box::new(move || {
                let at = depth.fetch_add(1, Ordering::SeqCst) + 1;
                log.lock().unwrap().push(format!("cbk{n} at depth {at}"));
                if n < 3 {
                    let next = callback(n + 1, Arc::clone(&log), Arc::clone(&depth));
                    let resolved = Arc::clone(&log);
                    let resolve: super::Job =
                        Box::new(move || resolved.lock().unwrap().push(format!("resolve{n}")));
                    winding(FRAME, || {
                        assert!(defer_while_winding(FRAME, Deferred::Callback, next).is_ok());
                        assert!(defer_while_winding(FRAME, Deferred::Resolve, resolve).is_ok());
                    });
                    run_deferred(FRAME);
                    log.lock().unwrap().push(format!("cbk{n} returns"));
                }
                depth.fetch_sub(1, Ordering::SeqCst);
            })
        }
        let log: Log = Arc::default();
        let first = callback(1, Arc::clone(&log), Arc::default());
        winding(FRAME, || {
            assert!(defer_while_winding(FRAME, Deferred::Callback, first).is_ok());
        });
        run_deferred(FRAME);
        let expected = [
            "cbk1 at depth 1",
            "resolve1",
            "cbk1 returns",
            "cbk2 at depth 1",
            "resolve2",
            "cbk2 returns",
            "cbk3 at depth 1",
        ];
        assert_eq!(*log.lock().unwrap(), expected);
        assert!(DEFERRED.with(|d| d.borrow().is_empty()));
    }

    #[test]
    fn replies_to_the_winding_frame_run_in_order_when_its_wind_returns() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let job = |n: u32| {
            let ran = Arc::clone(&ran);
            Box::new(move || ran.lock().unwrap().push(n)) as super::Job
        };
        const FRAME: usize = 0x1000;
        // Not winding: the job is given back, to be dispatched as usual.
        assert!(defer_while_winding(FRAME, Deferred::Callback, job(0)).is_err());
        winding(FRAME, || {
            assert!(defer_while_winding(FRAME, Deferred::Callback, job(1)).is_ok());
            assert!(defer_while_winding(FRAME, Deferred::Callback, job(2)).is_ok());
        });
        assert!(
            ran.lock().unwrap().is_empty(),
            "nothing runs inside the wind"
        );
        run_deferred(FRAME);
        assert_eq!(*ran.lock().unwrap(), vec![1, 2]);
        assert!(
            DEFERRED.with(|d| d.borrow().is_empty()),
            "every deferred job was taken"
        );
    }

    #[test]
    fn a_reply_to_another_frame_never_waits_for_a_wind() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let job = |n: u32| {
            let ran = Arc::clone(&ran);
            Box::new(move || ran.lock().unwrap().push(n)) as super::Job
        };
        const WOUND: usize = 0x1000;
        const OTHER: usize = 0x2000;
        const INNER: usize = 0x3000;
        winding(WOUND, || {
            // A child answers a request it kept (another frame) while it
            // handles this wind: that reply is handed back to run now.
            assert!(defer_while_winding(OTHER, Deferred::Callback, job(1)).is_err());
            // Nested winds: each frame's replies wait for its own wind only.
            winding(INNER, || {
                assert!(defer_while_winding(WOUND, Deferred::Callback, job(2)).is_ok());
                assert!(defer_while_winding(INNER, Deferred::Callback, job(3)).is_ok());
            });
            run_deferred(INNER);
            assert_eq!(
                *ran.lock().unwrap(),
                vec![3],
                "the outer frame's reply still waits"
            );
        });
        run_deferred(WOUND);
        assert_eq!(*ran.lock().unwrap(), vec![3, 2]);
        // A panic inside a wind leaves no frame marked as winding.
        let _ = std::panic::catch_unwind(|| winding(WOUND, || panic!("in the wind")));
        assert!(defer_while_winding(WOUND, Deferred::Callback, job(4)).is_err());
    }

    #[test]
    fn time_outside_python_is_counted_once_however_nested() {
        use super::{outside_ns, outside_python};
        use std::time::Duration;
        let start = outside_ns();
        outside_python(|| {
            std::thread::sleep(Duration::from_millis(30));
            // A nested call (a callback's Python run inside the wind, with
            // a wind of its own) counts its own outside time...
            let inner = outside_ns();
            outside_python(|| std::thread::sleep(Duration::from_millis(20)));
            assert!(outside_ns() - inner >= 20_000_000);
        });
        // ...and the outer one counts the whole span once, not 50 + 20.
        let spent = outside_ns() - start;
        assert!(spent >= 50_000_000, "{spent}");
        assert!(spent < 50_000_000 + 20_000_000, "counted twice: {spent}");
    }

    #[test]
    fn auto_runs_inline_on_workers_and_application_threads_only() {
        for name in [
            "glfs_iotwr000",
            "glfs_iotwr01f",
            "smbd",
            "gfbench",
            "qemu-kvm",
            "",
        ] {
            assert!(inline_by_name(name.as_bytes()), "{name}");
        }
        for name in [
            "glfs_epoll000",
            "glfs_fuseproc",
            "glfs_timer",
            "glfs_sproc0",
            "glusterfsd",
            "glusterfs",
            "glupy-asyncio",
            "glupy-retire",
        ] {
            assert!(!inline_by_name(name.as_bytes()), "{name}");
        }
    }
}
