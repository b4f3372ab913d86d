//! The triplet family at Miri's sizes (N = 6 rows of dim 3 and 9, pairs of dim 3 and 9):
//! every entry point on every available backend, so that Miri runs the tile engine's
//! kernels and the pair kernels the way these losses call them (blocks of anchors against
//! the rows before and after them, the accumulation kernel called directly), and checks
//! the results against the float64 oracle. It calls the allocating twins, so it needs
//! `alloc` (Miri runs it with the default features).
#![cfg(feature = "alloc")]
// Index loops read as the formulas they check.
#![allow(clippy::needless_range_loop)]

#[path = "common/triplet_oracle.rs"]
mod triplet_oracle;

#[path = "common/miri.rs"]
mod miri;
use miri::backends;

use contrastive::{
    BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Distance, TripletLoss,
};

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn close(what: &str, got: f32, want: f64, rtol: f64, scale: f64) {
    let tol = f64::from(f32::MIN_POSITIVE) + rtol * scale;
    assert!(
        (f64::from(got) - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}, tol {tol:e}"
    );
}

/// Deterministic rows with distinct distances (no ties, no kinks at the margins used).
fn rows(n: usize, d: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..n * d)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

#[test]
fn in_batch_triplets_agree_with_the_oracle_at_miri_sizes() {
    let classes = [0u32, 1, 0, 2, 1, 0];
    for d in [3, 9] {
        let x = rows(6, d);
        let rtol = (2.0 * d as f64 + 2.0 * 6.0 + 32.0) * U;
        for backend in backends() {
            for (normalize, smooth) in [(false, false), (true, true)] {
                let l = BatchAllTripletLoss::new(0.3)
                    .with_normalize(normalize)
                    .with_smooth(smooth)
                    .with_backend(backend);
                let (got, grad) = l.batch_with_grad_vec(&x, d, &classes).unwrap();
                let r = triplet_oracle::batch_all(&x, d, &classes, 0.3, smooth, normalize);
                assert!(smooth || r.kink_gap > 1e-3);
                let what = format!("{backend:?} all d={d} {normalize} {smooth}");
                close(&what, got, r.loss, rtol, r.scale);
                for k in 0..grad.len() {
                    close(&what, grad[k], r.grad[k], rtol, r.grad_scale[k]);
                }
            }
            for cosine in [false, true] {
                let mut l = BatchHardTripletLoss::new(0.7).with_backend(backend);
                if cosine {
                    l = l.with_distance(Distance::Cosine);
                }
                let (got, grad) = l.batch_with_grad_vec(&x, d, &classes).unwrap();
                let r = triplet_oracle::batch_hard(&x, d, &classes, 0.7, cosine);
                assert!(r.kink_gap > 1e-3);
                let what = format!("{backend:?} hard d={d} cosine={cosine}");
                close(&what, got, r.loss, rtol, r.scale);
                for k in 0..grad.len() {
                    close(&what, grad[k], r.grad[k], rtol, r.grad_scale[k]);
                }
            }
        }
    }
}

#[test]
fn explicit_triplets_and_cosine_pairs_agree_with_the_oracle_at_miri_sizes() {
    for d in [3, 9] {
        let x = rows(3, d);
        let (a, p, n) = (&x[..d], &x[d..2 * d], &x[2 * d..]);
        let rtol = (2.0 * d as f64 + 16.0) * U;
        for backend in backends() {
            for (swap, eps) in [(false, 0.0), (true, 1e-6)] {
                let l = TripletLoss::new(2.0)
                    .with_swap(swap)
                    .with_eps(eps)
                    .with_backend(backend);
                let (got, g) = l.batch_with_grad_vec(a, p, n, d).unwrap();
                let r = triplet_oracle::triplet(a, p, n, 2.0, swap, eps.into(), 1.0);
                assert!(r.violation.abs() > 1e-3);
                let what = format!("{backend:?} triplet d={d} swap={swap}");
                close(&what, got, r.loss, rtol, r.scale);
                for w in 0..3 {
                    for k in 0..d {
                        close(&what, g[w][k], r.grad[w][k], rtol, r.grad_scale[w][k]);
                    }
                }
            }
            for t in [1.0, -1.0] {
                let l = CosineEmbeddingLoss::new(-0.9).with_backend(backend);
                let (got, ga, gb) = l.batch_with_grad_vec(a, p, d, &[t]).unwrap();
                let r = triplet_oracle::cosine_embedding(a, p, t, -0.9, 1.0);
                let what = format!("{backend:?} cosine embedding d={d} t={t}");
                close(&what, got, r.loss, rtol, 1.9);
                for k in 0..d {
                    close(&what, ga[k], r.grad_a[k], rtol, r.grad_scale);
                    close(&what, gb[k], r.grad_b[k], rtol, r.grad_scale);
                }
            }
        }
    }
}

/// Batch-hard from 8 rows on takes the symmetric walk (each unordered pair once, both
/// anchors' hardest kept as the walk goes): N = 9 (tiles of 4 and an edge), at Miri's
/// sizes, against the oracle.
#[test]
fn batch_hard_walk_agrees_with_the_oracle_at_miri_sizes() {
    let mut checked = 0;
    for (n, d) in [(9, 3)] {
        let classes: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let x = rows(n, d);
        let rtol = (2.0 * d as f64 + 2.0 * n as f64 + 32.0) * U;
        for backend in backends() {
            for cosine in [false, true] {
                let mut l = BatchHardTripletLoss::new(0.9).with_backend(backend);
                if cosine {
                    l = l.with_distance(Distance::Cosine);
                }
                let (got, grad) = l.batch_with_grad_vec(&x, d, &classes).unwrap();
                let r = triplet_oracle::batch_hard(&x, d, &classes, 0.9, cosine);
                if r.kink_gap < 1e-3 {
                    continue;
                }
                checked += 1;
                let what = format!("{backend:?} hard N={n} d={d} cosine={cosine}");
                close(&what, got, r.loss, rtol, r.scale);
                for k in 0..grad.len() {
                    close(&what, grad[k], r.grad[k], rtol, r.grad_scale[k]);
                }
            }
        }
    }
    assert!(checked >= 2, "only {checked} cases away from a kink");
}

#[test]
fn batch_all_symmetric_path_agrees_with_the_oracle_at_miri_sizes() {
    // Ten rows: one block of eight anchors against the two rows after it (the
    // accumulation kernel), then a block of two; the counting kernel on both.
    let classes = [0u32, 1, 0, 2, 1, 0, 2, 1, 0, 3];
    let n = classes.len();
    for d in [3, 9] {
        let x = rows(n, d);
        let rtol = (2.0 * d as f64 + 2.0 * n as f64 + 32.0) * U;
        let margin = [0.3f32, 0.2, 0.45, 0.1, 0.6]
            .into_iter()
            .find(|&m| {
                triplet_oracle::batch_all(&x, d, &classes, f64::from(m), false, false).kink_gap
                    > 1e-3
            })
            .expect("a margin away from every hinge");
        let r = triplet_oracle::batch_all(&x, d, &classes, f64::from(margin), false, false);
        for backend in backends() {
            let l = BatchAllTripletLoss::new(margin).with_backend(backend);
            let mut scratch = vec![0.0; l.symmetric_scratch_len(n, d, 4)];
            let mut grad = vec![0.0; n * d];
            let got = l
                .batch_with_grad(&x, d, &classes, &mut grad, &mut scratch)
                .unwrap();
            let what = format!("{backend:?} symmetric d={d}");
            close(&what, got, r.loss, rtol, r.scale);
            for k in 0..grad.len() {
                close(&what, grad[k], r.grad[k], rtol, r.grad_scale[k]);
            }
        }
    }
}
