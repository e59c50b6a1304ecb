//! One process's fan-out of stream items: a bounded broadcast to the connected clients, and
//! the most recent items kept for clients that reconnect with `Last-Event-ID`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use traffic_model::classification::Label;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Classified,
    Transition,
}

/// One server-sent event, framed once for every client.
#[derive(Debug)]
pub struct Item {
    pub id: String,
    pub kind: ItemKind,
    pub sensor_id: String,
    pub road: Option<String>,
    /// The event's label; a transition's labels before and after.
    pub labels: Vec<Label>,
    /// `id:`, `event:` and `data:` lines and the blank line that ends the event.
    pub frame: Bytes,
}

impl Item {
    pub fn new(
        id: String,
        kind: ItemKind,
        sensor_id: String,
        road: Option<String>,
        labels: Vec<Label>,
        data: &str,
    ) -> Self {
        let name = match kind {
            ItemKind::Classified => "classified",
            ItemKind::Transition => "transition",
        };
        let frame = Bytes::from(format!("id: {id}\nevent: {name}\ndata: {data}\n\n"));
        Self {
            id,
            kind,
            sensor_id,
            road,
            labels,
            frame,
        }
    }
}

/// How a reconnecting client's `Last-Event-ID` was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No `Last-Event-ID`: live items only.
    Fresh,
    /// Found: the items after it are replayed.
    Replayed,
    /// Not among the items kept: the client must reload the state it shows.
    Lost,
}

pub struct Subscription {
    pub replay: Vec<Arc<Item>>,
    /// Cancelled when the process stops: the client's stream ends.
    pub closing: CancellationToken,
    pub resume: Resume,
    pub receiver: broadcast::Receiver<Arc<Item>>,
    pub guard: ClientGuard,
}

pub struct Hub {
    sender: broadcast::Sender<Arc<Item>>,
    recent: Mutex<VecDeque<Arc<Item>>>,
    keep: usize,
    clients: Arc<Clients>,
    /// How long after the last client left items are still built, for it to resume.
    linger: Duration,
    closing: CancellationToken,
}

#[derive(Default)]
pub struct Clients {
    connected: AtomicUsize,
    last_left: Mutex<Option<Instant>>,
}

/// Counts a connected client until dropped.
pub struct ClientGuard(Arc<Clients>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.connected.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut last) = self.0.last_left.lock() {
            *last = Some(Instant::now());
        }
    }
}

impl Hub {
    /// `lag`: items a client may fall behind before it is dropped; `keep`: items kept for
    /// resuming; `linger`: how long items are built with no client connected.
    pub fn new(lag: usize, keep: usize, linger: Duration) -> Self {
        Self {
            sender: broadcast::channel(lag.max(1)).0,
            recent: Mutex::new(VecDeque::with_capacity(keep)),
            keep,
            clients: Arc::default(),
            linger,
            closing: CancellationToken::new(),
        }
    }

    /// Ends every client's stream (the process is stopping); they reconnect elsewhere.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Whether anyone may read items now: a client connected, or one that left recently
    /// enough to come back for what it missed.
    pub fn wanted(&self) -> bool {
        self.clients.connected.load(Ordering::Relaxed) > 0
            || self
                .clients
                .last_left
                .lock()
                .ok()
                .and_then(|last| *last)
                .is_some_and(|left| left.elapsed() < self.linger)
    }

    pub fn clients(&self) -> usize {
        self.clients.connected.load(Ordering::Relaxed)
    }

    /// Keeps `items` for resuming and sends them to every client, in order.
    pub fn publish(&self, items: Vec<Item>) {
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        for item in items {
            let item = Arc::new(item);
            if recent.len() == self.keep {
                recent.pop_front();
            }
            if self.keep > 0 {
                recent.push_back(Arc::clone(&item));
            }
            // No receiver is no error: nobody is listening right now.
            let _ = self.sender.send(item);
        }
    }

    /// A new client: the kept items after `last_event_id` (when it is among them), then every
    /// item published from now on. Taken under the publishing lock, so nothing falls between.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        self.clients.connected.fetch_add(1, Ordering::Relaxed);
        let guard = ClientGuard(Arc::clone(&self.clients));
        let recent = self.recent.lock().ok();
        let (replay, resume) = match (last_event_id, &recent) {
            (None, _) => (Vec::new(), Resume::Fresh),
            (Some(last), Some(recent)) => match recent.iter().rposition(|i| i.id == last) {
                Some(at) => (
                    recent.iter().skip(at + 1).cloned().collect(),
                    Resume::Replayed,
                ),
                None => (Vec::new(), Resume::Lost),
            },
            (Some(_), None) => (Vec::new(), Resume::Lost),
        };
        let receiver = self.sender.subscribe();
        drop(recent);
        Subscription {
            replay,
            closing: self.closing.clone(),
            resume,
            receiver,
            guard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
        Item::new(
            id.into(),
            ItemKind::Classified,
            "s".into(),
            None,
            vec![],
            "{}",
        )
    }

    #[test]
    fn a_client_resumes_after_the_id_it_last_saw_while_it_is_kept() {
        let hub = Hub::new(16, 3, Duration::from_secs(60));
        hub.publish(vec![item("1"), item("2"), item("3"), item("4")]);
        let resumed = hub.subscribe(Some("2"));
        let ids: Vec<&str> = resumed.replay.iter().map(|i| i.id.as_str()).collect();
        assert_eq!((ids, resumed.resume), (vec!["3", "4"], Resume::Replayed));
        // "1" fell out of the three kept.
        assert_eq!(hub.subscribe(Some("1")).resume, Resume::Lost);
        assert_eq!(hub.subscribe(None).resume, Resume::Fresh);
        assert_eq!(hub.clients(), 1, "the two dropped subscriptions left");
    }

    #[test]
    fn a_client_that_falls_too_far_behind_is_told_so() {
        let hub = Hub::new(2, 0, Duration::ZERO);
        let mut slow = hub.subscribe(None);
        hub.publish(vec![item("1"), item("2"), item("3")]);
        assert!(matches!(
            slow.receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(1))
        ));
    }

    #[test]
    fn items_are_wanted_while_a_client_is_connected_or_has_just_left() {
        let hub = Hub::new(2, 0, Duration::from_secs(60));
        assert!(!hub.wanted());
        let client = hub.subscribe(None);
        assert!(hub.wanted());
        drop(client);
        assert!(hub.wanted(), "it may come back");
        let quick = Hub::new(2, 0, Duration::ZERO);
        drop(quick.subscribe(None));
        assert!(!quick.wanted());
    }
}
