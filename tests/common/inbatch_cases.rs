//! The in-batch tests' shared cases: the loss configurations that between them reach every
//! option, the tolerance, the input generator. Tests only (the fuzz target includes the
//! oracle by path, without the rest of `common`).

use super::inbatch_oracle::{Dist, Loss, Red};

/// Configurations that between them reach every option: Hadsell (squared hinge, plain
/// Euclidean, mean), PML (linear, normalised, AvgNonZero), cosine with a positive margin,
/// squared Euclidean with a sum.
pub fn configs(dim: usize) -> [Loss; 4] {
    // Rows of uniform [-1, 1) components are about √(2d/3) apart.
    let spread = (2.0 * dim as f64 / 3.0).sqrt();
    let hadsell = Loss {
        dist: Dist::Euclidean,
        normalize: false,
        m_pos: 0.0,
        m_neg: spread,
        power: 2,
        w_pos: 0.5,
        w_neg: 0.5,
        red: Red::Mean,
    };
    [
        hadsell,
        // m₊ > 0: with d = 1 every pair of normalised rows is at 0 or 2 exactly, and a
        // kink at 0 would make the AvgNonZero count depend on the last bit of a norm.
        Loss {
            normalize: true,
            m_pos: 0.05,
            m_neg: 1.4,
            power: 1,
            w_pos: 1.0,
            w_neg: 1.0,
            red: Red::AvgNonZero,
            ..hadsell
        },
        Loss {
            dist: Dist::Cosine,
            m_pos: 0.1,
            m_neg: 0.9,
            power: 1,
            w_pos: 2.0,
            red: Red::Sum,
            ..hadsell
        },
        Loss {
            dist: Dist::Squared,
            m_pos: 0.25 * spread * spread,
            m_neg: spread * spread,
            w_pos: 1.0,
            w_neg: 0.25,
            red: Red::Sum,
            ..hadsell
        },
    ]
}

/// The tolerance of the in-batch results relative to their scales: four times a pair's.
pub fn rtol(dim: usize) -> f64 {
    4.0 * super::pair_rtol(dim)
}

/// `n` components uniform in [-1, 1).
pub fn data(rng: &mut super::Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| 2.0 * rng.unit() - 1.0).collect()
}
