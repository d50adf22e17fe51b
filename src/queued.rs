//! Work on the graph that the host hands to Python's threads because it
//! must not run where it was decided (`frame.rs`): an answer given with the
//! GIL held or on the event loop (the parents' callbacks may wind down to
//! the disk), and a wind from the event loop. While every Python thread is
//! busy such work waits in the pool's queue, and the graph may end
//! meanwhile: done later, it would touch xlators, frames, inodes and fds
//! GlusterFS has freed (gfapi's glfs_fini frees them right after fini).
//!
//! One lock decides who does each piece of work, once:
//! - a Python thread takes it and does it; until it is done it counts as
//!   in flight, and the graph's end waits for it as for an unwind
//!   (bounded);
//! - the graph's end closes the queue first and settles everything no
//!   thread has taken, on its own thread while the graph is still there:
//!   an answer goes up there and then; a wind is withdrawn (its request is
//!   answered without it) and never made. A thread that comes to settled
//!   work later finds it gone;
//! - work queued after the close is handed back to be settled at once,
//!   counted in flight until it is: the graph's end waits for it too (its
//!   callers hold the GIL, which the end waits for once after the close).

use crate::pool::Job;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// What the graph's end does with work no thread has taken.
pub enum AtTheEnd {
    /// Does the work itself (an answer: it goes up while the graph is
    /// there).
    Perform,
    /// Does this instead (a wind: its request answered without it). The
    /// work is never done; what it holds (the wind's arguments) is let go
    /// while the graph is there, else left alone (leaked).
    Withdraw(Job),
}

impl AtTheEnd {
    /// Settles `work` now, as the graph's end would; `graph_there`: its
    /// inodes, fds and dicts are not freed yet (PARENT_DOWN, before the
    /// graph's life ends). The work's Python references, if let go here,
    /// go through PyO3's pending decrefs (no GIL is taken).
    pub fn settle(self, work: Job, graph_there: bool) {
        match self {
            AtTheEnd::Perform => work(),
            AtTheEnd::Withdraw(withdraw) => {
                if graph_there {
                    drop(work);
                } else {
                    std::mem::forget(work);
                }
                withdraw();
            }
        }
    }
}

/// A piece of queued work, for `QueuedWork::take`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WorkId(u64);

#[derive(Default)]
pub struct QueuedWork {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    closed: bool,
    next: u64,
    waiting: HashMap<WorkId, (Job, AtTheEnd)>,
    /// Taken by a thread and not finished yet.
    in_flight: usize,
}

/// What the graph's end settled.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Settled {
    pub performed: usize,
    pub withdrawn: usize,
}

impl QueuedWork {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `work`, settled as `at_end` says if the graph ends before a
    /// thread takes it. Once closed, both are handed back, counted in
    /// flight: the caller settles them (`AtTheEnd::settle`), then calls
    /// `finished`.
    pub fn queue(&self, work: Job, at_end: AtTheEnd) -> Result<WorkId, (Job, AtTheEnd)> {
        let mut inner = self.inner();
        if inner.closed {
            inner.in_flight += 1;
            return Err((work, at_end));
        }
        let id = WorkId(inner.next);
        inner.next += 1;
        inner.waiting.insert(id, (work, at_end));
        Ok(id)
    }

    /// The thread that came to `id` takes its work: in flight until
    /// `finished`. None if the graph's end settled it already.
    pub fn take(&self, id: WorkId) -> Option<Job> {
        let mut inner = self.inner();
        let (work, _) = inner.waiting.remove(&id)?;
        inner.in_flight += 1;
        Some(work)
    }

    /// Taken work is done (and what it held let go of).
    pub fn finished(&self) {
        let mut inner = self.inner();
        inner.in_flight = inner.in_flight.saturating_sub(1);
    }

    /// Taken work not finished yet.
    pub fn in_flight(&self) -> usize {
        self.inner().in_flight
    }

    /// The graph's end: nothing is queued from now on, and what no thread
    /// took is settled here, outside the lock (`AtTheEnd::settle`).
    pub fn close(&self, graph_there: bool) -> Settled {
        let waiting: Vec<(Job, AtTheEnd)> = {
            let mut inner = self.inner();
            inner.closed = true;
            inner.waiting.drain().map(|(_, w)| w).collect()
        };
        let mut settled = Settled::default();
        for (work, at_end) in waiting {
            match at_end {
                AtTheEnd::Perform => settled.performed += 1,
                AtTheEnd::Withdraw(_) => settled.withdrawn += 1,
            }
            // One that panics must not take the others' answers with it.
            crate::guard::guarded("settling queued work", (), || {
                at_end.settle(work, graph_there)
            });
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::{AtTheEnd, QueuedWork, Settled};
    use crate::pool::Job;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counting(counter: &Arc<AtomicUsize>) -> Job {
        let counter = Arc::clone(counter);
        Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn count(counter: &Arc<AtomicUsize>) -> usize {
        counter.load(Ordering::SeqCst)
    }

    #[test]
    fn taken_work_is_in_flight_until_finished_and_never_settled_by_the_end() {
        let (done, withdrawn) = (Arc::default(), Arc::default());
        let queued = QueuedWork::default();
        let id = queued
            .queue(counting(&done), AtTheEnd::Withdraw(counting(&withdrawn)))
            .ok()
            .unwrap();
        let work = queued.take(id).expect("queued");
        assert!(queued.take(id).is_none(), "taken once");
        assert_eq!(queued.in_flight(), 1);
        assert_eq!(queued.close(true), Settled::default());
        work();
        queued.finished();
        assert_eq!((count(&done), count(&withdrawn)), (1, 0));
        assert_eq!(queued.in_flight(), 0);
    }

    #[test]
    fn the_end_performs_answers_and_withdraws_winds_no_thread_took() {
        let (answered, wound, withdrawn) = (Arc::default(), Arc::default(), Arc::default());
        let queued = QueuedWork::default();
        let answer = queued
            .queue(counting(&answered), AtTheEnd::Perform)
            .ok()
            .unwrap();
        let wind = queued
            .queue(counting(&wound), AtTheEnd::Withdraw(counting(&withdrawn)))
            .ok()
            .unwrap();
        assert_ne!(answer, wind);
        let settled = queued.close(true);
        assert_eq!(
            settled,
            Settled {
                performed: 1,
                withdrawn: 1
            }
        );
        assert_eq!(
            (count(&answered), count(&wound), count(&withdrawn)),
            (1, 0, 1)
        );
        assert!(queued.take(answer).is_none() && queued.take(wind).is_none());
        assert_eq!(queued.in_flight(), 0);
        assert_eq!(queued.close(true), Settled::default(), "settled once");
    }

    #[test]
    fn after_the_close_work_is_handed_back_counted_to_be_settled_at_once() {
        let (wound, withdrawn) = (Arc::default(), Arc::default());
        let queued = QueuedWork::default();
        queued.close(true);
        let (work, at_end) = queued
            .queue(counting(&wound), AtTheEnd::Withdraw(counting(&withdrawn)))
            .expect_err("closed");
        assert_eq!(count(&withdrawn), 0, "the caller settles it");
        assert_eq!(queued.in_flight(), 1, "counted until it is settled");
        at_end.settle(work, false);
        queued.finished();
        assert_eq!((count(&wound), count(&withdrawn)), (0, 1));
        assert_eq!(queued.in_flight(), 0);
    }

    #[test]
    fn a_withdrawn_winds_arguments_go_only_while_the_graph_is_there() {
        for graph_there in [true, false] {
            let arguments = Arc::new(());
            let held = Arc::clone(&arguments);
            let wind: Job = Box::new(move || drop(held));
            AtTheEnd::Withdraw(Box::new(|| {})).settle(wind, graph_there);
            let let_go = Arc::strong_count(&arguments) == 1;
            assert_eq!(let_go, graph_there, "graph there: {graph_there}");
        }
    }

    #[test]
    fn all_work_is_done_or_settled_once_when_a_thread_races_the_close() {
        for _ in 0..50 {
            let (done, withdrawn) = (Arc::default(), Arc::default());
            let queued = Arc::new(QueuedWork::default());
            let ids: Vec<_> = (0..64)
                .map(|_| {
                    let at_end = AtTheEnd::Withdraw(counting(&withdrawn));
                    queued.queue(counting(&done), at_end).ok().unwrap()
                })
                .collect();
            let taker = {
                let queued = Arc::clone(&queued);
                std::thread::spawn(move || {
                    let taken: Vec<_> = ids.into_iter().filter_map(|id| queued.take(id)).collect();
                    let made = taken.len();
                    taken.into_iter().for_each(|work| work());
                    made
                })
            };
            let settled = queued.close(true);
            let made = taker.join().unwrap();
            assert_eq!(made + settled.withdrawn, 64);
            assert_eq!((count(&done), count(&withdrawn)), (made, settled.withdrawn));
            assert_eq!(queued.in_flight(), made);
        }
    }
}
