//! Every backend available here against the float64 oracle of `tests/common/` (it never
//! calls the crate's kernels), over every length 0..=130 at start offsets 0..8, so
//! that every accumulator, single-vector, masked-tail and alignment path of every backend
//! runs; row batches over dims 1..=17 and larger cover the tiny-row layouts.
//!
//! Bounds (u = 2⁻²⁴, n the vector length, S the sum of the absolute terms):
//! - sums (`squared_euclidean`, `dot`, each row of `squared_euclidean_rows`):
//!   `|got − ref| ≤ (n + 4)·u·S + 2⁻¹⁴⁹·n`;
//! - `cosine_similarity`: `(n + 4)·u·(S / (‖a‖‖b‖) + |cos|) + 8u`;
//! - gradients: per pair, `(2n + 16)·u` times the pair's scale (the largest component of
//!   the sum of absolute terms of the gradient formula), as the crate documents.

use crate::common;

// `TINY` (2⁻¹⁴⁹) is the absolute slack: subnormal products may each lose up to that.
use common::trust_oracle::TINY;
use common::{Rng, U, dot as dot_reference};
use contrastive::{Backend, ContrastiveLoss, Distance, Reduction};

const MAX_LEN: usize = 130;
const OFFSETS: usize = 8;

fn backends() -> Vec<Backend> {
    let all: Vec<Backend> = Backend::available().collect();
    assert!(all.contains(&Backend::Scalar) && all.contains(&Backend::Portable));
    all
}

/// `len + OFFSETS` values, so that `[offset..offset + len]` exists for every offset.
fn buffer(rng: &mut Rng, len: usize, wide: bool) -> Vec<f32> {
    (0..len + OFFSETS)
        .map(|_| if wide { rng.wide() } else { rng.unit() })
        .collect()
}

#[track_caller]
fn assert_within(what: &str, got: f32, want: f64, tol: f64) {
    let got = f64::from(got);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}, |diff| {:e} > tol {tol:e}",
        (got - want).abs()
    );
}

/// One gradient component of each side against its f64 value (within `tol`) and against
/// the scalar backend's (within `2·tol`).
#[track_caller]
fn assert_grads(what: &str, got: [f32; 2], want: [f64; 2], scalar: [f32; 2], tol: f64) {
    assert_within(&format!("{what} grad_a"), got[0], want[0], tol);
    assert_within(&format!("{what} grad_b"), got[1], want[1], tol);
    let scalar = scalar.map(f64::from);
    assert_within(&format!("{what} vs scalar"), got[0], scalar[0], 2.0 * tol);
    assert_within(&format!("{what} vs scalar b"), got[1], scalar[1], 2.0 * tol);
}

/// `(Σ (a − b)², Σ |(a − b)²|)` in f64, from the f32 inputs.
fn squared_reference(a: &[f32], b: &[f32]) -> (f64, f64) {
    let s = common::squared_euclidean(a, b);
    (s, s)
}

fn sum_bound(n: usize, scale: f64) -> f64 {
    (n as f64 + 4.0) * U * scale + TINY * n as f64
}

/// With `std` the x86 backends follow the CPU (on the AMD Zen 4 this crate is developed on,
/// both run and AVX-512 is the default); without it, the build's target features.
#[test]
fn x86_backends_are_detected() {
    #[cfg(target_arch = "x86_64")]
    {
        let (avx2, avx512) = if cfg!(feature = "std") {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            (avx2, avx2 && std::is_x86_feature_detected!("avx512f"))
        } else {
            let avx2 = cfg!(all(target_feature = "avx2", target_feature = "fma"));
            (avx2, avx2 && cfg!(target_feature = "avx512f"))
        };
        assert_eq!(Backend::Avx2.is_available(), avx2);
        assert_eq!(Backend::Avx512.is_available(), avx512);
        let want = if avx512 {
            Backend::Avx512
        } else if avx2 {
            Backend::Avx2
        } else {
            Backend::Portable
        };
        assert_eq!(Backend::best(), want);
    }
}

/// A sum kernel on every backend, every length 0..=MAX_LEN and every start offset of `a`
/// (`b` starting at `b_offset(offset)`), within the sum bound of `reference`.
/// `wide(n)` says which side takes values of a wide range.
fn check_sum_kernel(
    name: &str,
    rng: &mut Rng,
    wide: fn(usize) -> [bool; 2],
    b_offset: fn(usize) -> usize,
    kernel: fn(Backend, &[f32], &[f32]) -> f32,
    reference: fn(&[f32], &[f32]) -> (f64, f64),
) {
    for backend in backends() {
        for n in 0..=MAX_LEN {
            let [wide_a, wide_b] = wide(n);
            let (a, b) = (buffer(rng, n, wide_a), buffer(rng, n, wide_b));
            for (oa, ob) in (0..OFFSETS).map(|o| (o, b_offset(o))) {
                let (a, b) = (&a[oa..oa + n], &b[ob..ob + n]);
                let (want, scale) = reference(a, b);
                let got = kernel(backend, a, b);
                let what = format!("{backend:?} {name} n={n} offsets=({oa},{ob})");
                assert_within(&what, got, want, sum_bound(n, scale));
            }
        }
    }
}

#[test]
fn squared_euclidean_every_length_and_offset() {
    check_sum_kernel(
        "squared_euclidean",
        &mut Rng(1),
        |n| [n % 2 == 1; 2],
        |o| (o * 5 + 3) % OFFSETS,
        |backend, a, b| backend.squared_euclidean(a, b).unwrap(),
        squared_reference,
    );
}

#[test]
fn dot_every_length_and_offset() {
    check_sum_kernel(
        "dot",
        &mut Rng(2),
        |n| [n % 3 == 0, false],
        |o| OFFSETS - 1 - o,
        |backend, a, b| backend.dot(a, b).unwrap(),
        dot_reference,
    );
}

#[test]
fn cosine_similarity_every_length_and_offset() {
    let mut rng = Rng(3);
    for backend in backends() {
        for n in 0..=MAX_LEN {
            let (a, b) = (buffer(&mut rng, n, n % 2 == 0), buffer(&mut rng, n, false));
            for offset in 0..OFFSETS {
                let (a, b) = (&a[offset..offset + n], &b[offset..offset + n]);
                let (ab, abs_ab) = dot_reference(a, b);
                let (aa, _) = dot_reference(a, a);
                let (bb, _) = dot_reference(b, b);
                let norms = aa.sqrt() * bb.sqrt();
                let got = backend.cosine_similarity(a, b).unwrap();
                let what = format!("{backend:?} cosine n={n} offset={offset}");
                if norms == 0.0 {
                    assert_eq!(got, 0.0, "{what}");
                    continue;
                }
                let want = (ab / norms).clamp(-1.0, 1.0);
                let tol = (n as f64 + 4.0) * U * (abs_ab / norms + want.abs()) + 8.0 * U;
                assert_within(&what, got, want, tol);
            }
        }
    }
}

/// Row counts that cover empty batches, partial and whole groups of 8 and 16 rows, and
/// several groups.
const ROW_COUNTS: [usize; 12] = [0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 37];

fn row_dims() -> impl Iterator<Item = usize> {
    (1..=17).chain([24, 31, 32, 33, 64, 100])
}

#[test]
fn squared_euclidean_rows_every_dim() {
    let mut rng = Rng(4);
    for backend in backends() {
        for dim in row_dims() {
            for rows in ROW_COUNTS {
                let n = rows * dim;
                let (mut a, b) = (
                    buffer(&mut rng, n, dim % 2 == 1),
                    buffer(&mut rng, n, false),
                );
                // A row of equal vectors (distance exactly 0) when there are rows at all.
                if rows > 2 {
                    a[dim..2 * dim].copy_from_slice(&b[dim..2 * dim]);
                }
                for offset in [0, 1, 3, 7] {
                    let (a, b) = (&a[offset..offset + n], &b[offset..offset + n]);
                    // A sentinel past the last row must stay untouched.
                    let mut out = vec![f32::NAN; rows + 1];
                    out[rows] = -1.0;
                    backend
                        .squared_euclidean_rows(a, b, dim, &mut out[..rows])
                        .unwrap();
                    assert_eq!(out[rows], -1.0, "{backend:?} wrote past the rows");
                    let pairs = a.chunks_exact(dim).zip(b.chunks_exact(dim));
                    for (r, (ra, rb)) in pairs.enumerate() {
                        let (want, scale) = squared_reference(ra, rb);
                        let what =
                            format!("{backend:?} rows dim={dim} rows={rows} r={r} off={offset}");
                        assert_within(&what, out[r], want, sum_bound(dim, scale));
                    }
                }
            }
        }
    }
}

/// A row's distance, loss and gradient are the same bits wherever it sits in a batch: in
/// a full group of rows or among the leftover ones, in a block of its own or not, with
/// its batch starting on a cache line or not. Each backend is checked against itself
/// (backends may differ in the last bit; the tests above bound each against f64).
#[test]
fn a_row_gives_the_same_bits_wherever_it_sits_in_the_batch() {
    let mut rng = Rng(5);
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for backend in backends() {
        for dim in row_dims().chain([128, 300]) {
            let rows = 70;
            let batch = Batch::new(&mut rng, rows, dim, 0);
            let loss = euclidean_loss(dim)
                .with_reduction(Reduction::Sum)
                .with_backend(backend);
            let mut whole = vec![0.0; rows];
            let (a, b, ys) = (&batch.a[..], &batch.b[..], &batch.labels[..]);
            loss.batch_per_pair(a, b, dim, ys, &mut whole).unwrap();
            let (_, ga, gb) = batch.with_grad(loss);
            let mut distances = vec![0.0; rows];
            backend
                .squared_euclidean_rows(a, b, dim, &mut distances)
                .unwrap();
            for first in (1..=17).chain([31, 33, 64, 69]) {
                let what = format!("{backend:?} dim={dim} rows {first}..");
                let (a, b, ys) = (&a[first * dim..], &b[first * dim..], &ys[first..]);
                let mut part = vec![0.0; rows - first];
                backend
                    .squared_euclidean_rows(a, b, dim, &mut part)
                    .unwrap();
                assert_eq!(bits(&part), bits(&distances[first..]), "{what}: distances");
                loss.batch_per_pair(a, b, dim, ys, &mut part).unwrap();
                assert_eq!(bits(&part), bits(&whole[first..]), "{what}: losses");
                let (mut pa, mut pb) = (vec![0.0; a.len()], vec![0.0; a.len()]);
                loss.batch_with_grad(a, b, dim, ys, &mut pa, &mut pb)
                    .unwrap();
                assert_eq!(bits(&pa), bits(&ga[first * dim..]), "{what}: grad a");
                assert_eq!(bits(&pb), bits(&gb[first * dim..]), "{what}: grad b");
            }
        }
    }
}

/// A block takes the backend's one-pass kernel where it has one (in cache, rows of up to
/// 8 on AVX-512 and of up to 4 on AVX2 in whole blocks, and rows of 48 or more), and the
/// block path where a row in it needs care, here one at distance 0: every other row's
/// gradients have the same bits either way. And the reduced loss of the forward with
/// gradient is that of the forward (which has a one-pass kernel of its own for tiny rows,
/// and the block path otherwise; in cache, its blocks are the same).
#[test]
fn one_pass_blocks_give_the_bits_of_the_block_path() {
    let mut rng = Rng(7);
    for backend in backends() {
        for dim in (1..=9).chain([16, 17, 24, 47, 48, 128, 300]) {
            let rows = 327;
            // Rows at distance 0 every 10 rows: every block takes the block path.
            let careful = Batch::new(&mut rng, rows, dim, 0);
            let mut apart = Batch {
                a: careful.a.clone(),
                b: careful.b.clone(),
                labels: careful.labels.clone(),
                dim,
            };
            apart.move_apart_equal_rows();
            // Weights that are not powers of two, so that a product's order shows.
            let loss = euclidean_loss(dim)
                .with_weights(0.7, 1.3)
                .with_reduction(Reduction::Sum)
                .with_backend(backend);
            let what = format!("{backend:?} dim={dim}");
            for batch in [&careful, &apart] {
                let (l, _, _) = batch.with_grad(loss);
                let forward = loss.batch(&batch.a, &batch.b, dim, &batch.labels).unwrap();
                assert_eq!(l.to_bits(), forward.to_bits(), "{what}: loss");
            }
            let ((_, ca, cb), (_, aa, ab)) = (careful.with_grad(loss), apart.with_grad(loss));
            let rows_at = |r: usize| r * dim..(r + 1) * dim;
            for r in (0..rows).filter(|&r| careful.a[rows_at(r)] != careful.b[rows_at(r)]) {
                let bits = |x: &[f32]| {
                    x[rows_at(r)]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&aa), bits(&ca), "{what} row {r}: grad a");
                assert_eq!(bits(&ab), bits(&cb), "{what} row {r}: grad b");
            }
        }
    }
}

/// One labelled batch: rows of `dim`, labels mixing similar, dissimilar (some beyond the
/// margin, some at distance 0) and soft.
struct Batch {
    a: Vec<f32>,
    b: Vec<f32>,
    labels: Vec<f32>,
    dim: usize,
}

impl Batch {
    fn new(rng: &mut Rng, rows: usize, dim: usize, offset: usize) -> Batch {
        let n = rows * dim;
        let a = buffer(rng, n, false)[offset..offset + n].to_vec();
        let mut b = buffer(rng, n, false)[offset..offset + n].to_vec();
        let labels: Vec<f32> = (0..rows)
            .map(|r| match r % 5 {
                0 | 3 => 1.0,
                1 | 4 => 0.0,
                _ => 0.25,
            })
            .collect();
        // Some dissimilar rows at distance 0 (subgradient 0 for the hinge term).
        for r in (4..rows).step_by(10) {
            b[r * dim..(r + 1) * dim].copy_from_slice(&a[r * dim..(r + 1) * dim]);
        }
        Batch { a, b, labels, dim }
    }

    /// Moves `b` away from `a` in the rows where they are equal.
    fn move_apart_equal_rows(&mut self) {
        let dim = self.dim;
        let rows = self.a.chunks_exact(dim).zip(self.b.chunks_exact_mut(dim));
        for (ra, rb) in rows.filter(|(ra, rb)| ra == rb) {
            rb[0] = ra[0] + 0.5;
        }
    }

    fn with_grad(&self, loss: ContrastiveLoss) -> (f32, Vec<f32>, Vec<f32>) {
        let mut ga = vec![f32::NAN; self.a.len()];
        let mut gb = vec![f32::NAN; self.a.len()];
        let l = loss
            .batch_with_grad(&self.a, &self.b, self.dim, &self.labels, &mut ga, &mut gb)
            .unwrap();
        (l, ga, gb)
    }
}

/// Hadsell's weights with a margin that puts some dissimilar rows beyond it.
fn euclidean_loss(dim: usize) -> ContrastiveLoss {
    // Rows of uniform [-1, 1) components are about √(2·dim/3) apart.
    ContrastiveLoss::new((2.0 * dim as f32 / 3.0).sqrt())
}

/// The reduction factor `c` of `Mean`.
fn mean_factor(rows: usize) -> f64 {
    1.0 / rows as f64
}

#[test]
fn euclidean_gradients_match_f64_and_scalar() {
    let mut rng = Rng(5);
    for dim in row_dims() {
        // 320 rows, none at distance 0, so that blocks take the one-pass kernels where the
        // backend has them (in cache, AVX-512: rows of up to 8 and of 48 or more; AVX2:
        // the latter).
        let long = (dim <= 8 || dim >= 48).then_some((320, 2));
        for (rows, offset) in [(1, 0), (7, 3), (17, 1), (37, 5)].into_iter().chain(long) {
            let mut batch = Batch::new(&mut rng, rows, dim, offset);
            if rows == 320 {
                batch.move_apart_equal_rows();
            }
            let loss = euclidean_loss(dim);
            let (w_pos, w_neg, m) = (0.5f64, 0.5f64, f64::from(loss.margin));
            let c = mean_factor(rows);
            let (_, sa, sb) = batch.with_grad(loss.with_backend(Backend::Scalar));
            for backend in backends() {
                let (l, ga, gb) = batch.with_grad(loss.with_backend(backend));
                let mut total = 0.0;
                let mut total_scale = 0.0;
                for r in 0..rows {
                    let range = r * dim..(r + 1) * dim;
                    let (ra, rb) = (&batch.a[range.clone()], &batch.b[range.clone()]);
                    let y = f64::from(batch.labels[r]);
                    let (s, _) = squared_reference(ra, rb);
                    let d = s.sqrt();
                    let h = (m - d).max(0.0);
                    total += w_pos * y * s + w_neg * (1.0 - y) * h * h;
                    total_scale += w_pos * y * s + w_neg * (1.0 - y) * (m + d).powi(2);
                    let coefficient = if d == 0.0 {
                        2.0 * c * w_pos * y
                    } else {
                        2.0 * c * (w_pos * y - w_neg * (1.0 - y) * h / d)
                    };
                    let scale_coefficient = if d == 0.0 {
                        2.0 * c * w_pos * y
                    } else {
                        2.0 * c * (w_pos * y + w_neg * (1.0 - y) * (m + d) / d)
                    };
                    let largest = ra
                        .iter()
                        .zip(rb)
                        .map(|(&x, &z)| (f64::from(x) - f64::from(z)).abs())
                        .fold(0.0, f64::max);
                    let tol = (2.0 * dim as f64 + 16.0) * U * scale_coefficient * largest + TINY;
                    let inactive = y == 0.0 && d >= m;
                    for i in range {
                        let want = coefficient * (f64::from(batch.a[i]) - f64::from(batch.b[i]));
                        let what = format!("{backend:?} dim={dim} rows={rows} r={r} i={i}");
                        if inactive {
                            assert_eq!((ga[i], gb[i]), (0.0, 0.0), "{what}: inactive pair");
                        }
                        assert_grads(&what, [ga[i], gb[i]], [want, -want], [sa[i], sb[i]], tol);
                    }
                }
                let tol = (2.0 * dim as f64 + 16.0) * U * total_scale * c + TINY;
                assert_within(
                    &format!("{backend:?} dim={dim} rows={rows} loss"),
                    l,
                    total * c,
                    tol,
                );
            }
        }
    }
}

/// `(loss, ∂L/∂a, ∂L/∂b, scale)` of one cosine pair in f64, with `c` folded in.
fn cosine_reference(
    a: &[f32],
    b: &[f32],
    y: f64,
    m: f64,
    c: f64,
) -> (f64, Vec<f64>, Vec<f64>, f64) {
    let (ab, _) = dot_reference(a, b);
    let (na, nb) = (dot_reference(a, a).0.sqrt(), dot_reference(b, b).0.sqrt());
    let (w_pos, w_neg) = (0.5, 0.5);
    let cos = if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (ab / (na * nb)).clamp(-1.0, 1.0)
    };
    let d = 1.0 - cos;
    let h = (m - d).max(0.0);
    let loss = w_pos * y * d * d + w_neg * (1.0 - y) * h * h;
    // ∂L/∂cos = −∂L/∂D.
    let g = -2.0 * c * (w_pos * y * d - w_neg * (1.0 - y) * h);
    let zero = na == 0.0 || nb == 0.0;
    let grad = |x: &[f32], z: &[f32], nx: f64, nz: f64| -> Vec<f64> {
        x.iter()
            .zip(z)
            .map(|(&x, &z)| {
                if zero {
                    0.0
                } else {
                    g * (f64::from(z) / (nx * nz) - cos * f64::from(x) / (nx * nx))
                }
            })
            .collect()
    };
    let (ga, gb) = (grad(a, b, na, nb), grad(b, a, nb, na));
    // Scale: the slope bound times the largest absolute term of ∂cos.
    let slope = 2.0 * c * (w_pos * y * 2.0 + w_neg * (1.0 - y) * (m + 2.0));
    let largest = a
        .iter()
        .zip(b)
        .map(|(&x, &z)| {
            let (x, z) = (f64::from(x).abs(), f64::from(z).abs());
            (z / (na * nb) + x / (na * na)).max(x / (na * nb) + z / (nb * nb))
        })
        .fold(0.0, f64::max);
    (loss, ga, gb, if zero { 0.0 } else { slope * largest })
}

#[test]
fn cosine_gradients_match_f64_and_scalar() {
    let mut rng = Rng(6);
    for dim in row_dims() {
        for (rows, offset) in [(1, 2), (9, 0), (17, 6)] {
            let batch = Batch::new(&mut rng, rows, dim, offset);
            let loss = ContrastiveLoss::new(0.5)
                .with_distance(Distance::Cosine)
                .with_reduction(Reduction::Sum);
            let (_, sa, sb) = batch.with_grad(loss.with_backend(Backend::Scalar));
            for backend in backends() {
                let (l, ga, gb) = batch.with_grad(loss.with_backend(backend));
                let mut total = 0.0;
                for r in 0..rows {
                    let range = r * dim..(r + 1) * dim;
                    let (ra, rb) = (&batch.a[range.clone()], &batch.b[range.clone()]);
                    let y = f64::from(batch.labels[r]);
                    let (pair, wa, wb, scale) = cosine_reference(ra, rb, y, 0.5, 1.0);
                    total += pair;
                    let tol = (2.0 * dim as f64 + 16.0) * U * scale + TINY;
                    for (j, i) in range.enumerate() {
                        let what = format!("{backend:?} cosine dim={dim} rows={rows} r={r} i={i}");
                        assert_grads(&what, [ga[i], gb[i]], [wa[j], wb[j]], [sa[i], sb[i]], tol);
                    }
                }
                let tol = (2.0 * dim as f64 + 16.0) * U * 4.0 * rows as f64 + TINY;
                assert_within(
                    &format!("{backend:?} cosine dim={dim} rows={rows} loss"),
                    l,
                    total,
                    tol,
                );
            }
        }
    }
}

/// Dissimilar pairs beyond the margin get exactly zero gradients on every backend, even
/// when their difference is infinite (`0·∞` must not appear), and a NaN stays in its row.
#[test]
fn inactive_rows_are_exact_zeros_and_nan_stays_in_its_row() {
    let mut rng = Rng(7);
    for dim in row_dims() {
        let rows = 37;
        let n = rows * dim;
        let a = buffer(&mut rng, n, false)[..n].to_vec();
        let mut b = buffer(&mut rng, n, false)[..n].to_vec();
        let labels: Vec<f32> = (0..rows)
            .map(|r| if r % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        // Row 1 (dissimilar) is infinitely far: inactive, gradient exactly 0.
        b[dim] = f32::INFINITY;
        // Row 5 (dissimilar) holds a NaN: its gradient is NaN, its neighbours' are not.
        b[5 * dim + dim / 2] = f32::NAN;
        // Margin 0: every dissimilar row is inactive.
        let loss = ContrastiveLoss::new(0.0).with_reduction(Reduction::Sum);
        for backend in backends() {
            let mut ga = vec![1.0; n];
            let mut gb = vec![1.0; n];
            let l = loss
                .with_backend(backend)
                .batch_with_grad(&a, &b, dim, &labels, &mut ga, &mut gb)
                .unwrap();
            assert!(
                l.is_nan(),
                "{backend:?} dim={dim}: a NaN row makes the sum NaN"
            );
            for (r, &label) in labels.iter().enumerate() {
                let row = r * dim..(r + 1) * dim;
                let what = format!("{backend:?} dim={dim} r={r}");
                if r == 5 {
                    assert!(ga[row.clone()].iter().all(|g| g.is_nan()), "{what}");
                    assert!(gb[row].iter().all(|g| g.is_nan()), "{what}");
                } else if label == 0.0 {
                    for i in row {
                        assert_eq!((ga[i], gb[i]), (0.0, 0.0), "{what} i={i}");
                    }
                } else {
                    assert!(ga[row].iter().all(|g| g.is_finite()), "{what}");
                }
            }
        }
    }
}

/// A gradient of 32 MiB a side or more is written with non-temporal stores (AVX-512,
/// src/loss/block.rs `STREAM_BYTES`), in shorter blocks where rows are tiny (d = 2, 3):
/// every backend writes the same gradients as it does for the same rows in smaller
/// batches, which take ordinary stores and the longer blocks (with `Sum`, a row's gradient
/// does not depend on the rest of its batch). The buffers come from `Vec`, so
/// whether they are 64-byte aligned is the allocator's choice; the kernel unit test
/// `streaming_row_gradients_equal_ordinary_ones` covers every alignment.
///
/// 64 MiB of batches per backend and dim is seconds of work per backend in a debug build
/// (the whole test took about 35 s with four backends, and the host tier runs it twice):
/// a debug build checks the best backend only (AVX-512 and its streaming stores where the
/// CPU has it); optimized builds sweep every backend, and the release suites on aarch64
/// (scalar and NEON) run it so. The shorter blocks are the same code for every backend
/// (src/loss/block.rs).
#[test]
#[cfg_attr(
    target_arch = "wasm32",
    ignore = "Node 20's WASI runner intermittently segfaults on exit after this test's \
              200 MiB of linear memory; streaming stores exist only on x86-64"
)]
fn gradients_beyond_the_cache_equal_those_of_smaller_batches() {
    for dim in [2, 3, 128] {
        gradients_beyond_the_cache_equal_those_of_smaller_batches_at(dim);
    }
}

/// Every backend in optimized builds; in debug builds the best one (see above).
fn beyond_the_cache_backends() -> Vec<Backend> {
    if cfg!(debug_assertions) {
        vec![Backend::best()]
    } else {
        backends()
    }
}

fn gradients_beyond_the_cache_equal_those_of_smaller_batches_at(dim: usize) {
    let rows = (32 << 20) / (dim * 4);
    let mut rng = Rng(0x5eed_57ea);
    let (a, b) = (
        buffer(&mut rng, dim * rows, false),
        buffer(&mut rng, dim * rows, false),
    );
    let (mut a, b) = (a[..dim * rows].to_vec(), &b[..dim * rows]);
    // Rows whose squared distance overflows take the rescaled path after the streamed
    // stores of their block.
    for row in [5, 40_000] {
        a[row * dim..(row + 1) * dim].fill(3e19);
    }
    let a = &a[..];
    let labels: Vec<f32> = (0..rows).map(|r| [1.0, 0.0, 0.5][r % 3]).collect();
    for backend in beyond_the_cache_backends() {
        let loss = ContrastiveLoss::new(8.0)
            .with_reduction(Reduction::Sum)
            .with_backend(backend);
        let (mut ga, mut gb) = (vec![0.0f32; a.len()], vec![0.0f32; a.len()]);
        loss.batch_with_grad(a, b, dim, &labels, &mut ga, &mut gb)
            .unwrap();
        let chunk = 4096 * dim;
        let (mut wa, mut wb) = (vec![0.0f32; chunk], vec![0.0f32; chunk]);
        for (i, ((ca, cb), ys)) in a
            .chunks(chunk)
            .zip(b.chunks(chunk))
            .zip(labels.chunks(4096))
            .enumerate()
        {
            let n = ca.len();
            loss.batch_with_grad(ca, cb, dim, ys, &mut wa[..n], &mut wb[..n])
                .unwrap();
            let at = i * chunk;
            assert!(
                ga[at..at + n]
                    .iter()
                    .zip(&wa[..n])
                    .all(|(g, w)| g.to_bits() == w.to_bits())
                    && gb[at..at + n]
                        .iter()
                        .zip(&wb[..n])
                        .all(|(g, w)| g.to_bits() == w.to_bits()),
                "{backend:?}: d = {dim}, chunk {i}"
            );
        }
    }
}

/// An invalid label deep inside a batch of tiny rows, in a block the backend's one-pass
/// forward would take: `batch` names it, on every backend, as the block path does.
#[test]
fn an_invalid_label_in_a_one_pass_block_is_an_error() {
    let mut rng = Rng(9);
    for backend in backends() {
        for dim in 1..=9 {
            let rows = 700;
            let batch = Batch::new(&mut rng, rows, dim, 0);
            let loss = euclidean_loss(dim).with_backend(backend);
            for (index, bad) in [(300, 1.5f32), (511, f32::NAN), (64, -0.5)] {
                let mut labels = batch.labels.clone();
                labels[index] = bad;
                let got = loss.batch(&batch.a, &batch.b, dim, &labels);
                match got {
                    Err(contrastive::Error::InvalidLabel { index: i, .. }) => {
                        assert_eq!(i, index, "{backend:?} dim={dim} label {bad}")
                    }
                    other => panic!("{backend:?} dim={dim} label {bad}: {other:?}"),
                }
            }
        }
    }
}
