//! Every backend's NT-Xent, SupCon and InfoNCE/CLIP against the f64 oracle
//! (`tests/common/softmax_oracle.rs`) over batch sizes 1 to 70 and odd row lengths up to
//! 129 (strided), from misaligned starts; and the edge cases: saturated rows, NaN, zero
//! rows, no positives, bad input.

use crate::common;

use common::Rng;
use common::softmax_oracle::{self as oracle, check_all};
use common::sweep::{OFFSETS, batch_shapes, placed};
use contrastive::{Backend, Error, InfoNceLoss, NoPositive, NtXentLoss, SupConLoss};

/// `len` values in [-1, 1), `offset` floats into a fresh buffer (see `sweep::placed`).
fn misaligned(rng: &mut Rng, len: usize, offset: usize) -> Vec<f32> {
    placed(&rng.vec(len), offset)
}

fn classes(rng: &mut Rng, n: usize, k: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(k) as u32 * 7919).collect()
}

#[test]
fn infonce_matches_the_oracle_on_every_backend() {
    let mut rng = Rng(11);
    for (case, (n, d)) in batch_shapes().into_iter().enumerate() {
        let off = 1 + case % 3;
        let xb = misaligned(&mut rng, n * d, off);
        let x = &xb[off..];
        // Keys near their queries, so that the loss is neither trivial nor saturated.
        let y: Vec<f32> = x.iter().map(|&v| v + 0.5 * rng.unit()).collect();
        // The two presets' shapes in turn: MNRL (scale 20, one direction), CLIP at 100.
        let configs = [(20.0f32, false), (100.0, true)];
        for (scale, symmetric) in [configs[case % 2]] {
            let o = oracle::infonce(x, &y, d, f64::from(scale), symmetric);
            let g = oracle::chain(x, &y, d, &o, false);
            for backend in Backend::available() {
                let mut loss = InfoNceLoss::new(scale).with_backend(backend);
                loss.symmetric = symmetric;
                let what = format!(
                    "infonce n={n} d={d} scale={scale} sym={symmetric} on {}",
                    backend.name()
                );
                let mut scratch = vec![0.0; loss.scratch_len(n, d)];
                let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
                let l = loss
                    .forward_with_grad(x, &y, d, &mut gx, &mut gy, &mut scratch)
                    .unwrap();
                let s = f64::from(scale);
                check_all(&what, s, d, l, &o, &g, &gx, Some(&gy));
            }
        }
    }
}

#[test]
fn supcon_matches_the_oracle_on_every_backend() {
    let mut rng = Rng(12);
    for (case, (n, d)) in batch_shapes().into_iter().enumerate() {
        let off = case % OFFSETS;
        let xb = misaligned(&mut rng, n * d, off);
        let x = &xb[off..];
        let lab = classes(&mut rng, n, 1 + n / 3);
        for (t, bt, mode, name) in [
            (0.1f32, 0.1f32, NoPositive::Exclude, "exclude"),
            (0.5, 0.07, NoPositive::Zero, "zero"),
        ] {
            let o = oracle::supcon(x, d, &lab, f64::from(t), f64::from(bt), name);
            let g = oracle::chain(x, x, d, &o, true);
            let s = f64::from(1.0 / t).max(f64::from(1.0 / bt));
            for backend in Backend::available() {
                let loss = SupConLoss::new(t)
                    .with_base_temperature(bt)
                    .with_no_positive(mode)
                    .with_backend(backend);
                let what = format!(
                    "supcon n={n} d={d} t={t} bt={bt} {name} on {}",
                    backend.name()
                );
                let mut scratch = vec![0.0; loss.scratch_len(n, d)];
                let mut grad = vec![0.0; x.len()];
                let l = loss
                    .forward_with_grad(x, d, &lab, &mut grad, &mut scratch)
                    .unwrap();
                check_all(&what, s, d, l, &o, &g, &grad, None);
            }
        }
    }
}

#[test]
fn ntxent_matches_the_oracle_on_every_backend() {
    let mut rng = Rng(13);
    for (case, (n, d)) in batch_shapes().into_iter().enumerate() {
        let off = case % OFFSETS;
        let xb = misaligned(&mut rng, n * d, off);
        let x = &xb[off..];
        let lab = classes(&mut rng, n, 1 + n / 2);
        for t in [0.07f32] {
            let o = oracle::ntxent(x, d, &lab, f64::from(t));
            let g = oracle::chain(x, x, d, &o, true);
            let s = f64::from(1.0 / t);
            for backend in Backend::available() {
                let loss = NtXentLoss::new(t).with_backend(backend);
                let what = format!("ntxent n={n} d={d} t={t} on {}", backend.name());
                let mut scratch = vec![0.0; loss.scratch_len(n, d)];
                let mut grad = vec![0.0; x.len()];
                let l = loss
                    .forward_with_grad(x, d, &lab, &mut grad, &mut scratch)
                    .unwrap();
                assert_eq!(l, loss.forward(x, d, &lab, &mut scratch).unwrap(), "{what}");
                check_all(&what, s, d, l, &o, &g, &grad, None);
            }
        }
    }
}

/// Saturated wrong rows at scale 100: one-hot queries whose own key points away (logit
/// −100) and another key points at them, up to a gap of 200, where `e^−200` underflows
/// f32 entirely. The loss is the gap (200 per row at most), never `0 − log 0` or NaN.
/// InfoNCE at scale 100, one- and two-sided, on every backend: a finite loss and gradient
/// within the oracle's bounds. Returns the oracle's two losses.
fn infonce_100_on_every_backend(what: &str, x: &[f32], y: &[f32], d: usize) -> [f64; 2] {
    [false, true].map(|symmetric| {
        let o = oracle::infonce(x, y, d, 100.0, symmetric);
        let g = oracle::chain(x, y, d, &o, false);
        for backend in Backend::available() {
            let mut loss = InfoNceLoss::new(100.0).with_backend(backend);
            loss.symmetric = symmetric;
            let what = format!("{what} sym={symmetric} on {}", backend.name());
            let mut scratch = vec![0.0; loss.scratch_len(x.len() / d, d)];
            let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let l = loss
                .forward_with_grad(x, y, d, &mut gx, &mut gy, &mut scratch)
                .unwrap();
            assert!(l.is_finite(), "{what}: {l}");
            assert!(gx.iter().chain(&gy).all(|v| v.is_finite()), "{what}");
            check_all(&what, 100.0, d, l, &o, &g, &gx, Some(&gy));
        }
        o.loss
    })
}

#[test]
fn logit_gaps_of_200_give_finite_right_losses_and_gradients() {
    let (n, d) = (5, 7);
    let mut x = vec![0.0f32; n * d];
    let mut y = vec![0.0f32; n * d];
    for i in 0..n {
        x[i * d + i] = 1.0;
        y[i * d + i] = -1.0;
    }
    // y_{i+1} also gets +e_i: row i's logits are −100 (own key) and +100/√2 (the next
    // one); the oracle decides the exact values.
    for i in 0..n {
        let j = (i + 1) % n;
        y[j * d + i] = 1.0;
    }
    for loss in infonce_100_on_every_backend("gap", &x, &y, d) {
        assert!(loss > 100.0);
    }
    // The exact gap of 200: x0 = e0, x1 = e1, y0 = −e0, y1 = +e0. Row 0's logits are
    // (−100, +100): its loss is 200 + log1p(e^−200) = 200; row 1's are (0, 0): ln 2.
    let mut xs = vec![0.0f32; 2 * d];
    xs[0] = 1.0;
    xs[d + 1] = 1.0;
    let mut ys = vec![0.0f32; 2 * d];
    ys[0] = -1.0;
    ys[d] = 1.0;
    let want = (200.0 + 2f64.ln()) / 2.0;
    for backend in Backend::available() {
        let loss = InfoNceLoss::new(100.0).with_backend(backend);
        let mut scratch = vec![0.0; loss.scratch_len(2, d)];
        let (mut gx, mut gy) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        let l = loss
            .forward_with_grad(&xs, &ys, d, &mut gx, &mut gy, &mut scratch)
            .unwrap();
        assert!(
            (f64::from(l) - want).abs() <= 4.0 * common::U * want,
            "{}: {l}",
            backend.name()
        );
        // Row 0's softmax is one-hot on the wrong key: ∂L/∂L₀₁ = ½, ∂L/∂L₀₀ = −½.
        assert!(
            gx.iter().chain(&gy).all(|v| v.is_finite()),
            "{}",
            backend.name()
        );
    }
}

#[test]
fn saturated_right_rows_give_tiny_exact_losses() {
    // x_i = y_i = e_i at scale 100: off-diagonal logits 0, diagonal 100: per-row loss
    // log1p((n − 1)·e^−100) ≈ 1.5e-43, a subnormal, not 0 − 0.
    let (n, d) = (4, 4);
    let mut x = vec![0.0f32; n * d];
    for i in 0..n {
        x[i * d + i] = 1.0;
    }
    let want = ((n - 1) as f64 * (-100f64).exp()).ln_1p();
    for backend in Backend::available() {
        let loss = InfoNceLoss::clip(100.0).with_backend(backend);
        let mut scratch = vec![0.0; loss.scratch_len(n, d)];
        let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let l = loss
            .forward_with_grad(&x, &x, d, &mut gx, &mut gy, &mut scratch)
            .unwrap();
        assert!(l > 0.0, "{}: {l:e}", backend.name());
        assert!(
            (f64::from(l) - want).abs() <= 2e-45,
            "{}: {l:e} vs {want:e}",
            backend.name()
        );
        assert!(
            gx.iter()
                .chain(&gy)
                .all(|v| v.is_finite() && v.abs() < 1e-38)
        );
    }
}

/// Saturated rows whose partners have norms near 1e24: `∂L/∂cos` is near 1e-19 and
/// `1/‖y‖` near 1e-24, so their product (the coefficient of a raw row) is an f32
/// subnormal with a few bits left, while the gradient it feeds is an ordinary 1e-19.
/// Found by fuzzing (at 1e-25 and 1e-18).
#[test]
fn saturated_rows_against_rows_of_huge_norm_keep_their_gradient_bound() {
    let (n, d) = (3, 4);
    let mut x = vec![0.0f32; n * d];
    let mut y = vec![0.0f32; n * d];
    for i in 0..n {
        for k in 0..d {
            // Each row mostly along e_i, a little along the others: cosines of about
            // 0.99 on the diagonal and 0.3 off it, a logit gap near 70 at scale 100.
            let along = if k == i { 1.0 } else { 0.2 + 0.05 * k as f32 };
            x[i * d + k] = along;
            y[i * d + k] = along * 1.5e24;
        }
    }
    infonce_100_on_every_backend("huge keys", &x, &y, d);
    // One batch holding both: the one-batch losses see the same products.
    let both: Vec<f32> = x.iter().chain(&y).copied().collect();
    let classes = [0, 1, 2, 0, 1, 2];
    let tau = 0.01;
    let sup = oracle::supcon(&both, d, &classes, tau, tau, "exclude");
    let sup_g = oracle::chain(&both, &both, d, &sup, true);
    let nt = oracle::ntxent(&both, d, &classes, tau);
    let nt_g = oracle::chain(&both, &both, d, &nt, true);
    let s = 1.0 / tau;
    for backend in Backend::available() {
        let mut grad = vec![0.0; both.len()];
        let loss = SupConLoss::new(tau as f32).with_backend(backend);
        let mut scratch = vec![0.0; loss.scratch_len(2 * n, d)];
        let what = format!("supcon huge rows on {}", backend.name());
        let l = loss
            .forward_with_grad(&both, d, &classes, &mut grad, &mut scratch)
            .unwrap();
        check_all(&what, s, d, l, &sup, &sup_g, &grad, None);
        let loss = NtXentLoss::new(tau as f32).with_backend(backend);
        let mut scratch = vec![0.0; loss.scratch_len(2 * n, d)];
        let what = format!("ntxent huge rows on {}", backend.name());
        let l = loss
            .forward_with_grad(&both, d, &classes, &mut grad, &mut scratch)
            .unwrap();
        check_all(&what, s, d, l, &nt, &nt_g, &grad, None);
    }
}

/// SupCon's `Exclude` mean counts the anchors whose loss is > 0: a saturated anchor (one
/// positive at cosine 1, the others far below) has a loss near 1e-17, which rounds to 0 or
/// a little below in f32, and must still count. Found by fuzzing (a mean over 3 anchors
/// instead of 4).
#[test]
fn saturated_anchors_count_in_supcons_mean() {
    let d = 3;
    #[rustfmt::skip]
    let x = [
        1.0, 0.0, 0.0, // class 0, saturated: its positive is itself, its negatives are far
        1.0, 0.0, 0.0, // class 0
        -1.0, 0.0, 0.0, // class 1, alone: no positive, excluded
        0.0, 1.0, 0.3, // class 2: ordinary losses
        0.0, 0.8, -0.6, // class 2
    ];
    let classes = [0, 0, 1, 2, 2];
    let tau = 0.05;
    let o = oracle::supcon(&x, d, &classes, tau, tau, "exclude");
    let g = oracle::chain(&x, &x, d, &o, true);
    for backend in Backend::available() {
        let loss = SupConLoss::new(tau as f32).with_backend(backend);
        let mut scratch = vec![0.0; loss.scratch_len(5, d)];
        let mut grad = vec![0.0; x.len()];
        let what = format!("saturated anchors on {}", backend.name());
        let l = loss
            .forward_with_grad(&x, d, &classes, &mut grad, &mut scratch)
            .unwrap();
        check_all(&what, 1.0 / tau, d, l, &o, &g, &grad, None);
    }
}

#[test]
fn nan_in_gives_nan_out() {
    let (n, d) = (6, 5);
    let mut rng = Rng(5);
    let mut x = rng.vec(n * d);
    let y = rng.vec(n * d);
    x[7] = f32::NAN;
    let lab = [0, 0, 1, 1, 2, 2];
    for backend in Backend::available() {
        let mut s = vec![0.0; 1024];
        let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let l = InfoNceLoss::clip(20.0)
            .with_backend(backend)
            .forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut s)
            .unwrap();
        assert!(
            l.is_nan() && gx[0].is_nan() && gy[0].is_nan(),
            "{}",
            backend.name()
        );
        let mut g = vec![0.0; x.len()];
        let l = SupConLoss::pml()
            .with_backend(backend)
            .forward_with_grad(&x, d, &lab, &mut g, &mut s)
            .unwrap();
        assert!(l.is_nan() && g[7].is_nan(), "{}", backend.name());
        let l = NtXentLoss::pml()
            .with_backend(backend)
            .forward_with_grad(&x, d, &lab, &mut g, &mut s)
            .unwrap();
        assert!(l.is_nan() && g[7].is_nan(), "{}", backend.name());
    }
}

#[test]
fn empty_cases_are_decided() {
    let x = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    let mut s = vec![0.0; 1024];
    let mut g = [1.0f32; 6];
    // No positive pair: NT-Xent and SupCon (excluded) are 0 with gradient 0.
    let l = NtXentLoss::pml()
        .forward_with_grad(&x, 2, &[1, 2, 3], &mut g, &mut s)
        .unwrap();
    assert_eq!((l, g), (0.0, [0.0; 6]));
    let l = SupConLoss::pml()
        .forward_with_grad(&x, 2, &[1, 2, 3], &mut g, &mut s)
        .unwrap();
    assert_eq!((l, g), (0.0, [0.0; 6]));
    // No negative pair: NT-Xent is 0.
    let l = NtXentLoss::pml()
        .forward_with_grad(&x, 2, &[4, 4, 4], &mut g, &mut s)
        .unwrap();
    assert_eq!((l, g), (0.0, [0.0; 6]));
    // Anchors without positives counted as 0 (authors' fix) or NaN (original code).
    let zero = SupConLoss::khosla()
        .forward(&x, 2, &[1, 1, 3], &mut s)
        .unwrap();
    let excluded = SupConLoss::new(0.07)
        .forward(&x, 2, &[1, 1, 3], &mut s)
        .unwrap();
    assert!((zero - excluded * 2.0 / 3.0).abs() <= 1e-6 * excluded);
    let nan = SupConLoss::khosla().with_no_positive(NoPositive::Nan);
    assert!(nan.forward(&x, 2, &[1, 1, 3], &mut s).unwrap().is_nan());
    let l = nan
        .forward_with_grad(&x, 2, &[1, 1, 3], &mut g, &mut s)
        .unwrap();
    assert!(l.is_nan() && g.iter().all(|v| v.is_nan()));
    // One row: InfoNCE's only logit is its own: loss 0.
    let l = InfoNceLoss::clip(20.0)
        .forward(&x[..2], &x[2..4], 2, &mut s)
        .unwrap();
    assert_eq!(l, 0.0);
    // Zero rows: cosine 0, gradient 0 for them.
    let z = [0.0f32, 0.0, 1.0, 0.5, -0.3, 0.2];
    let mut gy = [0.0f32; 6];
    InfoNceLoss::clip(20.0)
        .forward_with_grad(&z, &x, 2, &mut g, &mut gy, &mut s)
        .unwrap();
    assert_eq!(&g[..2], &[0.0, 0.0]);
    assert!(g.iter().chain(&gy).all(|v| v.is_finite()));
}

#[test]
fn bad_input_is_an_error() {
    let x = [1.0f32, 0.0, 0.0, 1.0];
    let mut s = vec![0.0; 1024];
    let mut g = [0.0f32; 4];
    let mut g3 = [0.0f32; 3];
    let bad_param =
        |argument: &'static str, value: f32| Error::InvalidParameter { argument, value };
    // The parameter `name` is refused, whatever its value.
    #[track_caller]
    fn refuses(r: Result<f32, Error>, name: &str) {
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { argument, .. } if argument == name),
            "{e:?}"
        );
    }
    for t in [0.0f32, -0.1, f32::NAN, f32::INFINITY] {
        refuses(
            NtXentLoss::new(t).forward(&x, 2, &[0, 0], &mut s),
            "temperature",
        );
        refuses(
            SupConLoss::new(t).forward(&x, 2, &[0, 0], &mut s),
            "temperature",
        );
        let pml = SupConLoss::pml().with_base_temperature(t);
        refuses(pml.forward(&x, 2, &[0, 0], &mut s), "base_temperature");
    }
    for scale in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        refuses(InfoNceLoss::clip(scale).forward(&x, &x, 2, &mut s), "scale");
    }
    assert_eq!(
        bad_param("scale", 1.0),
        Error::InvalidParameter {
            argument: "scale",
            value: 1.0
        }
    );
    let loss = SupConLoss::pml();
    assert_eq!(
        loss.forward(&x, 2, &[0], &mut s),
        Err(Error::LengthMismatch {
            argument: "classes",
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        loss.forward(&x, 0, &[0, 0], &mut s),
        Err(Error::ZeroDimension)
    );
    assert_eq!(
        loss.forward(&x, 3, &[0], &mut s),
        Err(Error::NotMultipleOfDim {
            argument: "x",
            len: 4,
            dim: 3
        })
    );
    assert_eq!(
        loss.forward(&[], 2, &[], &mut s),
        Err(Error::Empty { argument: "x" })
    );
    let need = loss.min_scratch_len(2, 2);
    assert_eq!(
        loss.forward(&x, 2, &[0, 0], &mut s[..need - 1]),
        Err(Error::ScratchTooShort {
            needed: need,
            found: need - 1
        })
    );
    assert_eq!(
        loss.forward_with_grad(&x, 2, &[0, 0], &mut g3, &mut s),
        Err(Error::LengthMismatch {
            argument: "grad",
            expected: 4,
            found: 3
        })
    );
    let clip = InfoNceLoss::clip(20.0);
    assert_eq!(
        clip.forward(&x, &x[..2], 2, &mut s),
        Err(Error::LengthMismatch {
            argument: "y",
            expected: 4,
            found: 2
        })
    );
    assert_eq!(
        clip.forward_with_grad(&x, &x, 2, &mut g, &mut g3, &mut s),
        Err(Error::LengthMismatch {
            argument: "grad_y",
            expected: 4,
            found: 3
        })
    );
    let nt = NtXentLoss::pml();
    assert_eq!(
        nt.forward(&x, 2, &[0, 1], &mut s[..nt.min_scratch_len(2, 2) - 1]),
        Err(Error::ScratchTooShort {
            needed: nt.min_scratch_len(2, 2),
            found: nt.min_scratch_len(2, 2) - 1
        })
    );
    let need = clip.min_scratch_len(2, 2);
    assert_eq!(
        clip.forward(&x, &x, 2, &mut s[..need - 1]),
        Err(Error::ScratchTooShort {
            needed: need,
            found: need - 1
        })
    );
}

/// Scratch from `min_scratch_len` (one key row at a time, plain dot products) up to
/// `scratch_len` (32 at a time, the tile kernels), on every backend: every width meets
/// the oracle's bounds, for batches that are and are not multiples of the width.
#[test]
fn every_scratch_length_from_the_least_matches_the_oracle() {
    let mut rng = Rng(0x5eed_5ca7);
    for (n, d) in [(1, 3), (5, 7), (16, 16), (33, 5), (40, 9)] {
        let (xb, yb) = (
            misaligned(&mut rng, n * d, 3),
            misaligned(&mut rng, n * d, 5),
        );
        let (x, y) = (&xb[3..], &yb[5..]);
        let cls = classes(&mut rng, n, 3);
        let clip = oracle::infonce(x, y, d, 20.0, true);
        let clip_g = oracle::chain(x, y, d, &clip, false);
        let sup = oracle::supcon(x, d, &cls, 0.1, 0.1, "exclude");
        let sup_g = oracle::chain(x, x, d, &sup, true);
        let nt = oracle::ntxent(x, d, &cls, 0.1);
        let nt_g = oracle::chain(x, x, d, &nt, true);
        for backend in Backend::available() {
            let clip_loss = InfoNceLoss::clip(20.0).with_backend(backend);
            let sup_loss = SupConLoss::new(0.1).with_backend(backend);
            let nt_loss = NtXentLoss::new(0.1).with_backend(backend);
            for width in [1, 2, 7, 31, 32] {
                let what = format!("n {n} d {d} width {width} on {}", backend.name());
                // `width` rows of keys fit: the least scratch, plus `width − 1` rows.
                let len = |least: usize| least - d + width * d;
                let (mut gx, mut gy) = (vec![0.0; n * d], vec![0.0; n * d]);
                let mut s = vec![0.0; len(clip_loss.min_scratch_len(n, d))];
                let l = clip_loss
                    .forward_with_grad(x, y, d, &mut gx, &mut gy, &mut s)
                    .unwrap();
                check_all(&what, 20.0, d, l, &clip, &clip_g, &gx, Some(&gy));
                let mut s = vec![0.0; len(sup_loss.min_scratch_len(n, d))];
                let l = sup_loss
                    .forward_with_grad(x, d, &cls, &mut gx, &mut s)
                    .unwrap();
                check_all(&what, 10.0, d, l, &sup, &sup_g, &gx, None);
                let mut s = vec![0.0; len(nt_loss.min_scratch_len(n, d))];
                let l = nt_loss
                    .forward_with_grad(x, d, &cls, &mut gx, &mut s)
                    .unwrap();
                check_all(&what, 10.0, d, l, &nt, &nt_g, &gx, None);
            }
        }
    }
}

#[test]
fn scratch_is_linear_in_n() {
    // O(N + tile), never N×N: 65,536 rows of 128 fit in 4 MiB.
    let (n, d) = (65_536, 128);
    for len in [
        InfoNceLoss::clip(100.0).scratch_len(n, d),
        SupConLoss::pml().scratch_len(n, d),
        NtXentLoss::pml().scratch_len(n, d),
    ] {
        assert!(len * 4 <= 4 << 20, "{len}");
    }
}

#[cfg(feature = "alloc")]
#[test]
fn vec_twins_match_the_slice_apis() {
    let mut rng = Rng(3);
    let (n, d) = (9, 6);
    let x = rng.vec(n * d);
    let y = rng.vec(n * d);
    let lab: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let clip = InfoNceLoss::clip(20.0);
    let mut s = vec![0.0; clip.scratch_len(n, d)];
    let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let l = clip
        .forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut s)
        .unwrap();
    let r = clip.forward_with_grad_vec(&x, &y, d).unwrap();
    assert_eq!((r.loss, &r.grad_x, &r.grad_y), (l, &gx, &gy));
    assert_eq!(clip.forward_vec(&x, &y, d).unwrap(), l);
    let sc = SupConLoss::pml();
    let mut s = vec![0.0; sc.scratch_len(n, d)];
    let l = sc.forward_with_grad(&x, d, &lab, &mut gx, &mut s).unwrap();
    let r = sc.forward_with_grad_vec(&x, d, &lab).unwrap();
    assert_eq!((r.loss, &r.grad), (l, &gx));
    assert_eq!(sc.forward_vec(&x, d, &lab).unwrap(), l);
    let nt = NtXentLoss::pml();
    let r = nt.forward_with_grad_vec(&x, d, &lab).unwrap();
    assert_eq!(nt.forward_vec(&x, d, &lab).unwrap(), r.loss);
    assert_eq!(nt.forward_vec(&x, 0, &lab), Err(Error::ZeroDimension));
}
