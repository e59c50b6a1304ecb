//! `GET /v1/stream`: Server-Sent Events of classified events and label transitions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_ENCODING, ContentEncoding};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use traffic_model::classification::Label;
use traffic_model::reading::SensorId;

use crate::app::AppState;
use crate::negotiate::{self, Representation};
use crate::params::Road;
use crate::problem::Problem;
use crate::query::Query;
use crate::stream::hub::{ClientGuard, Item, ItemKind, Resume};

/// What the stream answers in.
pub const FORMATS: &[Representation] = &[Representation::EventStream];
/// A comment line this often keeps proxies and the client from giving the connection up.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a client waits before reconnecting (the `retry:` field), in milliseconds.
const RETRY_MS: u32 = 2000;

/// The parameters of `GET /v1/stream`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Only this sensor
    sensor_id: Option<SensorId>,
    /// Only sensors on this road (their metadata's `road`)
    road: Option<Road>,
    /// Only classified events with this label, and transitions into or out of it
    label: Option<Label>,
    /// Only `transition` events
    transitions_only: Option<bool>,
}

impl StreamQuery {
    fn admits(&self, item: &Item) -> bool {
        self.sensor_id
            .as_ref()
            .is_none_or(|id| id.as_str() == item.sensor_id)
            && self
                .road
                .as_ref()
                .is_none_or(|Road(road)| item.road.as_deref() == Some(road.as_str()))
            && self.label.is_none_or(|label| item.labels.contains(&label))
            && (self.transitions_only != Some(true) || item.kind == ItemKind::Transition)
    }
}

/// One connected client.
struct Client {
    /// Frames to send before live items: the retry delay, a reset, the replayed items.
    pending: VecDeque<Bytes>,
    receiver: broadcast::Receiver<Arc<Item>>,
    query: StreamQuery,
    heartbeat: tokio::time::Interval,
    last_sent: Option<String>,
    done: bool,
    closing: tokio_util::sync::CancellationToken,
    _guard: ClientGuard,
}

/// `GET /v1/stream?sensor_id&road&label&transitions_only`, resuming after `Last-Event-ID`.
pub async fn stream(
    state: Data<AppState>,
    request: HttpRequest,
    Query(query): Query<StreamQuery>,
) -> Result<HttpResponse, Problem> {
    negotiate::choose(&request, FORMATS)?;
    let last = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let subscription = state.hub.subscribe(last.as_deref());
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
    if subscription.resume == Resume::Lost {
        pending.push_back(Bytes::from_static(
            b"event: reset\ndata: {\"reason\":\"the events after Last-Event-ID are no longer kept; reload the state\"}\n\n",
        ));
    }
    let mut last_sent = last;
    for item in subscription.replay.iter().filter(|i| query.admits(i)) {
        pending.push_back(item.frame.clone());
        last_sent = Some(item.id.clone());
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.reset();
    let client = Client {
        pending,
        receiver: subscription.receiver,
        query,
        heartbeat,
        last_sent,
        done: false,
        closing: subscription.closing,
        _guard: subscription.guard,
    };
    let body = futures::stream::unfold(client, next_frame);
    Ok(HttpResponse::Ok()
        .content_type(Representation::EventStream.media_type())
        .insert_header((CACHE_CONTROL, "no-cache"))
        // Compression would hold frames back until a block fills.
        .insert_header((CONTENT_ENCODING, ContentEncoding::Identity))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

async fn next_frame(mut client: Client) -> Option<(Result<Bytes, actix_web::Error>, Client)> {
    if let Some(frame) = client.pending.pop_front() {
        return Some((Ok(frame), client));
    }
    if client.done {
        return None;
    }
    loop {
        tokio::select! {
            received = client.receiver.recv() => match received {
                Ok(item) => {
                    if client.query.admits(&item) {
                        client.last_sent = Some(item.id.clone());
                        return Some((Ok(item.frame.clone()), client));
                    }
                }
                // Too slow: the items it missed are gone from its queue. Say so, with where to
                // resume from, and end rather than hold items for it without bound.
                Err(RecvError::Lagged(missed)) => {
                    client.done = true;
                    let data = serde_json::json!({
                        "reason": "the client fell too far behind",
                        "missed": missed,
                        "last_event_id": client.last_sent,
                    });
                    let frame = Bytes::from(format!("event: dropped\ndata: {data}\n\n"));
                    return Some((Ok(frame), client));
                }
                Err(RecvError::Closed) => return None,
            },
            _ = client.heartbeat.tick() => {
                return Some((Ok(Bytes::from_static(b": heartbeat\n\n")), client));
            }
            () = client.closing.cancelled() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::stream::hub::Hub;

    fn item(id: usize) -> Item {
        Item::new(
            id.to_string(),
            ItemKind::Classified,
            "s".into(),
            None,
            vec![Label::Heavy],
            "{}",
        )
    }

    fn client(hub: &Hub) -> Client {
        let subscription = hub.subscribe(None);
        Client {
            pending: VecDeque::new(),
            receiver: subscription.receiver,
            query: StreamQuery {
                sensor_id: None,
                road: None,
                label: None,
                transitions_only: None,
            },
            heartbeat: tokio::time::interval(Duration::from_secs(3600)),
            last_sent: None,
            done: false,
            closing: subscription.closing,
            _guard: subscription.guard,
        }
    }

    /// A client that stops reading falls behind; it gets a last `dropped` event and its stream
    /// ends, while a client that keeps reading gets every item.
    #[tokio::test]
    async fn a_slow_client_is_dropped_while_a_reading_one_keeps_receiving() {
        let hub = Hub::new(8, 0, Duration::ZERO);
        let mut slow = client(&hub);
        slow.heartbeat.reset();
        let fast = client(&hub);
        let mut fast = Box::pin(futures::stream::unfold(fast, next_frame));
        let mut received = Vec::new();
        for id in 0..20 {
            hub.publish(vec![item(id)]);
            let frame = fast.next().await.unwrap().unwrap();
            received.push(String::from_utf8(frame.to_vec()).unwrap());
        }
        assert!(
            received.iter().all(|f| f.starts_with("id: ")),
            "{received:?}"
        );
        assert_eq!(received.len(), 20);

        let slow: Vec<Bytes> = futures::stream::unfold(slow, next_frame)
            .map(|frame| frame.unwrap())
            .collect()
            .await;
        assert_eq!(slow.len(), 1, "one last event, then the end");
        let last = String::from_utf8(slow[0].to_vec()).unwrap();
        assert!(last.starts_with("event: dropped\n"), "{last}");
        assert!(last.contains("\"missed\":12"), "{last}");
        assert_eq!(hub.clients(), 1);
    }
}
