//! The congestion label: LOS first, speed evidence as a floor, contradictions called out.

use crate::classification::{Label, LevelOfService};

use super::confidence::Assessment;
use super::config::RulesConfig;
use super::density::{Density, Source};
use super::los::label_of;
use super::speed::SpeedEvidence;

/// Decides the label from the LOS (with the density it came from) and the speed evidence.
pub(crate) fn decide(
    los: Option<(LevelOfService, Density)>,
    speed: Option<SpeedEvidence>,
    config: &RulesConfig,
    notes: &mut Assessment,
) -> Label {
    match (los, speed) {
        (None, None) => {
            notes.note("label unknown: the reading supports no call".to_owned());
            Label::Unknown
        }
        (None, Some(speed)) => {
            notes.note(format!("{}: {}, from speed alone", speed.test, speed.floor));
            speed.floor
        }
        (Some((los, _)), None) => label_of(los),
        (Some((los, density)), Some(speed)) => {
            let from_los = label_of(los);
            let label = if speed.floor.severity() > from_los.severity() {
                notes.note(format!(
                    "{}: at least {}, overrides {from_los} from LOS {los}",
                    speed.test, speed.floor
                ));
                speed.floor
            } else {
                notes.note(format!(
                    "{}: no override of {from_los} from LOS {los}",
                    speed.test
                ));
                from_los
            };
            let source = match density.source {
                Source::FlowOverSpeed => "flow/speed",
                Source::Occupancy => "occupancy",
                Source::EmptyRoad => "an empty road",
            };
            if speed.says_free && los == LevelOfService::F {
                notes.drop(
                    config.penalty_contradiction,
                    format!("contradiction: free-flow speed but LOS F from {source}"),
                );
            } else if speed.says_stationary && matches!(los, LevelOfService::A | LevelOfService::B)
            {
                notes.drop(
                    config.penalty_contradiction,
                    format!("contradiction: stationary speed but LOS {los} from {source}"),
                );
            }
            label
        }
    }
}
