//! How new work reaches this process's workers: fresh readings handed over by the request that
//! stored them, and a wake-up for everything else that became due.
//!
//! The hand-off lets a worker claim fresh readings by id (one UPDATE of their queue rows)
//! instead of finding them in the queue and reading them back (a locking SELECT, an UPDATE and
//! a read of the events). It is only a short cut: every reading it holds is also in the queue,
//! due at once. What it cannot take (it is full: classification is behind) wakes the workers to
//! claim from the queue instead; what it holds when the process stops is claimed from the
//! queue later, here or by another replica.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use traffic_store::Event;

/// Shared by the request handlers and the workers of one process.
pub struct Dispatch {
    /// Fresh events for the local workers.
    pub handoff: HandOff,
    /// Signalled when events became due in the queue (a re-queue, or readings the hand-off
    /// could not take), so that workers need not wait for their poll.
    pub wake: Notify,
}

impl Dispatch {
    /// A hand-off of at most `capacity` events (0: everything goes through the queue).
    pub fn new(capacity: usize) -> Self {
        Self {
            handoff: HandOff::new(capacity),
            wake: Notify::new(),
        }
    }

    /// Whether a writer should ask for the rows it creates back, to hand them over.
    pub fn wants_events(&self) -> bool {
        self.handoff.room() > 0
    }

    /// `stored` readings were just stored, of which `fresh` came back as events: those are
    /// handed over as far as there is room, and the workers are woken for any others.
    pub fn stored(&self, stored: usize, fresh: Vec<Event>) {
        let handed = fresh.len();
        let left_out = self.handoff.offer(fresh);
        if left_out > 0 || stored > handed {
            self.wake_workers();
        }
    }

    /// Wakes every idle worker, and the next one to go idle, to claim from the queue.
    pub fn wake_workers(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }
}

/// A bounded first-in, first-out buffer of fresh events shared by the request handlers and the
/// workers of one process.
pub struct HandOff {
    events: Mutex<VecDeque<Event>>,
    capacity: usize,
    ready: Notify,
}

impl HandOff {
    /// Holds at most `capacity` events; 0 turns the hand-off off.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: Mutex::new(VecDeque::new()),
            capacity,
            ready: Notify::new(),
        }
    }

    /// How many more events would be taken now.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.lock().len())
    }

    /// Takes as many of `events` as there is room for, in order, and wakes a worker; returns
    /// how many were left out (they stay due in the queue).
    pub fn offer(&self, events: impl IntoIterator<Item = Event>) -> usize {
        let mut left_out = 0;
        let mut taken = false;
        {
            let mut buffer = self.lock();
            for event in events {
                if buffer.len() < self.capacity {
                    buffer.push_back(event);
                    taken = true;
                } else {
                    left_out += 1;
                }
            }
        }
        if taken {
            self.ready.notify_one();
        }
        left_out
    }

    /// Up to `max` of the oldest events held; another worker is woken when some remain.
    pub fn take(&self, max: usize) -> Vec<Event> {
        let (taken, more) = {
            let mut buffer = self.lock();
            let n = max.min(buffer.len());
            let taken: Vec<Event> = buffer.drain(..n).collect();
            (taken, !buffer.is_empty())
        };
        if more {
            self.ready.notify_one();
        }
        taken
    }

    /// Resolves once events have been offered (at once if an offer came since the last wait).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        // The buffer is consistent between any two statements: a panic elsewhere leaves it usable.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use traffic_store::test_util::{minute, reading};
    use traffic_store::{Event, Status};

    use super::HandOff;

    fn event(id: i64) -> Event {
        Event {
            id,
            reading: reading("S1", Some(1), id),
            received_at: minute(id),
            status: Status::Pending,
            classification: None,
            classified_at: None,
            attempts: 0,
            next_attempt_at: Some(minute(id)),
            last_error: None,
            requeued: false,
        }
    }

    fn ids(events: &[Event]) -> Vec<i64> {
        events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn it_holds_what_fits_and_gives_it_back_oldest_first() {
        let handoff = HandOff::new(3);
        assert_eq!(handoff.room(), 3);
        assert_eq!(handoff.offer((1..=5).map(event)), 2, "two did not fit");
        assert_eq!(handoff.room(), 0);
        assert_eq!(ids(&handoff.take(2)), [1, 2]);
        assert_eq!(ids(&handoff.take(10)), [3]);
        assert!(handoff.take(10).is_empty());
        assert_eq!(handoff.room(), 3);
    }

    #[test]
    fn a_zero_capacity_takes_nothing() {
        let handoff = HandOff::new(0);
        assert_eq!(handoff.offer([event(1)]), 1);
        assert!(handoff.take(10).is_empty());
    }

    #[tokio::test]
    async fn an_offer_wakes_a_waiting_worker_and_a_partial_take_wakes_the_next() {
        let handoff = std::sync::Arc::new(HandOff::new(10));
        let waiter = {
            let handoff = std::sync::Arc::clone(&handoff);
            tokio::spawn(async move { handoff.ready().await })
        };
        tokio::task::yield_now().await;
        handoff.offer((1..=3).map(event));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the offer woke the waiter")
            .expect("the waiter ran");
        assert_eq!(ids(&handoff.take(1)), [1]);
        // Two remain: the take left a wake-up for the next worker.
        tokio::time::timeout(std::time::Duration::from_secs(5), handoff.ready())
            .await
            .expect("a wake-up was left for the rest");
    }
}
