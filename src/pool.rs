//! Host threads that run Python. GlusterFS calls fops on io-threads workers
//! (256 KiB stacks, too small for Python) and on event threads (which must
//! not wait for slow Python), so every Python call runs here instead, on
//! threads with large stacks. Jobs never wait for each other, so the pool
//! cannot deadlock on its own work.

use once_cell::sync::OnceCell;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

pub type Job = Box<dyn FnOnce() + Send>;

/// Stack for threads running Python: deep enough that RecursionError comes
/// before the stack ends, and only address space until touched.
pub const PYTHON_STACK_BYTES: usize = 64 << 20;

struct Pool {
    tx: Mutex<Sender<Job>>,
}

static POOL: OnceCell<Pool> = OnceCell::new();

/// Starts the pool once per process with `workers` threads.
pub fn start(workers: usize) {
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("glupy-py{n}"))
                .stack_size(PYTHON_STACK_BYTES)
                .spawn(move || worker(rx))
                .expect("spawn a glupy worker thread");
        }
        Pool { tx: Mutex::new(tx) }
    });
}

thread_local! {
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this is one of the pool's threads. The GIL is never held on them
/// while GlusterFS code runs, so a reply that comes back synchronously
/// inside a wind can be handled right there, without a thread switch.
pub fn on_worker() -> bool {
    ON_WORKER.with(|w| w.get())
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    block_signals();
    ON_WORKER.with(|w| w.set(true));
    crate::threads::keep_thread_state();
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        crate::guard::guarded("a glupy worker job", (), job);
    }
}

/// Signals that report a fault of the thread that gets them: GlusterFS's
/// handler (gf_print_trace) writes the crash report for them, so they must
/// never be blocked (a blocked fault kills the process with no report).
const FAULT_SIGNALS: [libc::c_int; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// GlusterFS takes its asynchronous signals (SIGTERM, SIGHUP, SIGUSR1, ...)
/// on one thread of its own (glusterfsd's sigwaiter); ours must never take
/// them. Blocks what GlusterFS's own threads block (gf_thread_create), and
/// never a fault signal, whatever the thread that started the pool had
/// blocked. Threads Python starts from here inherit this mask.
pub(crate) fn block_signals() {
    // SAFETY: sigfillset/sigdelset/pthread_sigmask only touch this thread's
    // mask and a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for signal in FAULT_SIGNALS.into_iter().chain([libc::SIGCONT]) {
            libc::sigdelset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Queues `job` for a Python thread. Returns false if the pool is not
/// started (only before the first init), in which case the job is dropped.
pub fn submit(job: Job) -> bool {
    submit_or_return(job).is_ok()
}

/// Queues `job` for a Python thread, or gives it back if there is no pool
/// (before the first init) for the caller to run some other way.
pub fn submit_or_return(job: Job) -> Result<(), Job> {
    match POOL.get() {
        Some(pool) => pool
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|back| back.0),
        None => Err(job),
    }
}
