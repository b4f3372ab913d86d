//! Every available backend against the float64 oracle of tests/common, at every length
//! 0..=130 and start offsets 0..8 (misaligned slices, so every tail and alignment path
//! runs), and against the scalar backend. Bounds (u = 2⁻²⁴, n = length):
//! - sums (squared distance, dot): `(n + 4)·u·Σ|terms|`;
//! - Euclidean distance: `(n/2 + 4)·u` relative; cosine: `(2n + 16)·u` absolute;
//! - losses and gradients: `(2n + 16)·u` of the pair's scale (see tests/common).

use crate::common;

use common::sweep::OFFSETS;
use common::{Pair, Rng, U, assert_close, check_pair, pair_rtol, sum_rtol};
use contrastive::{Backend, ContrastiveLoss, Distance, Reduction};

const MAX_LEN: usize = 130;

/// Elements a side of the batches below: at d = 1 to 4 more than one block of 256 rows
/// (the longest blocks), at larger d several 64-row blocks, and most batches end in a
/// partial 64-row chunk.
const BATCH_LEN: usize = 1400;

/// Two buffers of `len + OFFSETS` values whose magnitudes vary over a few binades, so
/// that sums mix large and small terms.
fn buffers(seed: u64, len: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng(seed);
    let len = len + OFFSETS;
    let scale = |rng: &mut Rng| 2f32.powi(rng.below(7) as i32 - 3);
    let a: Vec<f32> = (0..len).map(|_| rng.unit() * scale(&mut rng)).collect();
    let b: Vec<f32> = (0..len).map(|_| rng.unit() * scale(&mut rng)).collect();
    (a, b)
}

#[test]
fn distances_match_the_oracle_at_every_length_and_offset() {
    let (a, b) = buffers(1, MAX_LEN);
    for backend in Backend::available() {
        for n in 0..=MAX_LEN {
            for off in 0..OFFSETS {
                let (x, y) = (
                    &a[off..off + n],
                    &b[(OFFSETS - 1 - off)..(OFFSETS - 1 - off) + n],
                );
                let what = format!("{backend:?} n={n} off={off}");
                let s = common::squared_euclidean(x, y);
                let got = backend.squared_euclidean(x, y).unwrap();
                assert_close(&format!("{what} squared_euclidean"), got, s, sum_rtol(n), s);
                let scalar = Backend::Scalar.squared_euclidean(x, y).unwrap();
                assert_close(
                    &format!("{what} vs scalar"),
                    got,
                    f64::from(scalar),
                    2.0 * sum_rtol(n),
                    s,
                );

                let d = backend.euclidean(x, y).unwrap();
                assert_close(
                    &format!("{what} euclidean"),
                    d,
                    s.sqrt(),
                    (n as f64 / 2.0 + 4.0) * U,
                    s.sqrt(),
                );

                let (dot, dot_scale) = common::dot(x, y);
                let got = backend.dot(x, y).unwrap();
                assert_close(&format!("{what} dot"), got, dot, sum_rtol(n), dot_scale);

                let cos = backend.cosine_similarity(x, y).unwrap();
                assert_close(
                    &format!("{what} cosine"),
                    cos,
                    common::cosine(x, y),
                    pair_rtol(n),
                    1.0,
                );
            }
        }
    }
}

#[test]
fn pair_losses_and_gradients_match_the_oracle_at_every_length_and_offset() {
    let (a, b) = buffers(2, MAX_LEN);
    for backend in Backend::available() {
        for n in 0..=MAX_LEN {
            for off in 0..OFFSETS {
                let (x, y) = (&a[off..off + n], &b[off / 2..off / 2 + n]);
                let distance = common::squared_euclidean(x, y).sqrt();
                for cosine in [false, true] {
                    let d = if cosine {
                        1.0 - common::cosine(x, y)
                    } else {
                        distance
                    };
                    // A margin above D keeps the hinge active; soft labels use both terms.
                    let margin = (1.25 * d + 0.1) as f32;
                    let mut loss = ContrastiveLoss::seed(margin).with_backend(backend);
                    if cosine {
                        loss = loss.with_distance(Distance::Cosine);
                    }
                    for label in [1.0f32, 0.0, 0.3] {
                        let (mut ga, mut gb) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                        let l = loss.pair_with_grad(x, y, label, &mut ga, &mut gb).unwrap();
                        let cfg = Pair {
                            wp: 0.5,
                            wn: 1.0,
                            margin: f64::from(margin),
                            label: f64::from(label),
                            cosine,
                            c: 1.0,
                        };
                        let what = format!("{backend:?} n={n} off={off} cosine={cosine} y={label}");
                        check_pair(&what, &cfg, x, y, l, &ga, &gb);
                        assert_eq!(
                            loss.pair(x, y, label).unwrap(),
                            l,
                            "{what}: pair vs pair_with_grad"
                        );

                        let scalar = loss
                            .with_backend(Backend::Scalar)
                            .pair(x, y, label)
                            .unwrap();
                        let scale = cfg.reference(x, y).loss_scale;
                        assert_close(
                            &format!("{what} vs scalar"),
                            l,
                            f64::from(scalar),
                            2.0 * pair_rtol(n),
                            scale,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn batches_match_the_oracle_row_by_row_for_every_dim() {
    let (a, b) = buffers(3, BATCH_LEN);
    let mut rng = Rng(4);
    let dims = (1..=17).chain([31, 32, 33, 64, 65, 128]);
    for backend in Backend::available() {
        for dim in dims.clone() {
            for off in [0, 1, 3, 7] {
                let rows = BATCH_LEN / dim;
                let (x, y) = (&a[off..off + rows * dim], &b[..rows * dim]);
                let labels: Vec<f32> = (0..rows).map(|_| [0.0, 1.0, 0.5][rng.below(3)]).collect();
                let margin = 1.0;
                for cosine in [false, true] {
                    for reduction in [Reduction::Mean, Reduction::Sum] {
                        let mut loss = ContrastiveLoss::new(margin)
                            .with_backend(backend)
                            .with_reduction(reduction);
                        if cosine {
                            loss = loss.with_distance(Distance::Cosine);
                        }
                        let c = if reduction == Reduction::Mean {
                            1.0 / rows as f64
                        } else {
                            1.0
                        };
                        let (mut ga, mut gb) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
                        let total = loss
                            .batch_with_grad(x, y, dim, &labels, &mut ga, &mut gb)
                            .unwrap();
                        let mut per_pair = vec![f32::NAN; rows];
                        loss.batch_per_pair(x, y, dim, &labels, &mut per_pair)
                            .unwrap();
                        let (mut want, mut scale) = (0.0, 0.0);
                        for r in 0..rows {
                            let span = r * dim..(r + 1) * dim;
                            let cfg = Pair {
                                wp: 0.5,
                                wn: 0.5,
                                margin: f64::from(margin),
                                label: f64::from(labels[r]),
                                cosine,
                                c,
                            };
                            let what = format!(
                                "{backend:?} dim={dim} off={off} row={r} cosine={cosine} {reduction:?}"
                            );
                            let (ra, rb) = (&x[span.clone()], &y[span.clone()]);
                            check_pair(
                                &what,
                                &cfg,
                                ra,
                                rb,
                                per_pair[r],
                                &ga[span.clone()],
                                &gb[span],
                            );
                            let reference = cfg.reference(ra, rb);
                            want += c * reference.loss;
                            scale += c * reference.loss_scale;
                        }
                        let what = format!(
                            "{backend:?} dim={dim} off={off} cosine={cosine} {reduction:?}"
                        );
                        assert_close(
                            &format!("{what} reduced"),
                            total,
                            want,
                            pair_rtol(dim),
                            scale,
                        );
                        assert_eq!(
                            loss.batch(x, y, dim, &labels).unwrap(),
                            total,
                            "{what}: batch vs batch_with_grad"
                        );
                    }
                }
                let mut out = vec![f32::NAN; rows];
                backend.squared_euclidean_rows(x, y, dim, &mut out).unwrap();
                for r in 0..rows {
                    let s = common::squared_euclidean(
                        &x[r * dim..(r + 1) * dim],
                        &y[r * dim..(r + 1) * dim],
                    );
                    assert_close(
                        &format!("{backend:?} rows dim={dim} row={r}"),
                        out[r],
                        s,
                        sum_rtol(dim),
                        s,
                    );
                }
            }
        }
    }
}
