//! The triplet losses and the cosine embedding loss against the f64 oracle of
//! tests/common/triplet_oracle.rs on every available backend: lengths 0..=130 (strided),
//! misaligned starts, every option, extreme magnitudes, NaN; the in-batch losses at N from
//! 1 to 70 and odd d up to 130. Random cases pick their margin away from every hinge (in
//! the largest gap between the triplets' `d_an − d_ap`), so that a correct f32
//! implementation makes the same decisions as the oracle; the bound then applies as
//! documented.

// Index loops read as the formulas they check.
#![allow(clippy::needless_range_loop)]

use crate::common;

use common::sweep::batch_shapes;
use common::triplet_loss::check_every_backend;
use common::triplet_oracle;
use common::{Rng, U, assert_close};
use contrastive::{
    Backend, BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Distance, Reduction,
    TripletLoss,
};

fn rtol(d: usize) -> f64 {
    (2.0 * d as f64 + 16.0) * U
}

/// Lengths 0..=20, then the lengths around the vector widths up to 130.
fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=20).collect();
    v.extend([23, 31, 32, 33, 47, 63, 64, 65, 96, 127, 128, 129, 130]);
    v
}

/// `len` floats starting at `offset` of a fresh buffer (misaligned for offsets 1..4).
fn placed(rng: &mut Rng, offset: usize, len: usize, scale: f32) -> Vec<f32> {
    let mut buf = vec![0.0; offset + len];
    for v in &mut buf[offset..] {
        *v = rng.unit() * scale;
    }
    buf
}

fn check_triplet_rows(what: &str, loss: &TripletLoss, a: &[f32], p: &[f32], n: &[f32]) {
    let d = a.len();
    let r = triplet_oracle::triplet(
        a,
        p,
        n,
        f64::from(loss.margin),
        loss.swap,
        f64::from(loss.eps),
        1.0,
    );
    let got = loss.triplet(a, p, n).unwrap();
    assert_close(what, got, r.loss, rtol(d), r.scale);
    let mut g = [vec![0.0; d], vec![0.0; d], vec![0.0; d]];
    let [ga, gp, gn] = &mut g;
    assert_eq!(loss.triplet_with_grad(a, p, n, ga, gp, gn).unwrap(), got);
    // Within the bound of the hinge the side is a coin toss: the gradient is not checked.
    if r.violation.abs() <= 4.0 * rtol(d) * r.scale {
        return;
    }
    for which in 0..3 {
        for k in 0..d {
            assert_close(
                &format!("{what}: grad {which}[{k}]"),
                g[which][k],
                r.grad[which][k],
                rtol(d),
                r.grad_scale[which][k],
            );
        }
    }
}

#[test]
fn triplet_agrees_with_the_oracle_on_every_backend_length_and_offset() {
    let mut rng = Rng(0x7419_11e7);
    for backend in Backend::available() {
        for d in lengths() {
            let offset = d % 4;
            let a = placed(&mut rng, offset, d, 1.0);
            let p = placed(&mut rng, (offset + 1) % 4, d, 1.0);
            let n = placed(&mut rng, (offset + 2) % 4, d, 1.0);
            let (a, p, n) = (&a[offset..], &p[(offset + 1) % 4..], &n[(offset + 2) % 4..]);
            for (margin, swap, eps) in [
                (1.0, false, 0.0),
                (0.5, true, 0.0),
                (1.0, false, 1e-6),
                (2.0, true, 1e-6),
                (0.0, false, 0.0),
            ] {
                let loss = TripletLoss::new(margin)
                    .with_swap(swap)
                    .with_eps(eps)
                    .with_backend(backend);
                let what = format!("{backend:?} d={d} m={margin} swap={swap} eps={eps}");
                check_triplet_rows(&what, &loss, a, p, n);
            }
        }
    }
}

#[test]
fn triplet_batches_reduce_as_the_rows_do() {
    let mut rng = Rng(42);
    for backend in Backend::available() {
        for (rows, d) in [(1, 3), (7, 17), (33, 5), (5, 130)] {
            let (a, p, n) = (rng.vec(rows * d), rng.vec(rows * d), rng.vec(rows * d));
            for reduction in [Reduction::Mean, Reduction::Sum] {
                let loss = TripletLoss::new(0.7)
                    .with_swap(rows % 2 == 1)
                    .with_reduction(reduction)
                    .with_backend(backend);
                let mut per = vec![0.0; rows];
                loss.batch_per_triplet(&a, &p, &n, d, &mut per).unwrap();
                let c = if reduction == Reduction::Mean {
                    1.0 / rows as f32
                } else {
                    1.0
                };
                let mut g = [
                    vec![0.0; rows * d],
                    vec![0.0; rows * d],
                    vec![0.0; rows * d],
                ];
                let [ga, gp, gn] = &mut g;
                let total = loss.batch_with_grad(&a, &p, &n, d, ga, gp, gn).unwrap();
                let want: f64 = per.iter().map(|&l| f64::from(l)).sum::<f64>() * f64::from(c);
                assert!((f64::from(total) - want).abs() <= 1e-6 * want.max(1.0));
                assert_eq!(total, loss.batch(&a, &p, &n, d).unwrap());
                for i in 0..rows {
                    let r = |x: &[f32]| x[i * d..(i + 1) * d].to_vec();
                    let mut one = [vec![0.0; d], vec![0.0; d], vec![0.0; d]];
                    let [oa, op, on] = &mut one;
                    let l = loss
                        .triplet_with_grad(&r(&a), &r(&p), &r(&n), oa, op, on)
                        .unwrap();
                    assert_eq!(l, per[i]);
                    for w in 0..3 {
                        let row_scale = one[w].iter().fold(0.0f32, |m, v| m.max(v.abs())) * c;
                        for k in 0..d {
                            let (got, want) = (g[w][i * d + k], one[w][k] * c);
                            assert!((got - want).abs() <= 1e-6 * row_scale, "{got} {want}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn triplet_is_exact_at_extreme_magnitudes() {
    for backend in Backend::available() {
        // Up to where the distances themselves stay below f32::MAX (documented: beyond it a
        // distance is +∞).
        for scale in [1e-30f32, 1e-40, 1e19, 1e30, 1e37] {
            let mut rng = Rng(scale.to_bits().into());
            for d in [1, 3, 16, 33] {
                let (a, p, n) = (rng.vec(d), rng.vec(d), rng.vec(d));
                let s = |x: &[f32]| x.iter().map(|v| v * scale).collect::<Vec<f32>>();
                let (a, p, n) = (s(&a), s(&p), s(&n));
                let margin = 0.3 * scale.min(1e38);
                for swap in [false, true] {
                    let loss = TripletLoss::new(margin)
                        .with_swap(swap)
                        .with_backend(backend);
                    let what = format!("{backend:?} scale={scale:e} d={d} swap={swap}");
                    check_triplet_rows(&what, &loss, &a, &p, &n);
                }
            }
        }
    }
}

#[test]
fn triplet_edge_cases_are_decided() {
    for backend in Backend::available() {
        let loss = TripletLoss::new(1.0).with_backend(backend);
        let mut g = [vec![9.0; 2], vec![9.0; 2], vec![9.0; 2]];
        let [ga, gp, gn] = &mut g;
        // a = p = n: loss = margin, every distance's subgradient 0.
        let l = loss
            .triplet_with_grad(&[1.0, 2.0], &[1.0, 2.0], &[1.0, 2.0], ga, gp, gn)
            .unwrap();
        assert_eq!(l, 1.0);
        assert!(g.iter().flatten().all(|&v| v == 0.0));
        // Empty rows: every distance 0.
        assert_eq!(loss.triplet(&[], &[], &[]).unwrap(), 1.0);
        // NaN in, NaN out (loss and every gradient).
        let [ga, gp, gn] = &mut g;
        let l = loss
            .triplet_with_grad(&[f32::NAN, 0.0], &[0.0, 0.0], &[1.0, 0.0], ga, gp, gn)
            .unwrap();
        assert!(l.is_nan());
        assert!(g.iter().flatten().all(|v| v.is_nan()));
        // An infinite negative distance: inactive, exactly 0, gradient exactly 0.
        let [ga, gp, gn] = &mut g;
        let l = loss
            .triplet_with_grad(&[0.0, 0.0], &[1.0, 0.0], &[f32::INFINITY, 0.0], ga, gp, gn)
            .unwrap();
        assert_eq!(l, 0.0);
        assert!(g.iter().flatten().all(|&v| v == 0.0));
        // An infinite positive distance: +∞, the limit direction (finite gradient).
        let [ga, gp, gn] = &mut g;
        let l = loss
            .triplet_with_grad(&[0.0, 0.0], &[f32::INFINITY, 5.0], &[1.0, 0.0], ga, gp, gn)
            .unwrap();
        assert_eq!(l, f32::INFINITY);
        // ∂a = u_ap − u_an = (−1, 0) − (−1, 0), ∂p = −u_ap, ∂n = u_an.
        assert_eq!((g[0][0], g[1][0], g[1][1], g[2][0]), (0.0, 1.0, 0.0, -1.0));
        // Swap: a tie between d(a, n) and d(p, n) splits the gradient ½/½.
        let swap = loss.with_swap(true);
        let [ga, gp, gn] = &mut g;
        let l = swap
            .triplet_with_grad(&[0.0, 0.0], &[2.0, 0.0], &[1.0, 0.0], ga, gp, gn)
            .unwrap();
        assert_eq!(l, 2.0); // 1 + 2 − 1
        assert_eq!(gn[0], -0.5 + 0.5); // ½·u_an + ½·u_pn
        assert_eq!(gp[0], 1.0 - 0.5 * 1.0); // −u_ap − ½·u_pn
    }
}

#[test]
fn cosine_embedding_agrees_with_the_oracle() {
    let mut rng = Rng(7);
    for backend in Backend::available() {
        for d in lengths().into_iter().filter(|&d| d > 0) {
            let offset = d % 4;
            let a = placed(&mut rng, offset, d, 1.0);
            let b = placed(&mut rng, 3 - offset, d, 1.0);
            let (a, b) = (&a[offset..], &b[3 - offset..]);
            for (t, margin) in [
                (1.0, 0.0),
                (-1.0, -0.5),
                (-1.0, 0.0),
                (0.0, 0.2),
                (0.5, 0.1),
            ] {
                let r = triplet_oracle::cosine_embedding(a, b, t, margin, 1.0);
                let loss = CosineEmbeddingLoss::new(margin as f32).with_backend(backend);
                let what = format!("{backend:?} d={d} t={t} m={margin}");
                let got = loss.pair(a, b, t).unwrap();
                assert_close(&what, got, r.loss, rtol(d), 1.0 + margin.abs());
                let (mut ga, mut gb) = (vec![0.0; d], vec![0.0; d]);
                assert_eq!(loss.pair_with_grad(a, b, t, &mut ga, &mut gb).unwrap(), got);
                if t == -1.0 && (r.cos - margin).abs() <= 4.0 * rtol(d) {
                    continue; // at the hinge
                }
                for k in 0..d {
                    assert_close(&what, ga[k], r.grad_a[k], rtol(d), r.grad_scale);
                    assert_close(&what, gb[k], r.grad_b[k], rtol(d), r.grad_scale);
                }
            }
        }
    }
}

#[test]
fn cosine_embedding_edge_cases_are_decided() {
    let loss = CosineEmbeddingLoss::torch();
    let (mut ga, mut gb) = ([9.0; 2], [9.0; 2]);
    // A zero vector: cosine 0, gradient 0 (torch's eps would give a 1e6-scale gradient).
    assert_eq!(
        loss.pair_with_grad(&[0.0, 0.0], &[1.0, 2.0], 1.0, &mut ga, &mut gb),
        Ok(1.0)
    );
    assert_eq!((ga, gb), ([0.0; 2], [0.0; 2]));
    // Other targets give 0, and count in the mean.
    let x = [1.0, 0.0, 1.0, 0.0];
    let y = [0.0, 1.0, 0.0, 1.0];
    assert_eq!(loss.batch(&x, &y, 2, &[1.0, 3.0]), Ok(0.5));
    // NaN in, NaN out, whatever the target.
    let l = loss
        .pair_with_grad(&[f32::NAN, 0.0], &[1.0, 2.0], 0.0, &mut ga, &mut gb)
        .unwrap();
    assert!(l.is_nan() && ga.iter().chain(&gb).all(|v| v.is_nan()));
    // Extreme magnitudes keep the cosine.
    for s in [1e-30f32, 1e30] {
        let l = loss.pair(&[s, 0.0], &[s, s], 1.0).unwrap();
        assert!(
            (l - (1.0 - core::f32::consts::FRAC_1_SQRT_2)).abs() < 1e-6,
            "{s:e}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// In-batch.

fn classes(rng: &mut Rng, n: usize) -> Vec<u32> {
    let k = 1 + rng.below(n.div_ceil(2).max(1) + 1);
    (0..n).map(|_| (rng.below(k) as u32) * 1_000_003).collect()
}

/// The midpoint of the largest gap between the kinks (and `lo`, `hi`) inside `[lo, hi]`.
fn margin_in_largest_gap(mut kinks: Vec<f64>, lo: f64, hi: f64) -> f64 {
    kinks.retain(|&k| k > lo && k < hi);
    kinks.push(lo);
    kinks.push(hi);
    kinks.sort_by(f64::total_cmp);
    let (mut best, mut at) = (-1.0, lo);
    for w in kinks.windows(2) {
        if w[1] - w[0] > best {
            best = w[1] - w[0];
            at = 0.5 * (w[0] + w[1]);
        }
    }
    at
}

fn rows64(x: &[f32], dim: usize, normalize: bool) -> Vec<Vec<f64>> {
    x.chunks_exact(dim)
        .map(|r| {
            let r: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
            let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            if normalize && n > 0.0 {
                r.iter().map(|v| v / n).collect()
            } else {
                r
            }
        })
        .collect()
}

#[test]
fn batch_all_agrees_with_the_oracle_for_n_up_to_70() {
    let mut rng = Rng(0xba7c_4a11);
    for (case, (n, d)) in batch_shapes().into_iter().enumerate() {
        let offset = case % 4;
        let buf = placed(&mut rng, offset, n * d, 1.0);
        let x = &buf[offset..];
        let cls = classes(&mut rng, n);
        for (normalize, smooth) in [(false, false), (true, false), (true, true), (false, true)] {
            let rows = rows64(x, d, normalize);
            let table: Vec<f64> = (0..n * n)
                .map(|k| triplet_oracle::distance(&rows[k / n], &rows[k % n], 0.0).0)
                .collect();
            let dist = |i: usize, j: usize| table[i * n + j];
            let mut kinks = vec![];
            for a in 0..n {
                for p in (0..n).filter(|&p| p != a && cls[p] == cls[a]) {
                    for q in (0..n).filter(|&q| cls[q] != cls[a]) {
                        kinks.push(dist(a, q) - dist(a, p));
                    }
                }
            }
            let margin = margin_in_largest_gap(kinks, 0.0, 1.0) as f32;
            let r = triplet_oracle::batch_all(x, d, &cls, f64::from(margin), smooth, normalize);
            let loss = BatchAllTripletLoss::new(margin)
                .with_smooth(smooth)
                .with_normalize(normalize);
            check_every_backend(
                &format!("N={n} d={d} norm={normalize} smooth={smooth}"),
                loss,
                x,
                d,
                &cls,
                &r,
            );
        }
    }
}

#[test]
fn batch_hard_agrees_with_the_oracle_for_n_up_to_70() {
    let mut rng = Rng(0xba7c_4a4d);
    let mut checked = 0;
    for (case, (n, d)) in batch_shapes().into_iter().enumerate() {
        let offset = case % 4;
        let buf = placed(&mut rng, offset, n * d, 1.0);
        let x = &buf[offset..];
        let cls = classes(&mut rng, n);
        for cosine in [false, true] {
            // Each anchor's kink is at m = hn − hp.
            let rows = rows64(x, d, false);
            let dist = |i: usize, j: usize| {
                if cosine {
                    let (a, b) = (&rows[i], &rows[j]);
                    let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
                    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
                    1.0 - ab / (na * nb)
                } else {
                    triplet_oracle::distance(&rows[i], &rows[j], 0.0).0
                }
            };
            let kinks = (0..n)
                .map(|i| {
                    let hp = (0..n)
                        .filter(|&j| j != i && cls[j] == cls[i])
                        .map(|j| dist(i, j))
                        .fold(0.0, f64::max);
                    let hn = (0..n)
                        .filter(|&j| cls[j] != cls[i])
                        .map(|j| dist(i, j))
                        .fold(f64::INFINITY, f64::min);
                    hn - hp
                })
                .collect();
            let margin = margin_in_largest_gap(kinks, 0.0, 2.0) as f32;
            let r = triplet_oracle::batch_hard(x, d, &cls, f64::from(margin), cosine);
            // A near-tie of two candidates (continuous data: rare) is a coin toss.
            if r.kink_gap < 1e-4 {
                continue;
            }
            checked += 1;
            let mut loss = BatchHardTripletLoss::new(margin);
            if cosine {
                loss = loss.with_distance(Distance::Cosine);
            }
            check_every_backend(
                &format!("N={n} d={d} cosine={cosine}"),
                loss,
                x,
                d,
                &cls,
                &r,
            );
        }
    }
    assert!(checked >= 30, "only {checked} cases checked");
}

#[test]
fn in_batch_edge_cases_are_decided() {
    for backend in Backend::available() {
        let hard = BatchHardTripletLoss::new(0.5).with_backend(backend);
        let all = BatchAllTripletLoss::new(0.5).with_backend(backend);
        let mut scratch = vec![0.0; 64];
        let mut grad = [9.0f32; 4];
        // One row: batch-hard pays the margin, gradient 0; batch-all has no triplet.
        assert_eq!(
            hard.batch_with_grad(&[1.0, 2.0], 2, &[3], &mut grad[..2], &mut scratch),
            Ok(0.5)
        );
        assert_eq!(grad[..2], [0.0, 0.0]);
        assert_eq!(
            all.batch_with_grad(&[1.0, 2.0], 2, &[3], &mut grad[..2], &mut scratch),
            Ok(0.0)
        );
        // Zero rows: batch-all 0, batch-hard a mean over nothing.
        assert_eq!(all.batch(&[], 2, &[], &mut scratch), Ok(0.0));
        assert_eq!(
            hard.batch(&[], 2, &[], &mut scratch),
            Err(contrastive::Error::Empty { argument: "x" })
        );
        // A non-finite component anywhere: NaN loss and gradient.
        let x = [0.0, f32::INFINITY, 1.0, 0.0];
        let l = all
            .batch_with_grad(&x, 2, &[1, 2], &mut grad, &mut scratch)
            .unwrap();
        assert!(l.is_nan() && grad.iter().all(|v| v.is_nan()));
        let l = hard
            .batch_with_grad(&x, 2, &[1, 2], &mut grad, &mut scratch)
            .unwrap();
        assert!(l.is_nan() && grad.iter().all(|v| v.is_nan()));
        // One class: the hardest negative is the hardest positive's own pair, whose terms
        // cancel exactly, even where each alone overflows (a subnormal row's cosine
        // gradient is beyond f32): 0, not ∞ − ∞ = NaN.
        let cosine = BatchHardTripletLoss::new(0.02)
            .with_distance(Distance::Cosine)
            .with_backend(backend);
        let x = [1.449e-42, 1.435e-42, -4.0, -4.0];
        let l = cosine
            .batch_with_grad(&x, 2, &[0, 0], &mut grad, &mut scratch)
            .unwrap();
        assert_eq!((l, grad), (0.02, [0.0; 4]));
        // Scratch longer than needed is fine.
        let mut long = vec![0.0; 1000];
        assert!(hard.batch(&[0.0, 1.0], 1, &[1, 1], &mut long).is_ok());
    }
}

#[test]
fn in_batch_extreme_magnitudes_keep_the_bound() {
    let mut rng = Rng(99);
    for scale in [1e-30f32, 1e-40, 1e19, 1e30] {
        let (n, d) = (9, 5);
        let x: Vec<f32> = rng.vec(n * d).iter().map(|v| v * scale).collect();
        let cls: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let margin = 0.4 * scale;
        let what = format!("scale={scale:e}");
        let r = triplet_oracle::batch_hard(&x, d, &cls, f64::from(margin), false);
        if r.kink_gap > 1e-4 {
            let loss = BatchHardTripletLoss::new(margin);
            check_every_backend(&format!("hard {what}"), loss, &x, d, &cls, &r);
        }
        let r = triplet_oracle::batch_all(&x, d, &cls, f64::from(margin), false, false);
        if r.kink_gap > 1e-4 {
            let loss = BatchAllTripletLoss::new(margin);
            check_every_backend(&format!("all {what}"), loss, &x, d, &cls, &r);
        }
    }
}
