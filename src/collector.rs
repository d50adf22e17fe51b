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
/// After a collection that took d, the next waits at least d times this:
/// a large heap with many requests waiting on (frames a translator keeps
/// to answer later) spends at most about 1% of the time collecting.
const QUIET_FACTOR: u32 = 100;

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

/// When to collect, from what each look finds waiting.
#[derive(Default)]
struct Schedule {
    waiting: HashMap<usize, Waiting>,
    quiet_until: Option<Instant>,
}

impl Schedule {
    /// `keys` wait on Python at `now`: whether to collect now.
    fn look(&mut self, now: Instant, keys: &HashSet<usize>) -> bool {
        self.waiting.retain(|key, _| keys.contains(key));
        for &key in keys {
            self.waiting.entry(key).or_insert(Waiting {
                since: now,
                due: now + FIRST_WAIT,
            });
        }
        if self.quiet_until.is_some_and(|until| now < until) {
            return false;
        }
        let mut collect = false;
        for w in self.waiting.values_mut().filter(|w| w.due <= now) {
            w.due = now + (now - w.since).max(FIRST_WAIT);
            collect = true;
        }
        collect
    }

    /// A collection started at `now` took `took`.
    fn collected(&mut self, now: Instant, took: Duration) {
        self.quiet_until = Some(now + took * QUIET_FACTOR);
    }
}

fn run() {
    crate::pool::block_signals();
    let mut schedule = Schedule::default();
    loop {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let keys = crate::guard::guarded(
            "watching requests for the collector",
            HashSet::new(),
            waiting_on_python,
        );
        if schedule.look(now, &keys) {
            crate::guard::guarded("running Python's collector", (), collect);
            schedule.collected(now, now.elapsed());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn a_request_asks_after_five_seconds_then_after_waiting_as_long_again() {
        let start = Instant::now();
        let (mut schedule, one) = (Schedule::default(), HashSet::from([1]));
        let asked: Vec<u64> = (0..=45)
            .filter(|&s| schedule.look(at(start, s), &one))
            .collect();
        assert_eq!(asked, [5, 10, 20, 40]);
    }

    #[test]
    fn each_new_request_asks_once_it_has_waited_and_one_answered_asks_no_more() {
        let start = Instant::now();
        let mut schedule = Schedule::default();
        assert!(!schedule.look(at(start, 0), &HashSet::from([1])));
        assert!(!schedule.look(at(start, 3), &HashSet::from([1, 2])));
        assert!(schedule.look(at(start, 5), &HashSet::from([1, 2])));
        assert!(schedule.look(at(start, 8), &HashSet::from([1, 2])));
        // Answered (gone from the look), then a new request of the same key.
        assert!(!schedule.look(at(start, 9), &HashSet::new()));
        assert!(!schedule.look(at(start, 10), &HashSet::from([1])));
        assert!(schedule.look(at(start, 15), &HashSet::from([1])));
    }

    #[test]
    fn a_long_collection_keeps_the_next_one_away_a_hundred_times_as_long() {
        let start = Instant::now();
        let mut schedule = Schedule::default();
        schedule.look(at(start, 0), &HashSet::from([1, 2]));
        assert!(schedule.look(at(start, 5), &HashSet::from([1, 2])));
        schedule.collected(at(start, 5), Duration::from_millis(200)); // quiet for 20 s
        for s in 6..25 {
            assert!(
                !schedule.look(at(start, s), &HashSet::from([1, 2, 3])),
                "at {s} s"
            );
        }
        assert!(schedule.look(at(start, 25), &HashSet::from([1, 2, 3])));
    }
}
