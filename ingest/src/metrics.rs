//! Prometheus metrics, served as text at `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::classify::ClassifyMetrics;

/// Every metric the service exports, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route pattern, method and status.
    pub requests: IntCounterVec,
    /// HTTP request latency by route pattern and method.
    pub latency: HistogramVec,
    /// Requests refused because their body did not arrive within the deadline.
    pub body_timeouts: IntCounter,
    /// Readings by outcome: accepted, duplicate, rejected.
    pub readings: IntCounterVec,
    /// Events by queue status, refreshed at each scrape.
    pub queue_depth: IntGaugeVec,
    /// Cache lookups by outcome: hit, miss, error.
    pub cache_lookups: IntCounterVec,
    /// Redis commands that failed (timeouts, connection losses).
    pub redis_errors: IntCounter,
    /// The classification pipeline's own metrics.
    pub classify: ClassifyMetrics,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("smart_traffic".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )?;
        let body_timeouts = IntCounter::new(
            "http_body_timeouts_total",
            "Requests whose body did not arrive in full within INGEST_BODY_TIMEOUT_S \
             (answered 408, connection closed)",
        )?;
        let readings = IntCounterVec::new(
            Opts::new(
                "readings_total",
                "Readings received, by outcome (accepted, duplicate, rejected)",
            ),
            &["outcome"],
        )?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("queue_events", "Events by classification status"),
            &["status"],
        )?;
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "cache_lookups_total",
                "Cache lookups by kind (view: a whole answer; bucket: a settled series bucket) and outcome: hit, miss, error (Redis failed: answered from the database)",
            ),
            &["kind", "outcome"],
        )?;
        let redis_errors = IntCounter::new(
            "redis_errors_total",
            "Redis commands that failed or timed out (their callers went on without Redis)",
        )?;
        let classify = ClassifyMetrics {
            lag: Histogram::with_opts(
                HistogramOpts::new(
                    "classification_lag_seconds",
                    "Time from a reading's arrival to its classification",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
                ]),
            )?,
            calls: IntCounterVec::new(
                Opts::new(
                    "classifier_calls_total",
                    "MCP tool calls to the classifier, by tool and outcome",
                ),
                &["tool", "outcome"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "classification_retries_total",
                    "Failed classification attempts, by kind",
                ),
                &["kind"],
            )?,
        };
        registry.register(Box::new(classify.lag.clone()))?;
        registry.register(Box::new(classify.calls.clone()))?;
        registry.register(Box::new(classify.retries.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(body_timeouts.clone()))?;
        registry.register(Box::new(readings.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(cache_lookups.clone()))?;
        registry.register(Box::new(redis_errors.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            body_timeouts,
            readings,
            queue_depth,
            cache_lookups,
            redis_errors,
            classify,
        })
    }

    /// The value of the `method` label: the standard methods by name, any other as `other`,
    /// so that made-up methods cannot grow the label set without bound.
    pub fn method_label(method: &actix_web::http::Method) -> &'static str {
        use actix_web::http::Method;
        const STANDARD: [Method; 9] = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::CONNECT,
            Method::OPTIONS,
            Method::TRACE,
            Method::PATCH,
        ];
        STANDARD
            .iter()
            .find(|m| *m == method)
            .map_or("other", |m| m.as_str())
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn count_readings(&self, accepted: usize, duplicate: usize, rejected: usize) {
        for (outcome, n) in [
            ("accepted", accepted),
            ("duplicate", duplicate),
            ("rejected", rejected),
        ] {
            if n > 0 {
                self.readings.with_label_values(&[outcome]).inc_by(n as u64);
            }
        }
    }

    /// The exposition text of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
