//! The `_par` softmax losses (feature `rayon`) against the serial calls and the float64
//! oracle of tests/common/softmax_oracle.rs, in pools of 2 and 3 threads: batches above
//! the parallel threshold (`N²·dim ≥ 2²¹`, `N` not a multiple of the tile height of 6)
//! and below it (N = 1, 2, 7, 65: the serial call, the same bits), with and without
//! gradients; saturated rows; NaN in, NaN out; every bad input the serial call's error.
//! Host only (threads).
//!
//! `cargo test --features rayon --test rayon_softmax`

#![cfg(all(feature = "rayon", not(target_family = "wasm")))]

mod common;

use common::Rng;
use common::softmax_oracle::{self as oracle, check_all};
use contrastive::{Backend, Error, InfoNceLoss, NoPositive, NtXentLoss, SupConLoss};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Whether a call on `n` rows of `dim` takes the parallel path (the documented
/// threshold: `N²·dim ≥ 2²¹`, more than one block of 6 rows).
fn parallel(n: usize, dim: usize) -> bool {
    n * n * dim >= 1 << 21 && n > 6
}

/// Batch shapes: below the threshold (the serial call), and above it (split), with `N`
/// not a multiple of 6 and odd and even row lengths.
const SHAPES: [(usize, usize); 6] = [(1, 5), (2, 3), (7, 9), (65, 33), (301, 24), (353, 17)];

fn classes(rng: &mut Rng, n: usize, k: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(k) as u32 * 7919).collect()
}

/// `a` and `b` within `ulps` units in the last place (or both NaN).
#[track_caller]
fn ulps(what: &str, a: f32, b: f32, ulps: i64) {
    let d = (a.to_bits() as i64 - b.to_bits() as i64).abs();
    assert!(
        d <= ulps || (a.is_nan() && b.is_nan()),
        "{what}: parallel {a:e}, serial {b:e}"
    );
}

#[track_caller]
fn same_bits(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (k, (p, s)) in a.iter().zip(b).enumerate() {
        assert_eq!(
            p.to_bits(),
            s.to_bits(),
            "{what} [{k}]: parallel {p:e}, serial {s:e}"
        );
    }
}

#[test]
fn supcon_par_is_the_serial_call_bit_for_bit_and_meets_the_oracle() {
    let mut rng = Rng(21);
    for (case, &(n, d)) in SHAPES.iter().enumerate() {
        let x = rng.vec(n * d);
        let lab = classes(&mut rng, n, 1 + n / 4);
        let (t, bt, mode, name) = [
            (0.1f32, 0.1f32, NoPositive::Exclude, "exclude"),
            (0.5, 0.07, NoPositive::Zero, "zero"),
        ][case % 2];
        let loss = SupConLoss::new(t)
            .with_base_temperature(bt)
            .with_no_positive(mode);
        let o = oracle::supcon(&x, d, &lab, f64::from(t), f64::from(bt), name);
        let g = oracle::chain(&x, &x, d, &o, true);
        let s = f64::from(1.0 / t).max(f64::from(1.0 / bt));
        let serial = loss.forward_with_grad_vec(&x, d, &lab).unwrap();
        {
            let threads = 2 + case % 2;
            let what = format!("supcon n={n} d={d} {name} threads={threads}");
            let (l, lf, grad) = pool(threads).install(|| {
                let mut grad = vec![f32::NAN; x.len()];
                let l = loss.forward_with_grad_par(&x, d, &lab, &mut grad).unwrap();
                (l, loss.forward_par(&x, d, &lab).unwrap(), grad)
            });
            check_all(&what, s, d, l, &o, &g, &grad, None);
            assert_eq!(l.to_bits(), serial.loss.to_bits(), "{what}");
            assert_eq!(lf.to_bits(), serial.loss.to_bits(), "{what}");
            same_bits(&what, &grad, &serial.grad);
        }
    }
}

#[test]
fn ntxent_par_meets_the_oracle_and_the_serial_call() {
    let mut rng = Rng(22);
    for (case, &(n, d)) in SHAPES.iter().enumerate() {
        let x = rng.vec(n * d);
        let lab = classes(&mut rng, n, 1 + n / 2);
        let loss = NtXentLoss::pml();
        let o = oracle::ntxent(&x, d, &lab, 0.07);
        let g = oracle::chain(&x, &x, d, &o, true);
        let serial = loss.forward_with_grad_vec(&x, d, &lab).unwrap();
        {
            let threads = 3 - case % 2;
            let what = format!("ntxent n={n} d={d} threads={threads}");
            let (l, lf, grad, again) = pool(threads).install(|| {
                let mut grad = vec![f32::NAN; x.len()];
                let l = loss.forward_with_grad_par(&x, d, &lab, &mut grad).unwrap();
                let lf = loss.forward_par(&x, d, &lab).unwrap();
                (l, lf, grad, loss.forward_par(&x, d, &lab).unwrap())
            });
            check_all(&what, 1.0 / 0.07, d, l, &o, &g, &grad, None);
            // The gradient: the serial bits. The loss: one f64 sum per task.
            same_bits(&what, &grad, &serial.grad);
            assert_eq!(l.to_bits(), lf.to_bits(), "{what}");
            assert_eq!(lf.to_bits(), again.to_bits(), "{what}: not deterministic");
            if parallel(n, d) {
                ulps(&what, l, serial.loss, 1);
            } else {
                assert_eq!(l.to_bits(), serial.loss.to_bits(), "{what}");
            }
        }
    }
}

#[test]
fn infonce_par_meets_the_oracle_and_the_serial_call() {
    let mut rng = Rng(23);
    for &(n, d) in &SHAPES {
        let x = rng.vec(n * d);
        // Keys near their queries, so that the loss is neither trivial nor saturated.
        let y: Vec<f32> = x.iter().map(|&v| v + 0.5 * rng.unit()).collect();
        for (threads, scale, symmetric) in [(2, 20.0f32, false), (3, 100.0, true)] {
            let mut loss = InfoNceLoss::new(scale);
            loss.symmetric = symmetric;
            let o = oracle::infonce(&x, &y, d, f64::from(scale), symmetric);
            let g = oracle::chain(&x, &y, d, &o, false);
            let serial = loss.forward_with_grad_vec(&x, &y, d).unwrap();
            {
                let what = format!("infonce n={n} d={d} sym={symmetric} threads={threads}");
                let run = || {
                    let (mut gx, mut gy) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
                    let l = loss
                        .forward_with_grad_par(&x, &y, d, &mut gx, &mut gy)
                        .unwrap();
                    (l, loss.forward_par(&x, &y, d).unwrap(), gx, gy)
                };
                let p = pool(threads);
                let (l, lf, gx, gy) = p.install(run);
                check_all(&what, f64::from(scale), d, l, &o, &g, &gx, Some(&gy));
                assert_eq!(l.to_bits(), lf.to_bits(), "{what}");
                // Deterministic for a given number of threads.
                let (l2, _, gx2, gy2) = p.install(run);
                assert_eq!(l.to_bits(), l2.to_bits(), "{what}");
                same_bits(&what, &gx, &gx2);
                same_bits(&what, &gy, &gy2);
                if !parallel(n, d) {
                    assert_eq!(l.to_bits(), serial.loss.to_bits(), "{what}");
                    same_bits(&what, &gx, &serial.grad_x);
                    same_bits(&what, &gy, &serial.grad_y);
                } else if !symmetric {
                    // One direction: every row statistic is the serial one.
                    assert_eq!(l.to_bits(), serial.loss.to_bits(), "{what}");
                    same_bits(&what, &gx, &serial.grad_x);
                } else {
                    ulps(&what, l, serial.loss, 1);
                }
            }
        }
    }
}

/// Saturated rows in a split batch: at scale 100, a query pointing at a key other than
/// its own (a logit gap of up to 200, beyond f32's `e^−87`), and queries whose own key is
/// far ahead of the others (a loss of a few `e^−100`). Finite, right losses and
/// gradients within the oracle's bound, on both sides.
#[test]
fn saturated_rows_in_a_split_batch_meet_the_oracle() {
    let (n, d) = (301, 24);
    assert!(parallel(n, d));
    let mut rng = Rng(24);
    let mut x = vec![0.0f32; n * d];
    let mut y = vec![0.0f32; n * d];
    for i in 0..n {
        // Most rows one-hot on their own axis: the own key is 1 in cosine, the others 0.
        x[i * d + i % d] = 1.0;
        y[i * d + i % d] = 1.0;
        for k in 0..d {
            y[i * d + k] += 1e-3 * rng.unit();
        }
    }
    // Row 5 points away from its own key and at key 6.
    for k in 0..d {
        x[5 * d + k] = -y[5 * d + k] + y[6 * d + k];
    }
    for symmetric in [false, true] {
        let mut loss = InfoNceLoss::new(100.0);
        loss.symmetric = symmetric;
        let o = oracle::infonce(&x, &y, d, 100.0, symmetric);
        let g = oracle::chain(&x, &y, d, &o, false);
        let (l, gx, gy) = pool(2).install(|| {
            let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let l = loss
                .forward_with_grad_par(&x, &y, d, &mut gx, &mut gy)
                .unwrap();
            (l, gx, gy)
        });
        let what = format!("saturated infonce sym={symmetric}");
        assert!(l.is_finite() && gx.iter().chain(&gy).all(|v| v.is_finite()));
        check_all(&what, 100.0, d, l, &o, &g, &gx, Some(&gy));
    }
    // SupCon and NT-Xent at τ = 0.01: rows of one class identical (cosine 1 against 0).
    let lab: Vec<u32> = (0..n as u32).map(|i| i % 50).collect();
    let z: Vec<f32> = (0..n * d)
        .map(|k| if k % d == (k / d) % 50 % d { 1.0 } else { 0.0 })
        .collect();
    let tau = 0.01f32;
    let o = oracle::supcon(&z, d, &lab, f64::from(tau), f64::from(tau), "exclude");
    let g = oracle::chain(&z, &z, d, &o, true);
    let loss = SupConLoss::new(tau);
    let (l, grad) = pool(2).install(|| {
        let mut grad = vec![0.0; z.len()];
        (
            loss.forward_with_grad_par(&z, d, &lab, &mut grad).unwrap(),
            grad,
        )
    });
    check_all("saturated supcon", 1.0 / 0.01, d, l, &o, &g, &grad, None);
    let o = oracle::ntxent(&z, d, &lab, f64::from(tau));
    let g = oracle::chain(&z, &z, d, &o, true);
    let loss = NtXentLoss::new(tau);
    let (l, grad) = pool(2).install(|| {
        let mut grad = vec![0.0; z.len()];
        (
            loss.forward_with_grad_par(&z, d, &lab, &mut grad).unwrap(),
            grad,
        )
    });
    assert!(l.is_finite() && grad.iter().all(|v| v.is_finite()));
    check_all("saturated ntxent", 1.0 / 0.01, d, l, &o, &g, &grad, None);
}

#[test]
fn nan_in_gives_nan_out_in_a_split_batch() {
    let (n, d) = (301, 24);
    assert!(parallel(n, d));
    let mut rng = Rng(25);
    let mut x = rng.vec(n * d);
    let y = rng.vec(n * d);
    x[200 * d + 3] = f32::NAN;
    let lab: Vec<u32> = (0..n as u32).map(|i| i % 7).collect();
    pool(2).install(|| {
        let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        for loss in [InfoNceLoss::clip(20.0), InfoNceLoss::mnrl()] {
            let l = loss
                .forward_with_grad_par(&x, &y, d, &mut gx, &mut gy)
                .unwrap();
            assert!(l.is_nan() && gx[200 * d].is_nan() && gy[200 * d].is_nan());
            assert!(loss.forward_par(&x, &y, d).unwrap().is_nan());
        }
        let mut g = vec![0.0; x.len()];
        let l = SupConLoss::pml()
            .forward_with_grad_par(&x, d, &lab, &mut g)
            .unwrap();
        assert!(l.is_nan() && g[200 * d + 3].is_nan());
        let l = NtXentLoss::pml()
            .forward_with_grad_par(&x, d, &lab, &mut g)
            .unwrap();
        assert!(l.is_nan() && g[200 * d + 3].is_nan());
        // The authors' original NaN for an anchor without a positive: all NaN.
        let mut lone = lab.clone();
        lone[0] = 999;
        let nan = SupConLoss::khosla().with_no_positive(NoPositive::Nan);
        let xs = rng.vec(n * d);
        let l = nan.forward_with_grad_par(&xs, d, &lone, &mut g).unwrap();
        assert!(l.is_nan() && g.iter().all(|v| v.is_nan()));
    });
}

#[test]
fn degenerate_split_batches_are_decided_as_serially() {
    let (n, d) = (301, 24);
    let mut rng = Rng(26);
    let x = rng.vec(n * d);
    pool(2).install(|| {
        let mut g = vec![1.0; x.len()];
        // No positive pair, then no negative pair: 0 with gradient 0.
        let distinct: Vec<u32> = (0..n as u32).collect();
        let l = NtXentLoss::pml()
            .forward_with_grad_par(&x, d, &distinct, &mut g)
            .unwrap();
        assert!(l == 0.0 && g.iter().all(|&v| v == 0.0));
        g.fill(1.0);
        let l = NtXentLoss::pml()
            .forward_with_grad_par(&x, d, &vec![3; n], &mut g)
            .unwrap();
        assert!(l == 0.0 && g.iter().all(|&v| v == 0.0));
        g.fill(1.0);
        let l = SupConLoss::pml()
            .forward_with_grad_par(&x, d, &distinct, &mut g)
            .unwrap();
        assert!(l == 0.0 && g.iter().all(|&v| v == 0.0));
    });
}

#[test]
fn bad_input_is_the_serial_calls_error() {
    let mut rng = Rng(27);
    let (n, d) = (301, 24);
    let x = rng.vec(n * d);
    let lab: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
    let mut s = vec![0.0; SupConLoss::pml().scratch_len(n, d)];
    pool(2).install(|| {
        let mut g = vec![0.0; x.len()];
        let mut short = vec![0.0; x.len() - 1];
        // (x, dim, classes) cases: dim 0, not a multiple, empty, class count.
        let cases: [(&[f32], usize, &[u32]); 4] = [
            (&x, 0, &lab),
            (&x[1..], d, &lab),
            (&[], d, &[]),
            (&x, d, &lab[1..]),
        ];
        for (xs, dim, cl) in cases {
            for t in [0.1f32, 0.0, f32::NAN] {
                let sc = SupConLoss::new(t);
                let want = sc.forward(xs, dim, cl, &mut s).unwrap_err();
                assert_eq!(sc.forward_par(xs, dim, cl).unwrap_err(), want);
                let gs = &mut g[..xs.len()];
                assert_eq!(sc.forward_with_grad_par(xs, dim, cl, gs).unwrap_err(), want);
                let nt = NtXentLoss::new(t);
                let want = nt.forward(xs, dim, cl, &mut s).unwrap_err();
                assert_eq!(nt.forward_par(xs, dim, cl).unwrap_err(), want);
                let gs = &mut g[..xs.len()];
                assert_eq!(nt.forward_with_grad_par(xs, dim, cl, gs).unwrap_err(), want);
            }
        }
        let base = SupConLoss::pml().with_base_temperature(-1.0);
        assert_eq!(
            base.forward_par(&x, d, &lab).unwrap_err(),
            base.forward(&x, d, &lab, &mut s).unwrap_err()
        );
        // A gradient buffer of the wrong length.
        let want = Error::LengthMismatch {
            argument: "grad",
            expected: x.len(),
            found: x.len() - 1,
        };
        let e = SupConLoss::pml()
            .forward_with_grad_par(&x, d, &lab, &mut short)
            .unwrap_err();
        assert_eq!(e, want);
        let e = NtXentLoss::pml()
            .forward_with_grad_par(&x, d, &lab, &mut short)
            .unwrap_err();
        assert_eq!(e, want);
        // InfoNCE: y's length, the scale, the gradient buffers.
        let y = rng.vec(n * d);
        let mut gy = vec![0.0; x.len()];
        let mut si = vec![0.0; InfoNceLoss::mnrl().scratch_len(n, d)];
        for (loss, ys) in [
            (InfoNceLoss::mnrl(), &y[1..]),
            (InfoNceLoss::clip(f32::INFINITY), &y[..]),
            (InfoNceLoss::clip(f32::NAN), &y[..]),
        ] {
            // Compared as text: a NaN scale in the error is not equal to itself.
            let want = format!("{:?}", loss.forward(&x, ys, d, &mut si).unwrap_err());
            let e = loss.forward_par(&x, ys, d).unwrap_err();
            assert_eq!(format!("{e:?}"), want);
            let e = loss
                .forward_with_grad_par(&x, ys, d, &mut g, &mut gy)
                .unwrap_err();
            assert_eq!(format!("{e:?}"), want);
        }
        let loss = InfoNceLoss::clip(20.0);
        let want = loss
            .forward_with_grad(&x, &y, d, &mut short, &mut gy, &mut si)
            .unwrap_err();
        let e = loss
            .forward_with_grad_par(&x, &y, d, &mut short, &mut gy)
            .unwrap_err();
        assert_eq!(e, want);
        let want = loss
            .forward_with_grad(&x, &y, d, &mut g, &mut short, &mut si)
            .unwrap_err();
        let e = loss
            .forward_with_grad_par(&x, &y, d, &mut g, &mut short)
            .unwrap_err();
        assert_eq!(e, want);
        // A backend this CPU lacks, if any: the serial call's error.
        for b in Backend::ALL {
            if b.is_available() {
                continue;
            }
            let sc = SupConLoss::pml().with_backend(b);
            let want = sc.forward(&x, d, &lab, &mut s).unwrap_err();
            assert_eq!(sc.forward_par(&x, d, &lab).unwrap_err(), want);
        }
    });
}

/// Every backend of this CPU, split: the same bits as its serial call (SupCon).
#[test]
fn every_backend_splits_to_its_serial_bits() {
    let (n, d) = (301, 24);
    let mut rng = Rng(28);
    let x = rng.vec(n * d);
    let lab: Vec<u32> = (0..n as u32).map(|i| i % 9).collect();
    for b in Backend::available() {
        let loss = SupConLoss::pml().with_backend(b);
        let serial = loss.forward_with_grad_vec(&x, d, &lab).unwrap();
        let (l, grad) = pool(2).install(|| {
            let mut grad = vec![0.0; x.len()];
            (
                loss.forward_with_grad_par(&x, d, &lab, &mut grad).unwrap(),
                grad,
            )
        });
        assert_eq!(l.to_bits(), serial.loss.to_bits(), "{}", b.name());
        same_bits(b.name(), &grad, &serial.grad);
    }
}
