//! Runs Python's garbage collector when a request has waited on Python a
//! while and nothing else would run it.
//!
//! A request kept only by its own `frame.local`, or a coroutine awaiting a
//! future nothing holds, is answered (EIO, as a dropped frame) when the
//! collector frees it. CPython collects only as the process allocates, so
//! on an idle brick that may be never: a probe kept such requests 45 s
//! unanswered. One thread per process looks every TICK at the requests
//! only Python can move on (not answered, no wind out), and runs a full
//! collection once one of them has waited FIRST_WAIT. A collection covers
//! every request waiting when it ran; one that waits on (a coroutine
//! sleeping, a frame a thread keeps to answer later) asks again after
//! waiting as long again, at most MAX_WAIT later, so a long wait costs a
//! few collections, never one per tick.

use crate::instance::Instance;
use crate::logging::{self, Domain};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How often the thread looks.
const TICK: Duration = Duration::from_secs(1);
/// How long a request waits on Python before the collector runs for it.
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest a waiting request goes between two collections: one that
/// became unreachable only after waiting long is not left as long again.
const MAX_WAIT: Duration = Duration::from_secs(60);
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
    /// `keys` wait on Python at `now`: the one that has waited longest of
    /// those that ask for a collection now, if any.
    fn look(&mut self, now: Instant, keys: impl IntoIterator<Item = usize>) -> Option<usize> {
        let mut seen = HashMap::with_capacity(self.waiting.len());
        for key in keys {
            let waiting = self.waiting.remove(&key).unwrap_or(Waiting {
                since: now,
                due: now + FIRST_WAIT,
            });
            seen.insert(key, waiting);
        }
        self.waiting = seen;
        if self.quiet_until.is_some_and(|until| now < until) {
            return None;
        }
        self.waiting
            .iter()
            .filter(|(_, w)| w.due <= now)
            .min_by_key(|(_, w)| w.since)
            .map(|(&key, _)| key)
    }

    /// A collection ran at `now` and took `took`: it covered every request
    /// waiting then.
    fn collected(&mut self, now: Instant, took: Duration) {
        for w in self.waiting.values_mut() {
            w.due = now + (now - w.since).clamp(FIRST_WAIT, MAX_WAIT);
        }
        self.quiet_until = Some(now + took * QUIET_FACTOR);
    }
}

fn run() {
    crate::pool::block_signals();
    let mut schedule = Schedule::default();
    loop {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let waiting = crate::guard::guarded(
            "watching requests for the collector",
            HashMap::new(),
            waiting_on_python,
        );
        let Some(longest) = schedule.look(now, waiting.keys().copied()) else {
            continue;
        };
        // What the collection sets off (a freed frame's "returned without
        // winding" line, asyncio's "Task was destroyed") is logged by the
        // translator of the request that asked first.
        let took = logging::with_domain(&waiting[&longest], || {
            crate::guard::guarded("running Python's collector", Duration::ZERO, collect)
        });
        schedule.collected(now, took);
    }
}

/// Every watched request only Python can move on, by key: the log domain
/// of its translator.
fn waiting_on_python() -> HashMap<usize, Domain> {
    let instances: Vec<Arc<Instance>> = {
        let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
        watched.retain(|w| w.strong_count() > 0);
        watched.iter().filter_map(Weak::upgrade).collect()
    };
    instances
        .iter()
        .flat_map(|inst| {
            inst.waiting_on_python()
                .into_iter()
                .map(|key| (key, inst.name.clone()))
        })
        .collect()
}

/// Runs a full collection: how long the collection itself took (not the
/// wait for the GIL).
fn collect() -> Duration {
    Python::attach(|py| {
        let started = Instant::now();
        let collected = py
            .import("gc")
            .and_then(|gc| gc.call_method0("collect"))
            .and_then(|n| n.extract::<usize>());
        let took = started.elapsed();
        match collected {
            Ok(n) => tracing::debug!(
                "ran Python's collector for a request waiting on Python: {n} objects freed"
            ),
            Err(e) => tracing::error!(
                "Python's collector failed: {}",
                crate::interp::format_exception(py, &e)
            ),
        }
        took
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    /// Looks once a second from `start` for `seconds`, the keys `waiting`
    /// gives for each second; collects (instantly) whenever asked. The
    /// seconds it collected at.
    fn collections(seconds: u64, waiting: impl Fn(u64) -> Vec<usize>) -> Vec<u64> {
        let (start, mut schedule) = (Instant::now(), Schedule::default());
        (0..=seconds)
            .filter(|&s| {
                let asked = schedule.look(at(start, s), waiting(s)).is_some();
                if asked {
                    schedule.collected(at(start, s), Duration::ZERO);
                }
                asked
            })
            .collect()
    }

    #[test]
    fn a_request_asks_after_five_seconds_then_after_waiting_as_long_again_at_most_a_minute() {
        assert_eq!(collections(200, |_| vec![1]), [5, 10, 20, 40, 80, 140, 200]);
    }

    #[test]
    fn one_collection_covers_every_request_waiting_then() {
        // A new long-waiting request every second: a collection every 5 s,
        // not one per request.
        assert_eq!(
            collections(30, |s| (0..=s as usize).collect()),
            [5, 10, 15, 20, 25, 30]
        );
        // One answered (gone from the look) and a new one with its key:
        // the new one waits its own 5 s.
        assert_eq!(
            collections(20, |s| if s == 6 { vec![] } else { vec![1] }),
            [5, 12, 17]
        );
    }

    #[test]
    fn the_longest_waiting_due_request_is_named() {
        let (start, mut schedule) = (Instant::now(), Schedule::default());
        assert_eq!(schedule.look(at(start, 0), [7]), None);
        assert_eq!(schedule.look(at(start, 2), [7, 3]), None);
        assert_eq!(schedule.look(at(start, 7), [3, 7]), Some(7));
    }

    #[test]
    fn a_long_collection_keeps_the_next_one_away_a_hundred_times_as_long() {
        let (start, mut schedule) = (Instant::now(), Schedule::default());
        schedule.look(at(start, 0), [1, 2]);
        assert!(schedule.look(at(start, 5), [1, 2]).is_some());
        schedule.collected(at(start, 5), Duration::from_millis(200)); // quiet for 20 s
        for s in 6..25 {
            assert_eq!(schedule.look(at(start, s), [1, 2, 3]), None, "at {s} s");
        }
        assert!(schedule.look(at(start, 25), [1, 2, 3]).is_some());
    }
}
