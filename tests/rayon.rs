//! The `_par` in-batch and cross-batch losses (feature `rayon`) against the serial calls
//! and the float64 oracle of tests/common/inbatch_oracle.rs, in pools of 2 and 3 threads:
//! batches above the parallel threshold (several column blocks of 64, N not a multiple
//! of it) and below it (N = 1, 2, ...: the serial call, same bits), with and without
//! gradients, every option of the loss, hard-pair mining; NaN in, NaN out; every bad
//! input the serial call's error. Host only (threads).
//!
//! `cargo test --features rayon --test rayon`

#![cfg(all(feature = "rayon", not(target_family = "wasm")))]

mod common;

use common::inbatch_cases::{configs, data, rtol};
use common::inbatch_loss::loss_of;
use common::inbatch_oracle::{self as oracle, Red};
use common::{Rng, assert_close};
use contrastive::{Backend, ContrastiveLoss, Error, Mining, Reduction};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Whether a call of `pairs` ordered pairs of `dim` with `columns` rows on the column
/// side takes the parallel path (the documented threshold: 2²¹ pair-elements, more than
/// one block of 64 columns).
fn parallel(pairs: usize, dim: usize, columns: usize) -> bool {
    pairs * dim >= 1 << 21 && columns > 64
}

/// The parallel loss is the serial one or one unit in the last place from it; below the
/// threshold, the same bits.
#[track_caller]
fn same_loss(what: &str, par: f32, serial: f32, split: bool) {
    if split {
        let ulp = (par.to_bits() as i64 - serial.to_bits() as i64).abs();
        assert!(
            ulp <= 1 || (par.is_nan() && serial.is_nan()),
            "{what}: parallel {par:e}, serial {serial:e}"
        );
    } else {
        assert_eq!(
            par.to_bits(),
            serial.to_bits(),
            "{what}: parallel {par:e}, serial {serial:e}"
        );
    }
}

/// A split gradient against the serial one: the same terms (at most `terms` per
/// component) summed in another order, so within `4·terms·u` of the largest component.
#[track_caller]
fn near_serial(what: &str, par: &[f32], serial: &[f32], terms: usize) {
    let big = serial.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    let tol = 4.0 * terms as f32 * f32::EPSILON * big;
    for (k, (&p, &s)) in par.iter().zip(serial).enumerate() {
        assert!(
            (p - s).abs() <= tol,
            "{what} [{k}]: parallel {p:e}, serial {s:e}, tol {tol:e}"
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// (N, d): above the threshold with 3 and 4 column blocks (N not a multiple of 64) and
/// with 2; below it, down to N = 1 and 2.
const IN_BATCH: [(usize, usize); 7] = [
    (130, 129),
    (200, 65),
    (65, 509),
    (1, 7),
    (2, 3),
    (3, 33),
    (70, 17),
];

#[test]
fn in_batch_par_equals_serial_and_the_oracle() {
    let mut rng = Rng(11);
    for (case, &(n, dim)) in IN_BATCH.iter().enumerate() {
        let x = data(&mut rng, n * dim);
        let classes: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
        let split = parallel(n * n.saturating_sub(1), dim, n);
        for (c, o) in configs(dim).iter().enumerate() {
            if o.red == Red::Mean && n < 2 {
                continue;
            }
            // Large shapes: two configurations each, every one in some shape.
            if split && c != case % 4 && c != (case + 2) % 4 {
                continue;
            }
            let loss = loss_of(o);
            let serial = loss.in_batch_with_grad_vec(&x, dim, &classes).unwrap();
            // The oracle (N²·d in f64, most of the time in a debug build) for one
            // configuration of the first two large shapes; else the serial call.
            let out = (!split || (case < 2 && c == case % 4))
                .then(|| oracle::evaluate(o, &x, &x, dim, &oracle::within_pairs(&classes), true));
            // Large shapes: one pool size per configuration (a debug build stays quick).
            let pools: &[usize] = if split { &[2 + c % 2] } else { &[2, 3] };
            for &threads in pools {
                let what = format!("N={n} d={dim} config {c}, {threads} threads");
                let (forward, got, grad, again) = pool(threads).install(|| {
                    let forward = loss.in_batch_par(&x, dim, &classes).unwrap();
                    let mut grad = vec![f32::NAN; x.len()];
                    let got = loss
                        .in_batch_with_grad_par(&x, dim, &classes, &mut grad)
                        .unwrap();
                    // Once per shape: a second call, over other contents, gives the same bits.
                    let again = (c == 0).then(|| {
                        let mut again = vec![0.5; x.len()];
                        loss.in_batch_with_grad_par(&x, dim, &classes, &mut again)
                            .unwrap();
                        again
                    });
                    (forward, got, grad, again)
                });
                same_loss(&what, got, serial.0, split);
                same_loss(&what, forward, serial.0, split);
                if let Some(again) = again {
                    assert_eq!(bits(&grad), bits(&again), "{what}: not deterministic");
                }
                if !split {
                    assert_eq!(bits(&grad), bits(&serial.1), "{what}: gradient");
                }
                if split {
                    near_serial(&what, &grad, &serial.1, n);
                }
                if let Some(out) = &out {
                    assert_close(&what, got, out.loss, rtol(dim), out.loss_scale);
                    for (k, ((&g, &w), &s)) in
                        grad.iter().zip(&out.gx).zip(&out.gx_scale).enumerate()
                    {
                        assert_close(&format!("{what} grad[{k}]"), g, w, rtol(dim), s + w.abs());
                    }
                }
            }
        }
    }
}

/// (N, M, d): above the threshold with 3 column blocks of `y` (M not a multiple of 64),
/// and below it, with empty sides.
const CROSS: [(usize, usize, usize); 5] = [
    (70, 150, 200),
    (130, 65, 257),
    (1, 1, 5),
    (2, 70, 9),
    (0, 3, 4),
];

#[test]
fn cross_batch_par_equals_serial_and_the_oracle() {
    let mut rng = Rng(12);
    for (case, &(n, m, dim)) in CROSS.iter().enumerate() {
        let x = data(&mut rng, n * dim);
        let y = data(&mut rng, m * dim);
        let xc: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        let yc: Vec<u32> = (0..m).map(|_| rng.below(3) as u32).collect();
        let split = parallel(n * m, dim, m);
        for (c, o) in configs(dim).iter().enumerate() {
            if o.red == Red::Mean && n * m == 0 {
                continue;
            }
            let loss = loss_of(o);
            let serial = loss
                .cross_batch_with_grad_vec(&x, &y, dim, &xc, &yc)
                .unwrap();
            let out = (!split || (case == 0 && c == 1))
                .then(|| oracle::evaluate(o, &x, &y, dim, &oracle::across_pairs(&xc, &yc), false));
            let pools: &[usize] = if split { &[2 + c % 2] } else { &[2, 3] };
            for &threads in pools {
                let what = format!("N={n} M={m} d={dim} config {c}, {threads} threads");
                let (forward, got, gx, gy) = pool(threads).install(|| {
                    let forward = loss.cross_batch_par(&x, &y, dim, &xc, &yc).unwrap();
                    let (mut gx, mut gy) = (vec![f32::NAN; x.len()], vec![f32::NAN; y.len()]);
                    let got = loss
                        .cross_batch_with_grad_par(&x, &y, dim, &xc, &yc, &mut gx, &mut gy)
                        .unwrap();
                    (forward, got, gx, gy)
                });
                same_loss(&what, got, serial.0, split);
                same_loss(&what, forward, serial.0, split);
                // `grad_y`: each row from one task, in the serial order.
                assert_eq!(bits(&gy), bits(&serial.2), "{what}: grad_y");
                if split {
                    near_serial(&what, &gx, &serial.1, m);
                } else {
                    assert_eq!(bits(&gx), bits(&serial.1), "{what}: grad_x");
                }
                if let Some(out) = &out {
                    assert_close(&what, got, out.loss, rtol(dim), out.loss_scale);
                    for (k, ((&g, &w), &s)) in gx.iter().zip(&out.gx).zip(&out.gx_scale).enumerate()
                    {
                        assert_close(&format!("{what} gx[{k}]"), g, w, rtol(dim), s + w.abs());
                    }
                }
            }
        }
    }
}

/// Hard-pair mining (a thresholds pass, then the loss) splits as well.
#[test]
fn mining_par_equals_serial() {
    let mut rng = Rng(13);
    let (n, dim) = (150, 100);
    let x = data(&mut rng, n * dim);
    let classes: Vec<u32> = (0..n).map(|_| rng.below(5) as u32).collect();
    let y = data(&mut rng, n * dim);
    for loss in [
        ContrastiveLoss::sentence_transformers_online(),
        ContrastiveLoss::new(8.0).with_mining(Mining::HardPairs),
    ] {
        let serial = loss.in_batch_with_grad_vec(&x, dim, &classes).unwrap();
        let cross = loss
            .cross_batch_with_grad_vec(&x, &y, dim, &classes, &classes)
            .unwrap();
        let (got, grad, got_cross, gy) = pool(2).install(|| {
            let mut grad = vec![0.0; x.len()];
            let got = loss
                .in_batch_with_grad_par(&x, dim, &classes, &mut grad)
                .unwrap();
            let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; y.len()]);
            let got_cross = loss
                .cross_batch_with_grad_par(&x, &y, dim, &classes, &classes, &mut gx, &mut gy)
                .unwrap();
            (got, grad, got_cross, gy)
        });
        same_loss("mining in-batch", got, serial.0, true);
        same_loss("mining cross", got_cross, cross.0, true);
        assert_eq!(bits(&gy), bits(&cross.2), "mining: grad_y");
        near_serial("mining", &grad, &serial.1, n);
    }
}

#[test]
fn nan_in_gives_nan_out() {
    let mut rng = Rng(14);
    for (n, dim) in [(130, 129), (5, 4)] {
        let mut x = data(&mut rng, n * dim);
        x[3 * dim + 1] = f32::NAN;
        let classes: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        for loss in [
            ContrastiveLoss::new(1.0),
            ContrastiveLoss::pml(),
            ContrastiveLoss::sentence_transformers(),
        ] {
            let serial = loss.in_batch_with_grad_vec(&x, dim, &classes).unwrap();
            let (got, grad) = pool(2).install(|| {
                let mut grad = vec![0.0; x.len()];
                let got = loss
                    .in_batch_with_grad_par(&x, dim, &classes, &mut grad)
                    .unwrap();
                (got, grad)
            });
            assert!(got.is_nan() && serial.0.is_nan(), "N={n}: loss {got}");
            // NaN exactly where the serial gradient has it.
            let nan = |g: &[f32]| g.iter().map(|v| v.is_nan()).collect::<Vec<_>>();
            assert!(grad[3 * dim..4 * dim].iter().any(|v| v.is_nan()), "N={n}");
            assert_eq!(nan(&grad), nan(&serial.1), "N={n}: NaN pattern");
        }
    }
}

#[test]
fn every_bad_input_is_the_serial_error() {
    let loss = ContrastiveLoss::new(1.0);
    let mean = loss.with_reduction(Reduction::Mean);
    let (n, dim) = (130, 129);
    let x = vec![0.5; n * dim];
    let classes = vec![0u32; n];
    pool(2).install(|| {
        let mut g = vec![0.0; x.len()];
        let mut short = vec![0.0; x.len() - 1];
        let e = |r: Result<f32, Error>| r.unwrap_err();
        assert_eq!(e(loss.in_batch_par(&x, 0, &classes)), Error::ZeroDimension);
        assert_eq!(
            e(loss.in_batch_par(&x[1..], dim, &classes)),
            e(loss.in_batch_vec(&x[1..], dim, &classes))
        );
        assert_eq!(
            e(loss.in_batch_par(&x, dim, &classes[1..])),
            e(loss.in_batch_vec(&x, dim, &classes[1..]))
        );
        assert_eq!(
            e(loss.in_batch_with_grad_par(&x, dim, &classes, &mut short)),
            Error::LengthMismatch {
                argument: "grad",
                expected: x.len(),
                found: x.len() - 1
            }
        );
        assert_eq!(
            e(mean.in_batch_par(&x[..dim], dim, &classes[..1])),
            e(mean.in_batch_vec(&x[..dim], dim, &classes[..1]))
        );
        let bad = ContrastiveLoss::new(-1.0);
        assert_eq!(
            e(bad.in_batch_with_grad_par(&x, dim, &classes, &mut g)),
            e(bad.in_batch_vec(&x, dim, &classes))
        );
        let y = &x[..dim * 70];
        let mut gy = vec![0.0; y.len()];
        assert_eq!(
            e(loss.cross_batch_par(&x, &y[1..], dim, &classes, &classes[..70])),
            e(loss.cross_batch_vec(&x, &y[1..], dim, &classes, &classes[..70]))
        );
        assert_eq!(
            e(loss.cross_batch_par(&x, y, dim, &classes, &classes[..69])),
            e(loss.cross_batch_vec(&x, y, dim, &classes, &classes[..69]))
        );
        assert_eq!(
            e(loss.cross_batch_with_grad_par(
                &x,
                y,
                dim,
                &classes,
                &classes[..70],
                &mut g,
                &mut short
            )),
            Error::LengthMismatch {
                argument: "grad_y",
                expected: y.len(),
                found: x.len() - 1
            }
        );
        // An error leaves the gradients untouched.
        g.fill(7.0);
        gy.fill(7.0);
        let _ =
            bad.cross_batch_with_grad_par(&x, y, dim, &classes, &classes[..70], &mut g, &mut gy);
        assert!(g.iter().chain(&gy).all(|&v| v == 7.0));
        assert_eq!(
            e(mean.cross_batch_par(&x[..0], y, dim, &[], &classes[..70])),
            e(mean.cross_batch_vec(&x[..0], y, dim, &[], &classes[..70]))
        );
    });
}

/// A pool of one thread runs the serial call (the same bits at any size); with each
/// named backend the parallel call agrees with that backend's serial call.
#[test]
fn one_thread_is_serial_and_backends_are_kept() {
    let mut rng = Rng(15);
    let (n, dim) = (130, 129);
    let x = data(&mut rng, n * dim);
    let classes: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
    let loss = ContrastiveLoss::pml();
    let serial = loss.in_batch_with_grad_vec(&x, dim, &classes).unwrap();
    let (got, grad) = pool(1).install(|| {
        let mut grad = vec![0.0; x.len()];
        let got = loss
            .in_batch_with_grad_par(&x, dim, &classes, &mut grad)
            .unwrap();
        (got, grad)
    });
    assert_eq!(got.to_bits(), serial.0.to_bits());
    assert_eq!(bits(&grad), bits(&serial.1));
    for backend in Backend::available() {
        let loss = ContrastiveLoss::new(9.0).with_backend(backend);
        let serial = loss.in_batch_with_grad_vec(&x, dim, &classes).unwrap();
        let (got, grad) = pool(2).install(|| {
            let mut grad = vec![0.0; x.len()];
            let got = loss
                .in_batch_with_grad_par(&x, dim, &classes, &mut grad)
                .unwrap();
            (got, grad)
        });
        same_loss(&format!("{backend:?}"), got, serial.0, true);
        near_serial(&format!("{backend:?}"), &grad, &serial.1, n);
    }
}
