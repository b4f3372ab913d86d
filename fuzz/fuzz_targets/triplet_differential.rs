//! The triplet family against its float64 oracle (tests/common/triplet_oracle.rs, the file
//! the tests use) with the documented bounds, on every available backend: explicit
//! triplets (exact and torch's `eps`, swap), the cosine embedding loss, and in-batch
//! batch-all (hinge and softplus, raw and normalised rows) and batch-hard (Euclidean and
//! cosine) over inputs from every numerical regime. Decisions within the bound of a kink
//! may fall either way (documented), so such cases check only what cannot depend on them.

#![no_main]

#[path = "../../tests/common/triplet_oracle.rs"]
mod triplet_oracle;

use contrastive::{
    Backend, BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Distance,
    TripletLoss,
};
use contrastive_fuzz::{Unstructured, non_negative, partner, require, vector};
use libfuzzer_sys::fuzz_target;

const U: f64 = 1.0 / (1u64 << 24) as f64;
const ATOL: f64 = f32::MIN_POSITIVE as f64;
const MARGINS: [f32; 6] = [0.0, 0.05, 0.5, 1.0, 5.0, 1e-3];
/// Beyond this a distance may exceed `f32::MAX` (documented: it is then `+∞`).
const HUGE: f64 = 1e37;

fn close(what: &str, got: f32, want: f64, rtol: f64, scale: f64) -> Result<(), String> {
    let g = f64::from(got);
    if want.is_nan() || g.is_nan() {
        return if want.is_nan() && g.is_nan() {
            Ok(())
        } else {
            Err(format!("{what}: got {g:e}, want {want:e}"))
        };
    }
    // Plus the rounding of the result to f32.
    let tol = ATOL + rtol * scale.abs() + U * want.abs();
    if g.is_infinite() && g.signum() == want.signum() && want.abs() + tol >= f64::from(f32::MAX) {
        return Ok(()); // beyond f32: overflows as it should
    }
    if (g - want).abs() <= tol {
        Ok(())
    } else {
        Err(format!("{what}: got {g:e}, want {want:e}, tol {tol:e}"))
    }
}

fn finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

fn largest(x: &[f32]) -> f64 {
    x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()))
}

fn explicit(u: &mut Unstructured, backend: Backend) -> contrastive_fuzz::Result<()> {
    let d = u.int_in_range(0..=40usize)?;
    let a = vector(u, d)?;
    let p = partner(u, &a)?;
    let n = if u.arbitrary()? { partner(u, &a)? } else { partner(u, &p)? };
    let margin = non_negative(u, &MARGINS, -30..=30)?;
    let swap: bool = u.arbitrary()?;
    let eps = if u.arbitrary()? { 1e-6f32 } else { 0.0 };
    let loss = TripletLoss::new(margin)
        .with_swap(swap)
        .with_eps(eps)
        .with_backend(backend);
    let mut g = [vec![0.0; d], vec![0.0; d], vec![0.0; d]];
    let [ga, gp, gn] = &mut g;
    let got = loss.triplet_with_grad(&a, &p, &n, ga, gp, gn).unwrap();
    let context = || format!("{backend:?} d={d} m={margin:e} swap={swap} eps={eps:e}\n  a={a:?}\n  p={p:?}\n  n={n:?}");
    if a.iter().chain(&p).chain(&n).any(|v| v.is_nan()) {
        require(close("NaN in, NaN out", got, f64::NAN, 0.0, 0.0), context);
        return Ok(());
    }
    let big = largest(&a).max(largest(&p)).max(largest(&n));
    if !finite(&a) || !finite(&p) || !finite(&n) || big > HUGE / 8.0 || f64::from(margin) > HUGE {
        return Ok(()); // IEEE semantics, documented case by case; no panic is the check
    }
    let r = triplet_oracle::triplet(&a, &p, &n, margin.into(), swap, eps.into(), 1.0);
    let rtol = (2.0 * d as f64 + 16.0) * U;
    require(close("loss", got, r.loss, rtol, r.scale), context);
    // Distances may be off by 2⁻¹²⁶ in absolute terms too (subnormal distances).
    if r.violation.abs() <= 4.0 * rtol * r.scale + 4.0 * ATOL {
        return Ok(());
    }
    if swap {
        // Which negative distance is the smaller is decided on the computed distances: a
        // near-tie may split the gradient or go either way.
        let w = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let dan = triplet_oracle::distance(&w(&a), &w(&n), eps.into()).0;
        let dpn = triplet_oracle::distance(&w(&p), &w(&n), eps.into()).0;
        if (dan - dpn).abs() <= 4.0 * rtol * (dan + dpn) + 4.0 * ATOL {
            return Ok(());
        }
    }
    for w in 0..3 {
        for k in 0..d {
            let what = format!("grad {w}[{k}]");
            require(close(&what, g[w][k], r.grad[w][k], rtol, r.grad_scale[w][k]), context);
        }
    }
    Ok(())
}

fn cosine_embedding(u: &mut Unstructured, backend: Backend) -> contrastive_fuzz::Result<()> {
    let d = u.int_in_range(1..=40usize)?;
    let a = vector(u, d)?;
    let b = partner(u, &a)?;
    let target = *u.choose(&[1.0f32, -1.0, 0.0, 0.5])?;
    let margin = f32::from(u.int_in_range(-8..=8i8)?) / 8.0;
    let loss = CosineEmbeddingLoss::new(margin).with_backend(backend);
    let (mut ga, mut gb) = (vec![0.0; d], vec![0.0; d]);
    let got = loss.pair_with_grad(&a, &b, target, &mut ga, &mut gb).unwrap();
    let context = || format!("{backend:?} t={target} m={margin}\n  a={a:?}\n  b={b:?}");
    if !finite(&a) || !finite(&b) {
        require(close("non-finite in, NaN out", got, f64::NAN, 0.0, 0.0), context);
        return Ok(());
    }
    let r = triplet_oracle::cosine_embedding(&a, &b, target, margin.into(), 1.0);
    let rtol = (2.0 * d as f64 + 16.0) * U;
    require(close("loss", got, r.loss, rtol, 1.0 + f64::from(margin).abs()), context);
    if target == -1.0 && (r.cos - f64::from(margin)).abs() <= 4.0 * rtol + 4.0 * ATOL {
        return Ok(());
    }
    for k in 0..d {
        require(close("grad_a", ga[k], r.grad_a[k], rtol, r.grad_scale), context);
        require(close("grad_b", gb[k], r.grad_b[k], rtol, r.grad_scale), context);
    }
    Ok(())
}

fn in_batch(u: &mut Unstructured, backend: Backend) -> contrastive_fuzz::Result<()> {
    let n = u.int_in_range(1..=10usize)?;
    let d = u.int_in_range(1..=9usize)?;
    let mut x = Vec::with_capacity(n * d);
    let shared = u.arbitrary::<bool>()?;
    let first = vector(u, d)?;
    x.extend_from_slice(&first);
    for _ in 1..n {
        let row = if shared { partner(u, &first)? } else { vector(u, d)? };
        x.extend_from_slice(&row);
    }
    let classes: Vec<u32> = (0..n)
        .map(|_| u.int_in_range(0..=3u32))
        .collect::<contrastive_fuzz::Result<_>>()?;
    let margin = non_negative(u, &MARGINS, -20..=20)?;
    let hard: bool = u.arbitrary()?;
    let (flag_a, flag_b): (bool, bool) = (u.arbitrary()?, u.arbitrary()?);
    let mut grad = vec![0.0; n * d];
    let got = if hard {
        let mut l = BatchHardTripletLoss::new(margin).with_backend(backend);
        if flag_a {
            l = l.with_distance(Distance::Cosine);
        }
        let mut scratch = vec![0.0; l.scratch_len(n, d)];
        l.batch_with_grad(&x, d, &classes, &mut grad, &mut scratch).unwrap()
    } else {
        let l = BatchAllTripletLoss::new(margin)
            .with_normalize(flag_a)
            .with_smooth(flag_b)
            .with_backend(backend);
        // The symmetric path (hinge) where the scratch allows it, else the row path.
        let symmetric: bool = u.arbitrary().unwrap_or(false);
        let len = if symmetric { l.symmetric_scratch_len(n, d, n) } else { l.scratch_len(n, d) };
        let mut scratch = vec![0.0; len];
        l.batch_with_grad(&x, d, &classes, &mut grad, &mut scratch).unwrap()
    };
    let context = || format!("{backend:?} N={n} d={d} m={margin:e} hard={hard} flags={flag_a},{flag_b}\n  x={x:?}\n  classes={classes:?}");
    if !finite(&x) {
        require(close("non-finite in, NaN out", got, f64::NAN, 0.0, 0.0), context);
        require(
            if grad.iter().all(|g| g.is_nan()) { Ok(()) } else { Err("gradient not NaN".into()) },
            context,
        );
        return Ok(());
    }
    if largest(&x) > HUGE / 8.0 || f64::from(margin) > HUGE {
        return Ok(());
    }
    // Documented open corner: on normalised rows (batch-hard cosine, batch-all
    // `normalize`) a row of norm below about 1e-37 has per-pair gradient terms beyond
    // f32, which may meet as ∞ − ∞ = NaN even where their sum is finite, and its gradient
    // divides by that norm the terms its f32 normalised copies lost.
    let tiny_row = x
        .chunks_exact(d)
        .any(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() < 1e-37);
    // Batch-all's `normalize` works on f32 copies of the normalised rows, where a component
    // below 2⁻¹²⁶ of its row's norm is subnormal or lost; another row's gradient divides
    // such terms by its own norm (documented with the corner above).
    let lossy_row = x.chunks_exact(d).any(|r| {
        let norm = r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        r.iter()
            .any(|&v| v != 0.0 && f64::from(v).abs() < norm * f64::from(f32::MIN_POSITIVE))
    });
    let cosine_tiny = flag_a && (tiny_row || (!hard && lossy_row));
    // With normalised rows (batch-all `normalize`, batch-hard cosine), the direction
    // between two rows nearer than about 1e-3 is known only to the rounding of the
    // normalised rows (the golden file keeps its normalised rows 1e-3 apart for the same
    // reason): their gradients are not compared.
    let normalised = flag_a;
    let near_duplicates = normalised && {
        let unit: Vec<Vec<f64>> = x
            .chunks_exact(d)
            .map(|r| {
                let r: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
                let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                r.iter().map(|v| if norm > 0.0 { v / norm } else { 0.0 }).collect()
            })
            .collect();
        (0..n).any(|i| {
            (0..i).any(|j| {
                let d2: f64 = unit[i].iter().zip(&unit[j]).map(|(a, b)| (a - b) * (a - b)).sum();
                d2 > 0.0 && d2 < 1e-6
            })
        })
    };
    let r = if hard {
        triplet_oracle::batch_hard(&x, d, &classes, margin.into(), flag_a)
    } else {
        triplet_oracle::batch_all(&x, d, &classes, margin.into(), flag_b, flag_a)
    };
    let rtol = (2.0 * d as f64 + 2.0 * n as f64 + 32.0) * U;
    // Decisions within the bound of their kink may fall either way (and with them the
    // AvgNonZero count): nothing to compare then.
    let smooth_all = !hard && flag_b;
    if !smooth_all && r.kink_gap <= 64.0 * rtol {
        return Ok(());
    }
    require(close("loss", got, r.loss, rtol, r.scale), context);
    if cosine_tiny || near_duplicates {
        return Ok(());
    }
    for k in 0..n * d {
        // Documented: a component beyond f32 whose contributions overflow with both signs
        // is NaN (∞ − ∞), not ±∞.
        if grad[k].is_nan() && r.grad[k].abs() >= f64::from(f32::MAX) {
            continue;
        }
        require(close(&format!("grad[{k}]"), grad[k], r.grad[k], rtol, r.grad_scale[k]), context);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(which) = u.int_in_range(0..=2u8) else {
        return;
    };
    for backend in Backend::available() {
        let mut u = Unstructured::new(u.peek_bytes(u.len()).unwrap_or(&[]));
        let _ = match which {
            0 => explicit(&mut u, backend),
            1 => cosine_embedding(&mut u, backend),
            _ => in_batch(&mut u, backend),
        };
    }
});
