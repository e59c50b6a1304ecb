//! The confidence model: start at 1, subtract each named drop, clamp to [0, 1].
//!
//! Every drop is written into the reasons next to the finding that caused it, so a reader can
//! add them up by hand.

use crate::classification::Label;

use super::config::penalty;

/// Reasons and confidence drops gathered while classifying one reading.
#[derive(Debug, Default)]
pub(crate) struct Assessment {
    reasons: Vec<String>,
    drops: f64,
}

impl Assessment {
    /// A finding that does not change the confidence.
    pub(crate) fn note(&mut self, reason: String) {
        self.reasons.push(reason);
    }

    /// A finding that lowers the confidence by the configured `amount` (clamped to [0, 1]).
    pub(crate) fn drop(&mut self, amount: f64, reason: String) {
        let amount = penalty(amount);
        if amount > 0.0 {
            self.drops += amount;
            self.reasons
                .push(format!("{reason} (confidence −{amount:.2})"));
        } else {
            self.reasons.push(reason);
        }
    }

    /// 0 for `unknown` (the call carries no information); else 1 minus the drops, in [0, 1],
    /// rounded to four decimals.
    pub(crate) fn confidence(&self, label: Label) -> f64 {
        if label == Label::Unknown {
            return 0.0;
        }
        let confidence = 1.0 - self.drops;
        if confidence.is_finite() {
            // Four decimals: 0.45, not 0.44999999999999996 from adding 0.30 + 0.20 + 0.05.
            (confidence.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
        } else {
            0.0
        }
    }

    pub(crate) fn into_reasons(self) -> Vec<String> {
        self.reasons
    }
}
