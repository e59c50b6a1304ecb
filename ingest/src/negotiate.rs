//! Content negotiation (RFC 9110 §12.5.1): which of the representations a resource offers the
//! request's `Accept` header prefers. No `Accept`, or `*/*`, gets JSON.

use actix_web::HttpRequest;
use actix_web::http::header::ACCEPT;

use crate::problem::{Kind, Problem};

/// A representation a read can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Json,
    Csv,
    GeoJson,
    EventStream,
}

impl Representation {
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv",
            Self::GeoJson => "application/geo+json",
            Self::EventStream => "text/event-stream",
        }
    }
}

/// The offered representation the request accepts with the highest quality, the earlier
/// offered one on a tie; `406 not-acceptable` naming the offers when it accepts none.
pub fn choose(
    request: &HttpRequest,
    offered: &[Representation],
) -> Result<Representation, Problem> {
    let header = request
        .headers()
        .get_all(ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    prefer(&header, offered).ok_or_else(|| {
        let offers: Vec<&str> = offered.iter().map(|r| r.media_type()).collect();
        Problem::new(
            Kind::NotAcceptable,
            format!(
                "this resource is served as {}; the Accept header asks for none of them",
                offers.join(", ")
            ),
        )
    })
}

fn prefer(accept: &str, offered: &[Representation]) -> Option<Representation> {
    let ranges: Vec<MediaRange> = accept.split(',').filter_map(MediaRange::parse).collect();
    if ranges.is_empty() {
        return offered.first().copied();
    }
    let mut best: Option<(Representation, f32)> = None;
    for &offer in offered {
        // The most specific range that matches decides the offer's quality.
        let quality = ranges
            .iter()
            .filter_map(|range| range.specificity(offer.media_type()).map(|s| (s, range.q)))
            .max_by_key(|(specificity, _)| *specificity)
            .map(|(_, q)| q)
            .unwrap_or(0.0);
        if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((offer, quality));
        }
    }
    best.map(|(offer, _)| offer)
}

struct MediaRange {
    kind: String,
    subtype: String,
    q: f32,
}

impl MediaRange {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let mut q = 1.0;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))?;
            }
        }
        Some(Self {
            kind: kind.trim().to_ascii_lowercase(),
            subtype: subtype.trim().to_ascii_lowercase(),
            q,
        })
    }

    /// How exactly the range names `media_type`: 2 exactly, 1 by `type/*`, 0 by `*/*`.
    fn specificity(&self, media_type: &str) -> Option<u8> {
        let (kind, subtype) = media_type.split_once('/')?;
        match (self.kind.as_str(), self.subtype.as_str()) {
            ("*", "*") => Some(0),
            (k, "*") if k == kind => Some(1),
            (k, s) if k == kind && s == subtype => Some(2),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Representation::{Csv, GeoJson, Json};
    use super::*;

    #[test]
    fn the_best_accepted_offer_wins_and_json_is_the_default() {
        let all = [Json, Csv, GeoJson];
        for (accept, expected) in [
            ("", Some(Json)),
            ("*/*", Some(Json)),
            ("text/csv", Some(Csv)),
            ("application/geo+json", Some(GeoJson)),
            ("text/*", Some(Csv)),
            ("application/json;q=0.5, text/csv", Some(Csv)),
            ("text/csv;q=0.2, */*;q=0.5", Some(Json)),
            ("TEXT/CSV", Some(Csv)),
            ("text/html", None),
            ("application/json;q=0", None),
            ("text/html,application/xhtml+xml,*/*;q=0.8", Some(Json)),
            ("*/*, text/csv;q=0", Some(Json)),
        ] {
            assert_eq!(prefer(accept, &all), expected, "{accept}");
        }
        assert_eq!(prefer("application/geo+json", &[Json, Csv]), None);
        assert_eq!(prefer("*/*;q=0.1, text/csv;q=0", &[Csv]), None);
    }
}
