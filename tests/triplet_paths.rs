//! The in-batch triplet losses' fast paths against the f64 oracle on data full of exact
//! ties: rows on the axes of an integer grid, whose distances along an axis are exact
//! integers in f32, so that equal distances, pairs at distance 0 and triplets exactly at
//! the hinge (`v = 0` for an integer margin) are everywhere, and a correct implementation
//! decides each of them as the oracle does (ties to the lowest index; a triplet at the
//! hinge not counted).
//!
//! Batch-hard: the symmetric walk (N ≥ 8, also at magnitudes whose squares under- or
//! overflow) and the per-anchor rows (N < 8). Batch-all: the short sorted side counted
//! linearly (many small classes) and the long one by binary search (two classes, more
//! than 64 rows each side), both with positives sorted and with negatives sorted.

// Index loops read as the formulas they check.
#![allow(clippy::needless_range_loop)]

use crate::common;

use common::triplet_loss::check_every_backend;
use common::triplet_oracle;
use common::{Rng, U, assert_in_batch_close};
use contrastive::{Backend, BatchAllTripletLoss, BatchHardTripletLoss, Distance};

/// `n` rows of dim 3 on the integer points `(k, 0, 0)` and `(0, k', 0)` with small `k`
/// (many duplicates); every distance along one axis is an exact integer.
fn grid(rng: &mut Rng, n: usize, axes: bool) -> Vec<f32> {
    let mut x = vec![0.0; n * 3];
    for r in 0..n {
        let axis = if axes { rng.below(2) } else { 0 };
        x[r * 3 + axis] = rng.below(9) as f32;
    }
    x
}

#[test]
fn batch_hard_ties_go_to_the_lowest_index_on_both_paths() {
    let mut rng = Rng(0x7135);
    for n in [2, 5, 7, 8, 9, 16, 33, 70, 101] {
        let x = grid(&mut rng, n, false);
        let k = 1 + rng.below(n.div_ceil(3));
        let cls: Vec<u32> = (0..n).map(|_| rng.below(k) as u32).collect();
        for margin in [0.0f32, 1.0, 2.0, 3.5] {
            let r = triplet_oracle::batch_hard(&x, 3, &cls, f64::from(margin), false);
            let loss = BatchHardTripletLoss::new(margin);
            check_every_backend(&format!("N={n} m={margin}"), loss, &x, 3, &cls, &r);
        }
    }
}

#[test]
fn batch_hard_cosine_ties_on_duplicate_rows() {
    let mut rng = Rng(0x7136);
    for n in [6, 8, 12, 40] {
        // Rows (k, 1, 0): duplicates (distance exactly 0) and no zero row.
        let mut x = vec![0.0f32; n * 3];
        for r in 0..n {
            x[r * 3] = rng.below(4) as f32;
            x[r * 3 + 1] = 1.0;
        }
        let cls: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        for margin in [0.0f32, 0.1, 0.5] {
            let r = triplet_oracle::batch_hard(&x, 3, &cls, f64::from(margin), true);
            let loss = BatchHardTripletLoss::new(margin).with_distance(Distance::Cosine);
            check_every_backend(&format!("N={n} m={margin}"), loss, &x, 3, &cls, &r);
        }
    }
}

#[test]
fn batch_all_hinge_ties_on_the_linear_and_binary_search_paths() {
    let mut rng = Rng(0x7137);
    // (rows, classes): many small classes (positives sorted, counted linearly); two
    // classes of about 75 (a sorted side longer than 64: binary search); one class of 3
    // among 140 (negatives longer, positives sorted) and 137 of one class against 3
    // (negatives sorted).
    let cases: [(usize, &dyn Fn(usize) -> u32); 4] = [
        (120, &|r| (r % 30) as u32),
        (150, &|r| (r % 2) as u32),
        (143, &|r| u32::from(r < 3)),
        (140, &|r| u32::from(r % 47 == 5)),
    ];
    for (n, class_of) in cases {
        let x = grid(&mut rng, n, true);
        let cls: Vec<u32> = (0..n).map(class_of).collect();
        for margin in [0.0f32, 1.0, 2.0] {
            let r = triplet_oracle::batch_all(&x, 3, &cls, f64::from(margin), false, false);
            let loss = BatchAllTripletLoss::new(margin);
            check_every_backend(&format!("N={n} m={margin}"), loss, &x, 3, &cls, &r);
        }
    }
}

/// Batch-hard's walk at magnitudes whose squared distances underflow (rows near 2⁻⁹⁰) or
/// overflow (near 2⁶⁰) f32: scaling the rows and the margin by a power of two scales the
/// loss by it and leaves the gradient (of a distance, a direction) as it was.
#[test]
fn batch_hard_walk_scales_exactly_at_extreme_magnitudes() {
    let mut rng = Rng(0x7138);
    let (n, d) = (23, 5);
    let x = rng.vec(n * d);
    let cls: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
    for cosine in [false, true] {
        let margin = 0.3f32;
        let loss = |m: f32| {
            let l = BatchHardTripletLoss::new(m);
            if cosine {
                l.with_distance(Distance::Cosine)
            } else {
                l
            }
        };
        let mut scratch = vec![0.0; loss(margin).scratch_len(n, d)];
        for backend in Backend::available() {
            let mut want_grad = vec![0.0; n * d];
            let want = loss(margin)
                .with_backend(backend)
                .batch_with_grad(&x, d, &cls, &mut want_grad, &mut scratch)
                .unwrap();
            for k in [-90i32, 60] {
                let s = 2f32.powi(k);
                let xs: Vec<f32> = x.iter().map(|v| v * s).collect();
                // The cosine distance does not scale with the rows: neither does its margin.
                let (m, ls) = if cosine {
                    (margin, 1.0)
                } else {
                    (margin * s, s)
                };
                let mut grad = vec![f32::NAN; n * d];
                let got = loss(m)
                    .with_backend(backend)
                    .batch_with_grad(&xs, d, &cls, &mut grad, &mut scratch)
                    .unwrap();
                let what = format!("{backend:?} cosine={cosine} 2^{k}");
                let tol = 64.0 * U * f64::from(want.abs().max(margin));
                assert!(
                    (f64::from(got / ls) - f64::from(want)).abs() <= tol,
                    "{what}: loss {got:e} / {ls:e} vs {want:e}"
                );
                for (i, (&g, &w)) in grad.iter().zip(&want_grad).enumerate() {
                    // A cosine gradient scales as 1/‖x‖.
                    let g = if cosine { g * s } else { g };
                    assert!(
                        (f64::from(g) - f64::from(w)).abs()
                            <= 64.0 * U * (1.0 + f64::from(w.abs())),
                        "{what}: grad[{i}] {g:e} vs {w:e}"
                    );
                }
            }
        }
    }
}

/// A positive pair whose normalised rows round to antipodal (its cosine distance to the
/// clamp of 2) while the rows are not: the tiny row's gradient divides by its norm
/// (1.2e-7), so the pair's small tangent term is 3e-4 of the result and must not be
/// dropped. Found by fuzzing; on both batch-hard paths (the walk at N ≥ 8).
#[test]
fn batch_hard_cosine_keeps_the_gradient_of_a_pair_rounded_to_antipodal() {
    #[rustfmt::skip]
    let base = [
        7.275958e-12f32, 1.1920929e-7, -8.845281e-12,
        -1.0, -1.0, -2.0,
        -2.9514613e20, -7.576192e29, -59.999023,
        -4.0, -4.0, 3.0,
    ];
    for copies in [1, 3] {
        // Three copies of the batch, each a class set of its own, for the walk.
        let x: Vec<f32> = (0..copies).flat_map(|_| base).collect();
        let classes: Vec<u32> = (0..copies as u32)
            .flat_map(|c| [1, 2, 1, 0].map(|k| k + 4 * c))
            .collect();
        let (n, d) = (4 * copies, 3);
        let r = triplet_oracle::batch_hard(&x, d, &classes, 1.0, true);
        for backend in Backend::available() {
            let loss = BatchHardTripletLoss::new(1.0)
                .with_distance(Distance::Cosine)
                .with_backend(backend);
            let mut scratch = vec![0.0; loss.scratch_len(n, d)];
            let mut grad = vec![0.0; n * d];
            let got = loss
                .batch_with_grad(&x, d, &classes, &mut grad, &mut scratch)
                .unwrap();
            assert_in_batch_close(
                &format!("N={n} on {}", backend.name()),
                got,
                &grad,
                &r,
                n,
                d,
            );
        }
    }
}
