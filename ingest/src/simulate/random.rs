//! Seeded draws. Every random value is a hash of the seed and the draw's coordinates (what it
//! is for, which sensor, lane and minute), not the next value of one stream: a reading comes
//! out the same whatever else was generated before it or in which order. SplitMix64 is ours
//! rather than a library's generator, so a dependency upgrade cannot change the readings a
//! seed makes.

use std::f64::consts::TAU;

/// What a draw is for: keeps the draws of different purposes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    Network = 1,
    Demand,
    Count,
    Speed,
    Occupancy,
    Incident,
    Fault,
    Refusal,
    Resend,
}

/// One SplitMix64 step: a well-mixed 64-bit value from any input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The draws of one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draws {
    seed: u64,
}

impl Draws {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// A 64-bit value for `purpose` at `at`.
    pub fn bits(self, purpose: Purpose, at: &[u64]) -> u64 {
        at.iter()
            .fold(mix(self.seed ^ mix(purpose as u64)), |h, &x| mix(h ^ x))
    }

    /// Uniform in [0, 1).
    pub fn unit(self, purpose: Purpose, at: &[u64]) -> f64 {
        // The top 53 bits: every value exactly representable.
        (self.bits(purpose, at) >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn between(self, purpose: Purpose, at: &[u64], low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit(purpose, at)
    }

    /// Uniform among 0..n (0 when n is 0).
    pub fn index(self, purpose: Purpose, at: &[u64], n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.bits(purpose, at) % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(self, purpose: Purpose, at: &[u64], p: f64) -> bool {
        self.unit(purpose, at) < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(self, purpose: Purpose, at: &[u64]) -> f64 {
        let u1 = 1.0 - self.unit(purpose, at); // (0, 1]: ln stays finite
        let mut second = at.to_vec();
        second.push(u64::MAX);
        let u2 = self.unit(purpose, &second);
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    /// Poisson with mean `lambda`: vehicles arriving at random in an interval. By inversion
    /// for small means, by the normal approximation above 30.
    pub fn poisson(self, purpose: Purpose, at: &[u64], lambda: f64) -> u32 {
        if lambda <= 0.0 || !lambda.is_finite() {
            return 0;
        }
        if lambda > 30.0 {
            let z = self.normal(purpose, at);
            return (lambda + lambda.sqrt() * z).round().max(0.0) as u32;
        }
        let u = self.unit(purpose, at);
        let (mut k, mut p) = (0_u32, (-lambda).exp());
        let mut cumulative = p;
        while u > cumulative && k < 200 {
            k += 1;
            p *= lambda / f64::from(k);
            cumulative += p;
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::{Draws, Purpose};

    #[test]
    fn a_draw_depends_on_seed_purpose_and_coordinates_only() {
        let (a, b) = (Draws::new(7), Draws::new(8));
        assert_eq!(
            a.bits(Purpose::Count, &[1, 2]),
            a.bits(Purpose::Count, &[1, 2])
        );
        assert_ne!(
            a.bits(Purpose::Count, &[1, 2]),
            b.bits(Purpose::Count, &[1, 2])
        );
        assert_ne!(
            a.bits(Purpose::Count, &[1, 2]),
            a.bits(Purpose::Speed, &[1, 2])
        );
        assert_ne!(
            a.bits(Purpose::Count, &[1, 2]),
            a.bits(Purpose::Count, &[2, 1])
        );
    }

    #[test]
    fn draws_have_the_moments_they_claim() {
        let draws = Draws::new(3);
        let n = 20_000_u64;
        let mean = |f: &dyn Fn(u64) -> f64| (0..n).map(f).sum::<f64>() / n as f64;
        let unit = mean(&|i| draws.unit(Purpose::Demand, &[i]));
        assert!((unit - 0.5).abs() < 0.01, "{unit}");
        let normal = mean(&|i| draws.normal(Purpose::Speed, &[i]));
        let square = mean(&|i| draws.normal(Purpose::Speed, &[i]).powi(2));
        assert!(
            normal.abs() < 0.03 && (square - 1.0).abs() < 0.05,
            "{normal} {square}"
        );
        for lambda in [0.5, 4.0, 25.0, 40.0] {
            let got = mean(&|i| f64::from(draws.poisson(Purpose::Count, &[i], lambda)));
            assert!(
                (got - lambda).abs() < 0.05 * lambda + 0.05,
                "{lambda}: {got}"
            );
        }
    }
}
