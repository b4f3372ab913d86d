//! A sweep sized for Miri: every public entry point on every available backend, at lengths
//! that reach each loop shape of each backend (empty, tails of every size up to one vector,
//! one and several vectors, the four-accumulator blocks of 4×8 and 4×16 floats and their
//! tails), at start offsets 0..3, with ordinary, tiny (1e-30: squares underflow) and huge
//! (1e30: squares overflow) values so that the rescaling paths run too. Results are checked
//! against the float64 oracle, so the sweep is also a plain test.
//!
//! Miri runs it over the portable kernels, and over the AVX2 and AVX-512 ones
//! when their target features are enabled (`.ci/steps/20-background.sh`); under Miri, every
//! out-of-bounds or misaligned access and every use of uninitialized memory is an error.
//! Miri is slow (about a million times), so under it each pass sweeps only the backends
//! its target features add (see [`backends`]), at two offsets and two value flavours.

mod common;
use common::softmax_oracle;

use common::trust_oracle as oracle;
use contrastive::{Backend, ContrastiveLoss, Distance, Reduction, seed};

/// Lengths around every block boundary of 1-, 8- and 16-lane kernels with four
/// accumulators (under Miri, a subset that still reaches each shape).
fn lengths() -> &'static [usize] {
    if cfg!(miri) {
        // Empty; tails; one 8- and 16-lane vector and a tail; a 4×8 block, single 8-lane
        // vectors and a tail (47); a 4×16 block, a single 16-lane vector and a tail (95).
        &[0, 1, 3, 8, 9, 17, 47, 95]
    } else {
        &[
            0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 63, 64, 65, 79, 95, 127, 129,
        ]
    }
}
const OFFSETS: usize = 3;
/// Row lengths for the batch forms: the packed layouts of the x86 kernels for dims up to
/// 8, the transposed one from 9 on, and dims around the vector widths.
fn dims() -> &'static [usize] {
    if cfg!(miri) {
        &[2, 8, 9]
    } else {
        &[1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33]
    }
}
/// Rows per batch: one full group of 16 rows (the x86 kernels' transposed layout) and a
/// remainder.
const ROWS: usize = 17;

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

/// The backends to sweep (`common::miri::backends`: under Miri, those the pass's target
/// features add). The tiny and huge flavours test the cold rescaling paths, which are
/// plain scalar code whatever the backend, so under Miri they run on the portable backend
/// only.
fn backends(flavour: usize) -> Vec<Backend> {
    if cfg!(miri) && flavour > 0 {
        return vec![Backend::Portable];
    }
    common::miri::backends()
}

fn offsets() -> usize {
    if cfg!(miri) { 2 } else { OFFSETS }
}

fn flavours() -> core::ops::Range<usize> {
    // Under Miri: the ordinary values; in the scalar pass also the tiny ones, which take
    // the cold rescaling paths (plain scalar code, the same for every backend).
    if !cfg!(miri) {
        0..3
    } else if cfg!(target_feature = "avx2") {
        0..1
    } else {
        0..2
    }
}

/// Labels for the pair sweep: dissimilar, similar and soft (under Miri, dissimilar and soft,
/// which together take both terms).
fn labels() -> &'static [f32] {
    if cfg!(miri) {
        &[0.0, 0.25]
    } else {
        &[0.0, 1.0, 0.25]
    }
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
        for backend in backends(flavour) {
            for &n in lengths() {
                for off in 0..offsets() {
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
        for backend in backends(flavour) {
            for &n in lengths() {
                let (a, b) = (&a_buf[1..=n], &b_buf[..n]);
                for distance in [Distance::Euclidean, Distance::Cosine] {
                    for &label in labels() {
                        let loss = ContrastiveLoss::seed(3.0)
                            .with_distance(distance)
                            .with_backend(backend);
                        let (mut ga, mut gb) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                        let l = loss.pair_with_grad(a, b, label, &mut ga, &mut gb).unwrap();
                        let t = oracle::Terms::new(0.5, 1.0, label, 3.0);
                        let r = match distance {
                            Distance::Euclidean => oracle::euclidean_pair(a, b, t),
                            Distance::Cosine => oracle::cosine_pair(a, b, t),
                            other => unimplemented!("no oracle for {other:?}"),
                        };
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
    let labels: Vec<f32> = (0..ROWS).map(|r| [1.0, 0.0, 0.5][r % 3]).collect();
    for flavour in flavours() {
        for backend in backends(flavour) {
            for &dim in dims() {
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
                            other => unimplemented!("no oracle for {other:?}"),
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
                        for (r, &y) in labels.iter().enumerate() {
                            let rows = (&a[r * dim..][..dim], &b[r * dim..][..dim]);
                            let mut t = oracle::Terms::new(0.5, 0.5, y, 2.0);
                            t.two_c = two_c;
                            let reference = match distance {
                                Distance::Euclidean => oracle::euclidean_pair(rows.0, rows.1, t),
                                Distance::Cosine => oracle::cosine_pair(rows.0, rows.1, t),
                                other => unimplemented!("no oracle for {other:?}"),
                            };
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
                let similar: f64 = labels.iter().map(|&y| f64::from(y)).sum();
                let t = oracle::Terms {
                    p: 0.5 * similar,
                    q: ROWS as f64 - similar,
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

/// The one-pass forward with gradient of tiny rows (AVX-512: rows of up to 8; AVX2: up to
/// 4), which takes whole chunks of 64 rows only: 64 rows (one chunk; under Miri at d = 2
/// only) and 64 + 3 (a chunk, then the block path), inputs and outputs at an odd offset
/// from the allocation, against the float64 oracle.
#[test]
fn tiny_rows_in_whole_chunks() {
    let dims: &[usize] = if cfg!(miri) { &[2] } else { &[1, 2, 3, 4, 8] };
    let row_counts: &[usize] = if cfg!(miri) { &[64] } else { &[64, 67, 128] };
    for backend in backends(0) {
        for &dim in dims {
            for &rows in row_counts {
                let n = rows * dim;
                let (a_buf, b_buf) = (buffer(0, 0, n + 1), buffer(0, 1, n + 1));
                let (a, b) = (&a_buf[1..], &b_buf[1..]);
                let labels: Vec<f32> = (0..rows).map(|r| [1.0, 0.0, 0.5][r % 3]).collect();
                let loss = ContrastiveLoss::new(2.0)
                    .with_reduction(Reduction::Sum)
                    .with_backend(backend);
                let (mut ga, mut gb) = (vec![f32::NAN; n + 1], vec![f32::NAN; n + 1]);
                let total = loss
                    .batch_with_grad(a, b, dim, &labels, &mut ga[1..], &mut gb[1..])
                    .unwrap();
                let (mut expected, mut bound) = (0.0, 0.0);
                for (r, &y) in labels.iter().enumerate() {
                    let (ra, rb) = (&a[r * dim..][..dim], &b[r * dim..][..dim]);
                    let mut t = oracle::Terms::new(0.5, 0.5, y, 2.0);
                    t.two_c = 2.0;
                    let reference = oracle::euclidean_pair(ra, rb, t);
                    let (oa, ob) = (&ga[1 + r * dim..][..dim], &gb[1 + r * dim..][..dim]);
                    check(reference.check_grads("batch_with_grad", oa, ob), || {
                        format!("{backend:?} dim = {dim} rows = {rows} row {r}")
                    });
                    expected += reference.loss;
                    bound += reference.loss_bound();
                }
                let bound = bound + oracle::U * f64::abs(expected);
                check(
                    oracle::check("batch_with_grad", total, expected, bound),
                    || format!("{backend:?} dim = {dim} rows = {rows}"),
                );
                assert!(ga[0].is_nan() && gb[0].is_nan(), "{backend:?} wrote before");
            }
        }
    }
}

use common::inbatch_oracle;

/// The tile engine under Miri: in-batch and cross-batch forward and gradient on each
/// backend of the pass, at sizes that reach a whole micro-block of every backend (4 × 4
/// on AVX-512, 2 × 4 on AVX2 and the generic kernels) and the edges beside it, rows with
/// a vector and a tail (d = 17) and rows shorter than a vector (d = 3), a plain and a
/// normalised (packed, scaled) walk; checked against the float64 oracle.
#[test]
fn in_batch_tiles_stay_inside_their_slices() {
    use inbatch_oracle::{Dist, Loss, Red};
    let dims: &[usize] = if cfg!(miri) {
        &[3, 17]
    } else {
        &[1, 3, 8, 17, 33]
    };
    for backend in backends(0) {
        for &dim in dims {
            let (n, m) = (5, 6);
            let x = buffer(0, 0, n * dim);
            let y = buffer(0, 1, m * dim);
            let (xc, yc) = ([0, 1, 0, 2, 1], [1, 0, 0, 2, 2, 1]);
            for normalize in [false, true] {
                let o = Loss {
                    dist: Dist::Euclidean,
                    normalize,
                    m_pos: 0.0,
                    m_neg: if normalize {
                        1.5
                    } else {
                        4.0 * (dim as f64).sqrt()
                    },
                    power: 2,
                    w_pos: 0.5,
                    w_neg: 0.5,
                    red: Red::Sum,
                };
                let loss = ContrastiveLoss::new(o.m_neg as f32)
                    .with_normalize(normalize)
                    .with_reduction(Reduction::Sum)
                    .with_backend(backend);
                let what = format!("{backend:?} dim {dim} normalize {normalize}");
                let check = |got: f32, want: f64, scale: f64| {
                    let tol = 1e-4 * (1.0 + scale);
                    assert!(
                        (f64::from(got) - want).abs() <= tol,
                        "{what}: {got} vs {want}"
                    );
                };
                let mut scratch = vec![f32::NAN; loss.min_scratch_len(n + m, dim)];
                let within = inbatch_oracle::evaluate(
                    &o,
                    &x,
                    &x,
                    dim,
                    &inbatch_oracle::within_pairs(&xc),
                    true,
                );
                let mut g = vec![f32::NAN; x.len()];
                let l = loss
                    .in_batch_with_grad(&x, dim, &xc, &mut g, &mut scratch)
                    .unwrap();
                check(l, within.loss, within.loss_scale);
                for (k, (&got, &want)) in g.iter().zip(&within.gx).enumerate() {
                    check(got, want, within.gx_scale[k]);
                }
                let across = inbatch_oracle::evaluate(
                    &o,
                    &x,
                    &y,
                    dim,
                    &inbatch_oracle::across_pairs(&xc, &yc),
                    false,
                );
                let (mut gx, mut gy) = (vec![f32::NAN; x.len()], vec![f32::NAN; y.len()]);
                let l = loss
                    .cross_batch_with_grad(&x, &y, dim, &xc, &yc, &mut gx, &mut gy, &mut scratch)
                    .unwrap();
                check(l, across.loss, across.loss_scale);
                for (k, (&got, &want)) in gx.iter().zip(&across.gx).enumerate() {
                    check(got, want, across.gx_scale[k]);
                }
                for (k, (&got, &want)) in gy.iter().zip(&across.gy).enumerate() {
                    check(got, want, across.gy_scale[k]);
                }
            }
        }
    }
}

/// The softmax family's kernels (the similarity tile over a packed panel, the gradient's
/// row update, `exp`) at a tile's row tail (7 = 6 + 1 rows) and at row lengths that take
/// each of the row update's paths (blocks of four vectors, single vectors, a scalar tail),
/// through the three losses, against the f64 oracle.
#[test]
fn softmax_losses_at_tile_edges() {
    use contrastive::{InfoNceLoss, NtXentLoss, SupConLoss};
    use softmax_oracle as so;
    let shapes: &[(usize, usize)] = if cfg!(miri) {
        &[(7, 17)]
    } else {
        &[(1, 1), (7, 17), (13, 65), (33, 9)]
    };
    for &(n, d) in shapes {
        let x = buffer(0, 0, n * d);
        let y = buffer(0, 1, n * d);
        let classes: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let clip = so::infonce(&x, &y, d, 20.0, true);
        let clip_g = so::chain(&x, &y, d, &clip, false);
        let sup = so::supcon(&x, d, &classes, 0.1, 0.1, "exclude");
        let sup_g = so::chain(&x, &x, d, &sup, true);
        let nt = so::ntxent(&x, d, &classes, 0.1);
        let nt_g = so::chain(&x, &x, d, &nt, true);
        for backend in backends(0) {
            let what = format!("n {n} d {d} on {}", backend.name());
            let loss = InfoNceLoss::clip(20.0).with_backend(backend);
            let mut s = vec![0.0; loss.scratch_len(n, d)];
            let (mut gx, mut gy) = (vec![0.0; n * d], vec![0.0; n * d]);
            let l = loss
                .forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut s)
                .unwrap();
            so::check_loss(&what, l, clip.loss, so::loss_tol(20.0, d, clip.loss));
            so::check_grad(&what, &gx, &clip_g.gx, d, |i| {
                so::grad_tol(20.0, d, n, clip_g.scale_x[i], clip_g.inv_x[i])
            });
            so::check_grad(&what, &gy, &clip_g.gy, d, |i| {
                so::grad_tol(20.0, d, n, clip_g.scale_y[i], clip_g.inv_y[i])
            });
            let loss = SupConLoss::pml().with_backend(backend);
            let mut s = vec![0.0; loss.scratch_len(n, d)];
            let l = loss
                .forward_with_grad(&x, d, &classes, &mut gx, &mut s)
                .unwrap();
            so::check_loss(&what, l, sup.loss, so::loss_tol(10.0, d, sup.loss));
            so::check_grad(&what, &gx, &sup_g.gx, d, |i| {
                so::grad_tol(10.0, d, n, sup_g.scale_x[i], sup_g.inv_x[i])
            });
            let loss = NtXentLoss::new(0.1).with_backend(backend);
            let mut s = vec![0.0; loss.scratch_len(n, d)];
            let l = loss
                .forward_with_grad(&x, d, &classes, &mut gx, &mut s)
                .unwrap();
            so::check_loss(&what, l, nt.loss, so::loss_tol(10.0, d, nt.loss));
            so::check_grad(&what, &gx, &nt_g.gx, d, |i| {
                so::grad_tol(10.0, d, n, nt_g.scale_x[i], nt_g.inv_x[i])
            });
            // exp at every length up to two 16-lane vectors and a tail.
            for len in [1usize, 7, 8, 16, 17, 33] {
                let mut v: Vec<f32> = (0..len).map(|i| i as f32 * 0.37 - 3.0).collect();
                backend.exp_in_place(&mut v).unwrap();
                for (i, &e) in v.iter().enumerate() {
                    let want = (f64::from(i as f32 * 0.37 - 3.0)).exp();
                    assert!(
                        (f64::from(e) - want).abs() <= 2.0 * so_u() * want,
                        "{what}: exp len {len} [{i}]"
                    );
                }
            }
        }
    }
}

fn so_u() -> f64 {
    1.0 / (1u64 << 24) as f64
}
