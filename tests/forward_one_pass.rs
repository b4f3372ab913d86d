//! The batch forward (`ContrastiveLoss::batch`, Euclidean) of every backend against the
//! float64 oracle of `tests/common/` (plain loops), over the row lengths of each one-pass
//! forward kernel (tiny rows, rows of up to one and two vectors, long rows), at row counts
//! that leave a short group of rows, a short chunk of 64 and a short block, at misaligned
//! starts of `a` and `b`, at ordinary, tiny (1e-19: subnormal squares; 1e-30: squares that
//! underflow) and huge (1e19: squares that overflow) magnitudes, with rows at distance 0
//! (the careful path) and NaN. The forward's bits are also those of the loss of
//! `batch_with_grad` (the same blocks, summed in the same order).
//!
//! Bound: the sum of the losses in f64 of f32 values, each loss within
//! `(2·dim + 16)·u` of its scale (`w⁺·y·s + w⁻·(1 − y)·(m + D)²`), plus `2⁻¹⁴⁹` a row for
//! subnormal results.

use crate::common;

use common::trust_oracle::TINY;
use common::{Rng, U};
use contrastive::{Backend, ContrastiveLoss, Reduction};

/// `(Σ losses, Σ scales)` in f64, with weights 0.7 and 1.3.
fn oracle(a: &[f32], b: &[f32], dim: usize, labels: &[f32], margin: f32) -> (f64, f64) {
    let (w_pos, w_neg, m) = (0.7f64, 1.3f64, f64::from(margin));
    let (mut total, mut scale) = (0.0, 0.0);
    for (r, &y) in labels.iter().enumerate() {
        let rows = r * dim..(r + 1) * dim;
        let s = common::squared_euclidean(&a[rows.clone()], &b[rows]);
        let (y, d) = (f64::from(y), s.sqrt());
        let h = (m - d).max(0.0);
        total += w_pos * y * s + w_neg * (1.0 - y) * h * h;
        scale += w_pos * y * s + w_neg * (1.0 - y) * (m + d).powi(2);
    }
    (total, scale)
}

fn dims() -> impl Iterator<Item = usize> {
    (1..=17).chain([24, 31, 32, 33, 48, 64, 100, 128, 300, 768])
}

#[test]
fn euclidean_forward_matches_f64_at_every_row_length_count_and_offset() {
    let mut rng = Rng(31);
    let backends: Vec<Backend> = Backend::available().collect();
    for dim in dims() {
        let counts = [1, 7, 15, 17, 37, 63, 64, 65, 130, 327, 700, 1100];
        for rows in counts.into_iter().filter(|&r| r * dim <= 6_000 || r == 1) {
            let n = rows * dim;
            let buffer = |rng: &mut Rng| (0..n + 8).map(|_| rng.unit()).collect::<Vec<f32>>();
            let (x, mut z) = (buffer(&mut rng), buffer(&mut rng));
            // Rows at distance 0 every 600 rows, in the second pass only: a run of blocks
            // with one needs care, and its blocks without one still take the one pass.
            let labels: Vec<f32> = (0..rows).map(|r| [1.0, 0.0, 0.25, 0.0][r % 4]).collect();
            for (oa, ob) in [(0, 0), (3, 6)] {
                for careful in [false, true] {
                    if careful {
                        for r in (3..rows).step_by(600) {
                            let row = r * dim..(r + 1) * dim;
                            let from: Vec<f32> = x[oa + row.start..oa + row.end].to_vec();
                            z[ob + row.start..ob + row.end].copy_from_slice(&from);
                        }
                    }
                    // 1e-30 at the first offsets only (it takes the careful path throughout).
                    let scales: &[f32] = if oa == 0 {
                        &[1.0, 1e-19, 1e-30, 1e19]
                    } else {
                        &[1.0, 1e-19, 1e19]
                    };
                    for &scale in scales {
                        let a: Vec<f32> = x[oa..oa + n].iter().map(|&v| v * scale).collect();
                        let b: Vec<f32> = z[ob..ob + n].iter().map(|&v| v * scale).collect();
                        // At 1e19 every dissimilar row is far beyond a margin of 1 (loss 0)
                        // and the similar rows' losses overflow f32: only dissimilar ones.
                        let (margin, labels) = if scale > 1.0 {
                            (1.0, vec![0.0; rows])
                        } else {
                            ((2.0 * dim as f32 / 3.0).sqrt() * scale, labels.clone())
                        };
                        // Misaligned starts: slices of buffers up to 3 floats longer.
                        let (ba, bb) = (
                            [vec![0.0; oa % 4], a].concat(),
                            [vec![0.0; ob % 4], b].concat(),
                        );
                        let (a, b) = (&ba[oa % 4..], &bb[ob % 4..]);
                        let (want, total_scale) = oracle(a, b, dim, &labels, margin);
                        let tol =
                            (2.0 * dim as f64 + 16.0) * U * total_scale + TINY * rows as f64 * 4.0;
                        for &backend in &backends {
                            let loss = ContrastiveLoss::new(margin)
                                .with_weights(0.7, 1.3)
                                .with_reduction(Reduction::Sum)
                                .with_backend(backend);
                            let what = format!(
                                "{backend:?} dim={dim} rows={rows} offsets ({oa}, {ob}) \
                                 careful {careful} scale {scale:e}"
                            );
                            let got = loss.batch(a, b, dim, &labels).unwrap();
                            let diff = (f64::from(got) - want).abs();
                            assert!(diff <= tol, "{what}: got {got:e}, want {want:e}");
                            if scale == 1.0 {
                                let (mut ga, mut gb) = (vec![0.0; n], vec![0.0; n]);
                                let with_grad = loss
                                    .batch_with_grad(a, b, dim, &labels, &mut ga, &mut gb)
                                    .unwrap();
                                assert_eq!(got.to_bits(), with_grad.to_bits(), "{what}: bits");
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A NaN anywhere (a component of a row in a full chunk, in the last short group or
/// block) makes the forward NaN on every backend; an invalid label there is an error
/// naming it.
#[test]
fn nan_and_invalid_labels_anywhere_in_long_rows() {
    let mut rng = Rng(32);
    for dim in [5, 9, 16, 17, 33, 128] {
        let rows = 200;
        let (a, b) = (rng.vec(rows * dim), rng.vec(rows * dim));
        let labels: Vec<f32> = (0..rows).map(|r| (r % 2) as f32).collect();
        for backend in Backend::available() {
            let loss = ContrastiveLoss::new(1.0).with_backend(backend);
            for row in [0, 63, 64, 130, 199] {
                let what = format!("{backend:?} dim={dim} row {row}");
                let mut nan = a.clone();
                nan[row * dim + dim / 2] = f32::NAN;
                let got = loss.batch(&nan, &b, dim, &labels).unwrap();
                assert!(got.is_nan(), "{what}: {got}");
                for bad in [1.5f32, f32::NAN, -0.5] {
                    let mut ys = labels.clone();
                    ys[row] = bad;
                    match loss.batch(&a, &b, dim, &ys) {
                        Err(contrastive::Error::InvalidLabel { index, .. }) => {
                            assert_eq!(index, row, "{what} label {bad}")
                        }
                        other => panic!("{what} label {bad}: {other:?}"),
                    }
                }
            }
        }
    }
}
