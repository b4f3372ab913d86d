//! The batch-all hinge loss's symmetric path (taken with
//! `BatchAllTripletLoss::symmetric_scratch_len` floats of scratch) against the f64 oracle
//! of tests/common/triplet_oracle.rs on every available backend: N from 1 to 70 with odd d
//! up to 130 and misaligned starts, normalised rows or not, the class structures at its
//! edges (one class, no two rows of a class, the largest class it takes and one more),
//! extreme magnitudes, and the row path on the same batches when the scratch is shorter.
//! Margins are picked away from every hinge (the largest gap between the triplets'
//! `d_an − d_ap`), so that a correct f32 implementation makes the oracle's decisions.

use crate::common;

use common::sweep::batch_shapes;
use common::triplet_oracle;
use common::{Rng, assert_in_batch_close};
use contrastive::{Backend, BatchAllTripletLoss};

fn largest_class(cls: &[u32]) -> usize {
    cls.iter()
        .map(|c| cls.iter().filter(|&d| d == c).count())
        .max()
        .unwrap_or(0)
}

/// The midpoint of the largest gap between the triplets' kinks in `[0, hi]`.
fn margin_away_from_kinks(x: &[f32], d: usize, cls: &[u32], normalize: bool, hi: f64) -> f64 {
    let n = cls.len();
    let rows: Vec<Vec<f64>> = x
        .chunks_exact(d)
        .map(|r| {
            let r: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            if normalize && norm > 0.0 {
                r.iter().map(|v| v / norm).collect()
            } else {
                r
            }
        })
        .collect();
    let dist = |i: usize, j: usize| triplet_oracle::distance(&rows[i], &rows[j], 0.0).0;
    let mut kinks = vec![0.0, hi];
    for a in 0..n {
        for p in (0..n).filter(|&p| p != a && cls[p] == cls[a]) {
            let dp = dist(a, p);
            for q in (0..n).filter(|&q| cls[q] != cls[a]) {
                let k = dist(a, q) - dp;
                if k > 0.0 && k < hi {
                    kinks.push(k);
                }
            }
        }
    }
    kinks.sort_by(f64::total_cmp);
    let (mut best, mut at) = (-1.0, 0.5 * hi);
    for w in kinks.windows(2) {
        if w[1] - w[0] > best {
            best = w[1] - w[0];
            at = 0.5 * (w[0] + w[1]);
        }
    }
    at
}

/// The loss on every backend with `scratch` floats of scratch, against the oracle.
fn check_case(what: &str, x: &[f32], d: usize, cls: &[u32], normalize: bool, scratch: usize) {
    let n = cls.len();
    let margin = margin_away_from_kinks(x, d, cls, normalize, 1.0) as f32;
    let r = triplet_oracle::batch_all(x, d, cls, f64::from(margin), false, normalize);
    let loss = BatchAllTripletLoss::new(margin).with_normalize(normalize);
    let mut scratch = vec![f32::NAN; scratch];
    for backend in Backend::available() {
        let what = format!("{what} {backend:?} N={n} d={d} norm={normalize}");
        let l = loss.with_backend(backend);
        let mut grad = vec![f32::NAN; n * d];
        let got = l
            .batch_with_grad(x, d, cls, &mut grad, &mut scratch)
            .unwrap();
        assert_in_batch_close(&what, got, &grad, &r, n, d);
        assert_eq!(l.batch(x, d, cls, &mut scratch).unwrap(), got, "{what}");
    }
}

fn classes(rng: &mut Rng, n: usize) -> Vec<u32> {
    let k = 1 + rng.below(n.div_ceil(2).max(1) + 1);
    (0..n).map(|_| (rng.below(k) as u32) * 1_000_003).collect()
}

#[test]
fn symmetric_path_agrees_with_the_oracle_for_n_up_to_70() {
    let mut rng = Rng(0x05e7_7a11);
    for (case, (n, d)) in batch_shapes().into_iter().enumerate() {
        let offset = case % 4;
        let mut buf = vec![0.0f32; offset + n * d];
        for v in &mut buf[offset..] {
            *v = rng.unit();
        }
        let x = &buf[offset..];
        let cls = classes(&mut rng, n);
        // Normalised rows on every other case (the oracle is O(N³) a case).
        let normalize = case % 2 == 1;
        let loss = BatchAllTripletLoss::new(0.5).with_normalize(normalize);
        let scratch = loss.symmetric_scratch_len(n, d, largest_class(&cls));
        check_case("symmetric", x, d, &cls, normalize, scratch);
    }
}

#[test]
fn class_structures_at_the_edges_of_the_symmetric_path() {
    let mut rng = Rng(0x0c1a_55e5);
    let d = 3;
    let cases: Vec<(&str, Vec<u32>)> = vec![
        ("one class", vec![7; 20]),
        ("singletons", (0..20).collect()),
        ("pairs", (0..20).map(|i| i / 2).collect()),
        // The largest class the path takes (64 positives) and one more (row path).
        (
            "class of 65",
            (0..75).map(|i| u32::from(i >= 65) * (i % 3 + 1)).collect(),
        ),
        (
            "class of 66",
            (0..75).map(|i| u32::from(i >= 66) * (i % 3 + 1)).collect(),
        ),
    ];
    for (what, cls) in cases {
        let n = cls.len();
        let x = rng.vec(n * d);
        let loss = BatchAllTripletLoss::new(0.5);
        let scratch = loss.symmetric_scratch_len(n, d, largest_class(&cls));
        check_case(what, &x, d, &cls, false, scratch);
    }
    let loss = BatchAllTripletLoss::new(0.5);
    assert_eq!(
        loss.symmetric_scratch_len(75, 3, 66),
        loss.scratch_len(75, 3)
    );
    assert!(loss.symmetric_scratch_len(75, 3, 65) > loss.scratch_len(75, 3));
}

#[test]
fn row_path_runs_with_a_scratch_between_the_two_lengths() {
    let mut rng = Rng(0x0b5e_55ed);
    let (n, d) = (33, 7);
    let x = rng.vec(n * d);
    let cls: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
    let loss = BatchAllTripletLoss::new(0.5);
    let (short, long) = (
        loss.scratch_len(n, d),
        loss.symmetric_scratch_len(n, d, largest_class(&cls)),
    );
    for scratch in [short, short + 1, long - 1, long, long + 5] {
        check_case(&format!("scratch {scratch}"), &x, d, &cls, false, scratch);
    }
}

#[test]
fn symmetric_path_keeps_the_bound_at_extreme_magnitudes() {
    let mut rng = Rng(99);
    for scale in [1e-30f32, 1e-40, 1e19, 1e30] {
        let (n, d) = (9, 5);
        let x: Vec<f32> = rng.vec(n * d).iter().map(|v| v * scale).collect();
        let cls: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let margin = 0.4 * scale;
        let r = triplet_oracle::batch_all(&x, d, &cls, f64::from(margin), false, false);
        if r.kink_gap <= 1e-4 {
            continue;
        }
        for backend in Backend::available() {
            let l = BatchAllTripletLoss::new(margin).with_backend(backend);
            let mut grad = vec![0.0; n * d];
            let mut scratch = vec![0.0; l.symmetric_scratch_len(n, d, 3)];
            let got = l
                .batch_with_grad(&x, d, &cls, &mut grad, &mut scratch)
                .unwrap();
            assert_in_batch_close(
                &format!("{backend:?} scale={scale:e}"),
                got,
                &grad,
                &r,
                n,
                d,
            );
        }
    }
}
