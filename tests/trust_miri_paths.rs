//! A sweep sized for Miri: every public entry point on every available backend, at lengths
//! that reach each loop shape of each backend (empty, tails of every size up to one vector,
//! one and several vectors, the four-accumulator blocks of 4×8 and 4×16 floats and their
//! tails), at start offsets 0..3, with ordinary, tiny (1e-30: squares underflow) and huge
//! (1e30: squares overflow) values so that the rescaling paths run too. Results are checked
//! against the float64 oracle, so the sweep is also a plain test.
//!
//! Miri runs it over the scalar and portable kernels, and over the AVX2 and AVX-512 ones
//! when their target features are enabled (`.ci/steps/30-trust.sh`); under Miri, every
//! out-of-bounds or misaligned access and every use of uninitialized memory is an error.

mod trust_oracle;

use contrastive::{Backend, ContrastiveLoss, Distance, Reduction, seed};
use trust_oracle as oracle;

/// Lengths around every block boundary of 1-, 8- and 16-lane kernels with four
/// accumulators.
const LENGTHS: [usize; 24] = [
    0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 63, 64, 65, 79, 95, 127, 129,
];
const OFFSETS: usize = 3;
/// Row lengths for the batch forms, around the same boundaries.
const DIMS: [usize; 10] = [1, 2, 3, 4, 7, 8, 9, 16, 17, 33];
const ROWS: usize = 3;

fn value(flavour: usize, side: usize, i: usize) -> f32 {
    let x = ((i * 5 + side * 3) % 9) as f32 - 4.0 + 0.5 * side as f32;
    match flavour {
        0 => x,
        1 => x * 1e-30,
        _ => x * 1e30,
    }
}

fn buffer(flavour: usize, side: usize, len: usize) -> Vec<f32> {
    (0..len).map(|i| value(flavour, side, i)).collect()
}

fn flavours() -> core::ops::Range<usize> {
    // Under Miri the ordinary values, plus the tiny ones that take the cold paths.
    if cfg!(miri) { 0..2 } else { 0..3 }
}

fn check(result: Result<(), String>, ctx: impl FnOnce() -> String) {
    if let Err(e) = result {
        panic!("{e}\n  {}", ctx());
    }
}

#[test]
fn distances_at_every_loop_shape_and_offset() {
    for flavour in flavours() {
        let (a_buf, b_buf) = (
            buffer(flavour, 0, 129 + OFFSETS),
            buffer(flavour, 1, 129 + OFFSETS),
        );
        for backend in Backend::available() {
            for n in LENGTHS {
                for off in 0..OFFSETS {
                    let (a, b) = (&a_buf[off..off + n], &b_buf[OFFSETS - off..][..n]);
                    let got = [
                        backend.squared_euclidean(a, b).unwrap(),
                        backend.euclidean(a, b).unwrap(),
                        backend.dot(a, b).unwrap(),
                        backend.cosine_similarity(a, b).unwrap(),
                    ];
                    check(oracle::check_distances(a, b, got), || {
                        format!("{backend:?} n = {n} offset {off} flavour {flavour}")
                    });
                }
            }
        }
    }
}

#[test]
fn pair_losses_and_gradients_at_every_loop_shape() {
    for flavour in flavours() {
        let (a_buf, b_buf) = (buffer(flavour, 0, 130), buffer(flavour, 1, 130));
        for backend in Backend::available() {
            for n in LENGTHS {
                let (a, b) = (&a_buf[1..=n], &b_buf[..n]);
                for distance in [Distance::Euclidean, Distance::Cosine] {
                    for label in [0.0f32, 1.0, 0.25] {
                        let loss = ContrastiveLoss::seed(3.0)
                            .with_distance(distance)
                            .with_backend(backend);
                        let (mut ga, mut gb) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                        let l = loss.pair_with_grad(a, b, label, &mut ga, &mut gb).unwrap();
                        let t = oracle::Terms::new(0.5, 1.0, label, 3.0);
                        let r = match distance {
                            Distance::Euclidean => oracle::euclidean_pair(a, b, t),
                            Distance::Cosine => oracle::cosine_pair(a, b, t),
                        };
                        if r.products_cancel {
                            continue; // a known gap (tests/trust_regressions.rs)
                        }
                        let ctx = || format!("{backend:?} {distance:?} n = {n} y = {label}");
                        check(r.check_loss("pair_with_grad", l, 1.0), ctx);
                        check(r.check_grads("pair_with_grad", &ga, &gb), ctx);
                    }
                }
            }
        }
    }
}

#[test]
fn batches_and_the_seed_at_every_row_length() {
    let labels = [1.0f32, 0.0, 0.5];
    for flavour in flavours() {
        for backend in Backend::available() {
            for dim in DIMS {
                let (a, b) = (
                    buffer(flavour, 0, ROWS * dim),
                    buffer(flavour, 1, ROWS * dim),
                );
                let mut out = [f32::NAN; ROWS];
                backend
                    .squared_euclidean_rows(&a, &b, dim, &mut out)
                    .unwrap();
                for (r, &got) in out.iter().enumerate() {
                    let s = oracle::squared_euclidean(&a[r * dim..][..dim], &b[r * dim..][..dim]);
                    check(
                        oracle::check("rows", got, s, oracle::squared_euclidean_bound(dim, s)),
                        || format!("{backend:?} dim = {dim} row {r}"),
                    );
                }
                for distance in [Distance::Euclidean, Distance::Cosine] {
                    for reduction in [Reduction::Mean, Reduction::Sum] {
                        let loss = ContrastiveLoss::new(2.0)
                            .with_distance(distance)
                            .with_reduction(reduction)
                            .with_backend(backend);
                        let two_c = match reduction {
                            Reduction::Mean => 2.0 / ROWS as f64,
                            Reduction::Sum => 2.0,
                        };
                        let mut per_pair = [f32::NAN; ROWS];
                        loss.batch_per_pair(&a, &b, dim, &labels, &mut per_pair)
                            .unwrap();
                        let total = loss.batch(&a, &b, dim, &labels).unwrap();
                        let (mut ga, mut gb) = (vec![f32::NAN; a.len()], vec![f32::NAN; a.len()]);
                        let with_grad = loss
                            .batch_with_grad(&a, &b, dim, &labels, &mut ga, &mut gb)
                            .unwrap();
                        let mut expected = 0.0;
                        let mut bound = 0.0;
                        let mut gap = false;
                        for (r, &y) in labels.iter().enumerate() {
                            let rows = (&a[r * dim..][..dim], &b[r * dim..][..dim]);
                            let mut t = oracle::Terms::new(0.5, 0.5, y, 2.0);
                            t.two_c = two_c;
                            let reference = match distance {
                                Distance::Euclidean => oracle::euclidean_pair(rows.0, rows.1, t),
                                Distance::Cosine => oracle::cosine_pair(rows.0, rows.1, t),
                            };
                            if reference.products_cancel {
                                gap = true; // a known gap (tests/trust_regressions.rs)
                                continue;
                            }
                            let ctx = || {
                                format!(
                                    "{backend:?} {distance:?} {reduction:?} dim = {dim} row {r}"
                                )
                            };
                            check(
                                reference.check_loss("batch_per_pair", per_pair[r], 1.0),
                                ctx,
                            );
                            check(
                                reference.check_grads(
                                    "batch_with_grad",
                                    &ga[r * dim..][..dim],
                                    &gb[r * dim..][..dim],
                                ),
                                ctx,
                            );
                            expected += reference.loss * two_c / 2.0;
                            bound += reference.loss_bound() * two_c / 2.0;
                        }
                        if gap {
                            continue;
                        }
                        let ctx = || format!("{backend:?} {distance:?} {reduction:?} dim = {dim}");
                        let bound = bound + oracle::U * f64::abs(expected);
                        check(oracle::check("batch", total, expected, bound), ctx);
                        check(
                            oracle::check("batch_with_grad", with_grad, expected, bound),
                            ctx,
                        );
                    }
                }
                let (mut g1, mut g2) = (vec![f32::NAN; a.len()], vec![f32::NAN; a.len()]);
                let l = seed::contrastive_loss_with_grad_on(
                    backend, &a, &b, &labels, 0.5, &mut g1, &mut g2,
                )
                .unwrap();
                let len = a.len() as f64;
                let t = oracle::Terms {
                    p: 0.5 * 1.5,
                    q: 1.5,
                    margin: 0.5,
                    two_c: 2.0 / len,
                };
                let r = oracle::euclidean_pair(&a, &b, t);
                let ctx = || format!("{backend:?} seed dim = {dim}");
                check(r.check_loss("seed", l, 1.0 / len), ctx);
                check(r.check_grads("seed", &g1, &g2), ctx);
            }
        }
    }
}
