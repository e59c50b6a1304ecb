//! CSV bodies (RFC 4180, UTF-8, a header row) for the reads that offer `text/csv`: one row per
//! item, a column per field, so a spreadsheet or `pandas.read_csv` takes them as they come.
//! Lists (flags) are `;`-separated in one cell; an unknown value is an empty cell.

use std::fmt::Display;

use actix_web::{HttpRequest, HttpResponse};
use traffic_model::classification::Flag;
use traffic_model::series::Bucket;
use traffic_store::{Event, StateItem, Transition};

use crate::problem::{Kind, Problem};

pub const MEDIA_TYPE: &str = "text/csv; charset=utf-8";

/// An item that is one CSV row.
pub trait CsvRecord {
    const HEADER: &'static [&'static str];
    fn record(&self) -> Vec<String>;
}

/// `200` with the items as CSV; `link_next` (the next page's URL) goes in a `Link` header.
pub fn response<T: CsvRecord>(
    items: &[T],
    link_next: Option<String>,
) -> Result<HttpResponse, Problem> {
    let failed = |e: &dyn Display| Problem::new(Kind::Internal, format!("writing CSV: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(T::HEADER).map_err(|e| failed(&e))?;
    for item in items {
        writer.write_record(item.record()).map_err(|e| failed(&e))?;
    }
    let body = writer.into_inner().map_err(|e| failed(&e.error()))?;
    let mut response = HttpResponse::Ok();
    response.content_type(MEDIA_TYPE);
    if let Some(next) = link_next {
        response.insert_header(("Link", format!("<{next}>; rel=\"next\"")));
    }
    Ok(response.body(body))
}

/// The URL of the request with `param` set to `value` (the next page's), others kept.
pub fn next_page(request: &HttpRequest, param: &str, value: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, v) in form_urlencoded::parse(request.query_string().as_bytes()) {
        if name != param {
            query.append_pair(&name, &v);
        }
    }
    query.append_pair(param, value);
    format!("{}?{}", request.path(), query.finish())
}

fn opt<T: Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn flags(flags: &[Flag]) -> String {
    let names: Vec<&str> = flags.iter().map(|f| f.into_str()).collect();
    names.join(";")
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl CsvRecord for Event {
    const HEADER: &'static [&'static str] = &[
        "id",
        "sensor_id",
        "lane",
        "observed_at",
        "interval_s",
        "vehicle_count",
        "avg_speed_kmh",
        "occupancy_pct",
        "speed_limit_kmh",
        "lanes",
        "received_at",
        "status",
        "label",
        "level_of_service",
        "flow_veh_h_lane",
        "density_veh_km_lane",
        "confidence",
        "flags",
        "classified_at",
    ];

    fn record(&self) -> Vec<String> {
        let r = &self.reading;
        let c = self.classification.as_ref();
        vec![
            self.id.to_string(),
            r.sensor_id().to_string(),
            opt(r.lane()),
            time(r.observed_at()),
            r.interval_s().to_string(),
            r.vehicle_count().to_string(),
            opt(r.avg_speed_kmh()),
            opt(r.occupancy_pct()),
            opt(r.speed_limit_kmh()),
            opt(r.lanes()),
            time(self.received_at),
            self.status.to_string(),
            opt(c.map(|c| c.label.into_str())),
            opt(c.and_then(|c| c.level_of_service).map(|l| l.into_str())),
            opt(c.map(|c| c.flow_veh_h_lane)),
            opt(c.and_then(|c| c.density_veh_km_lane)),
            opt(c.map(|c| c.confidence)),
            c.map(|c| flags(&c.flags)).unwrap_or_default(),
            opt(self.classified_at.map(time)),
        ]
    }
}

impl CsvRecord for Bucket {
    const HEADER: &'static [&'static str] = &[
        "start",
        "end",
        "readings",
        "classified",
        "vehicles",
        "flow_veh_h_lane",
        "mean_speed_kmh",
        "mean_occupancy_pct",
        "worst_los",
        "level_of_service",
        "label",
        "worst_label",
        "minutes_free_flow",
        "minutes_moderate",
        "minutes_heavy",
        "minutes_congested",
        "minutes_unknown",
        "flags",
    ];

    fn record(&self) -> Vec<String> {
        use traffic_model::classification::Label;
        let minutes = |label: Label| opt(self.minutes_by_label.get(&label));
        let flag_counts: Vec<String> = self
            .flags
            .iter()
            .map(|(flag, n)| format!("{}:{n}", flag.into_str()))
            .collect();
        vec![
            time(self.start),
            time(self.end),
            self.readings.to_string(),
            self.classified.to_string(),
            self.vehicles.to_string(),
            opt(self.flow_veh_h_lane),
            opt(self.mean_speed_kmh),
            opt(self.mean_occupancy_pct),
            opt(self.worst_los.map(|l| l.into_str())),
            opt(self.level_of_service.map(|l| l.into_str())),
            opt(self.label.map(|l| l.into_str())),
            opt(self.worst_label.map(|l| l.into_str())),
            minutes(Label::FreeFlow),
            minutes(Label::Moderate),
            minutes(Label::Heavy),
            minutes(Label::Congested),
            minutes(Label::Unknown),
            flag_counts.join(";"),
        ]
    }
}

impl CsvRecord for StateItem {
    const HEADER: &'static [&'static str] = &[
        "sensor_id",
        "lane",
        "label",
        "level_of_service",
        "observed_at",
        "age_s",
        "stale",
        "interval_s",
        "vehicle_count",
        "avg_speed_kmh",
        "occupancy_pct",
        "flow_veh_h_lane",
        "density_veh_km_lane",
        "confidence",
        "flags",
        "event_id",
        "classified_at",
        "road",
        "lon",
        "lat",
    ];

    fn record(&self) -> Vec<String> {
        let s = &self.lane.state;
        vec![
            s.sensor_id.to_string(),
            opt(s.lane),
            s.label.into_str().to_owned(),
            opt(s.level_of_service.map(|l| l.into_str())),
            time(s.observed_at),
            self.lane.age_s.to_string(),
            self.lane.stale.to_string(),
            s.interval_s.to_string(),
            s.vehicle_count.to_string(),
            opt(s.avg_speed_kmh),
            opt(s.occupancy_pct),
            s.flow_veh_h_lane.to_string(),
            opt(s.density_veh_km_lane),
            s.confidence.to_string(),
            flags(&s.flags),
            s.event_id.to_string(),
            time(s.classified_at),
            opt(self.road.as_deref()),
            opt(self.location.map(|l| l.lon)),
            opt(self.location.map(|l| l.lat)),
        ]
    }
}

impl CsvRecord for Transition {
    const HEADER: &'static [&'static str] = &[
        "sensor_id",
        "lane",
        "at",
        "from_label",
        "to_label",
        "from_level_of_service",
        "to_level_of_service",
        "event_id",
        "previous_event_id",
        "previous_observed_at",
    ];

    fn record(&self) -> Vec<String> {
        vec![
            self.sensor_id.to_string(),
            opt(self.lane),
            time(self.at),
            self.from_label.into_str().to_owned(),
            self.to_label.into_str().to_owned(),
            opt(self.from_level_of_service.map(|l| l.into_str())),
            opt(self.to_level_of_service.map(|l| l.into_str())),
            self.event_id.to_string(),
            self.previous_event_id.to_string(),
            time(self.previous_observed_at),
        ]
    }
}
