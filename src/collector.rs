//! Runs Python's garbage collector when a request has waited on Python a
//! while and nothing else would run it.
//!
//! A request kept only by its own `frame.local`, or a coroutine awaiting a
//! future nothing holds, is answered (EIO, as a dropped frame) when the
//! collector frees it. CPython collects only as the process allocates, so
//! on an idle brick that may be never: a probe kept such requests 45 s
//! unanswered. One thread per process looks every TICK at the requests
//! only Python can move on (not answered, no wind out), and runs a full
//! collection once one of them has waited FIRST_WAIT. A request that waits
//! on (a coroutine sleeping, a frame a thread keeps to answer later) asks
//! again only after waiting as long again as it had, so a long wait costs
//! a few collections, never one per tick.

use crate::instance::Instance;
use pyo3::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How often the thread looks.
const TICK: Duration = Duration::from_secs(1);
/// How long a request waits on Python before the collector runs for it.
const FIRST_WAIT: Duration = Duration::from_secs(5);

/// The translators whose requests are watched (dead ones are pruned).
static WATCHED: Mutex<Vec<Weak<Instance>>> = Mutex::new(Vec::new());

/// Watches `inst`'s requests from now on (the thread starts with the first).
pub fn watch(inst: &Arc<Instance>) {
    WATCHED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Arc::downgrade(inst));
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("glupy-collect".into())
            .stack_size(crate::pool::PYTHON_STACK_BYTES)
            .spawn(run);
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the thread that runs Python's collector for requests left \
                 waiting ({e}); a request kept only by its own frame.local is answered only \
                 when Python next collects"
            );
        }
    });
}

/// One request waiting on Python, by its key.
struct Waiting {
    since: Instant,
    /// When it next asks for a collection.
    due: Instant,
}

fn run() {
    crate::pool::block_signals();
    let mut waiting: HashMap<usize, Waiting> = HashMap::new();
    loop {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let keys = crate::guard::guarded(
            "watching requests for the collector",
            HashSet::new(),
            waiting_on_python,
        );
        waiting.retain(|key, _| keys.contains(key));
        for &key in &keys {
            waiting.entry(key).or_insert(Waiting {
                since: now,
                due: now + FIRST_WAIT,
            });
        }
        let mut due = waiting.values_mut().filter(|w| w.due <= now).peekable();
        if due.peek().is_none() {
            continue;
        }
        for w in due {
            w.due = now + (now - w.since).max(FIRST_WAIT);
        }
        crate::guard::guarded("running Python's collector", (), collect);
    }
}

/// The keys of every watched request only Python can move on.
fn waiting_on_python() -> HashSet<usize> {
    let instances: Vec<Arc<Instance>> = {
        let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
        watched.retain(|w| w.strong_count() > 0);
        watched.iter().filter_map(Weak::upgrade).collect()
    };
    instances
        .iter()
        .flat_map(|inst| inst.waiting_on_python())
        .collect()
}

fn collect() {
    Python::attach(|py| {
        let collected = py
            .import("gc")
            .and_then(|gc| gc.call_method0("collect"))
            .and_then(|n| n.extract::<usize>());
        match collected {
            Ok(n) => tracing::debug!(
                "ran Python's collector for a request waiting on Python: {n} objects freed"
            ),
            Err(e) => tracing::error!(
                "Python's collector failed: {}",
                crate::interp::format_exception(py, &e)
            ),
        }
    })
}
