//! The in-batch and cross-batch contrastive losses (every pair of a batch from class
//! labels, on the tile engine) against the float64 oracle of the tests, over batch sizes,
//! row lengths, values of every magnitude, class patterns and the loss's options, on
//! every available backend. NaN in gives NaN out; inputs of moderate magnitude (zeros and
//! 1e-12 to 1e12) give the oracle's loss and gradient within a loose multiple of the
//! documented bound, away from kinks (a hinge at its margin, a distance at 0), where any
//! subgradient is right.

#![no_main]

use contrastive::Backend;
use contrastive_fuzz::{Unstructured, vector};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/inbatch_oracle.rs"]
mod inbatch_oracle;
#[path = "../../tests/common/inbatch_loss.rs"]
mod inbatch_loss;
use inbatch_loss::loss_of;
use inbatch_oracle::{Dist, Red};

const U: f64 = 1.0 / 16_777_216.0;

fn config(u: &mut Unstructured, dim: usize) -> contrastive_fuzz::Result<inbatch_oracle::Loss> {
    let dist = *u.choose(&[Dist::Euclidean, Dist::Squared, Dist::Cosine])?;
    let scale = *u.choose(&[1.0f64, (dim as f64).sqrt(), 1e-20, 1e15])?;
    let m_pos = f64::from(u.int_in_range(0..=3u8)?) * 0.25 * scale;
    let m_neg = f64::from(u.int_in_range(0..=8u8)?) * 0.5 * scale;
    Ok(inbatch_oracle::Loss {
        dist,
        normalize: u.arbitrary()?,
        m_pos: f64::from(m_pos as f32),
        m_neg: f64::from(m_neg as f32),
        power: if u.arbitrary()? { 2 } else { 1 },
        w_pos: f64::from(*u.choose(&[0.0f32, 0.5, 1.0, 2.0])?),
        w_neg: f64::from(*u.choose(&[0.0f32, 0.5, 1.0, 3.0])?),
        red: *u.choose(&[Red::Mean, Red::Sum, Red::AvgNonZero])?,
    })
}


fn close(got: f32, want: f64, scale: f64, rtol: f64) -> bool {
    let rounded = f64::from(want as f32);
    if rounded.is_infinite() || got.is_infinite() {
        // Beyond f32: overflow to the same infinity (or a scale so large that the
        // comparison says nothing).
        return f64::from(got) == rounded || scale > 1e36;
    }
    (f64::from(got) - want).abs() <= f64::from(f32::MIN_POSITIVE) + rtol * (scale + want.abs())
}

fn run(u: &mut Unstructured) -> contrastive_fuzz::Result<()> {
    let dim = u.int_in_range(1..=24usize)?;
    let n = u.int_in_range(0..=9usize)?;
    let m = u.int_in_range(0..=9usize)?;
    let cross: bool = u.arbitrary()?;
    let o = config(u, dim)?;
    let x = vector(u, n * dim)?;
    let y = vector(u, m * dim)?;
    let classes = |u: &mut Unstructured, k: usize| -> contrastive_fuzz::Result<Vec<u32>> {
        (0..k)
            .map(|_| Ok(u32::from(u.int_in_range(0..=2u8)?) * 0x5555_5555))
            .collect()
    };
    let (xc, yc) = (classes(u, n)?, classes(u, m)?);
    let loss = loss_of(&o);
    let nan = x
        .iter()
        .chain(if cross { &y[..] } else { &[] })
        .any(|v| v.is_nan());
    // The oracle comparison runs on moderate magnitudes (or zeros); the extremes (1e-30,
    // 1e19) have their own tests in tests/inbatch.rs, and here only NaN in, NaN out.
    let finite = x
        .iter()
        .chain(&y)
        .all(|v| *v == 0.0 || (1e-12..=1e12).contains(&v.abs()));
    let pairs = if cross {
        inbatch_oracle::across_pairs(&xc, &yc)
    } else {
        inbatch_oracle::within_pairs(&xc)
    };
    let out = inbatch_oracle::evaluate(&o, &x, if cross { &y } else { &x }, dim, &pairs, !cross);
    // Away from kinks, relative to the distances involved.
    let smooth = out.kink_gap > 1e-3 * (1.0 + o.m_pos.abs() + o.m_neg.abs());
    let rtol = 64.0 * (2.0 * dim as f64 + 16.0) * U;
    for backend in Backend::available() {
        let loss = loss.with_backend(backend);
        let rows = if cross { n + m } else { n };
        let mut scratch =
            vec![f32::NAN; loss.min_scratch_len(rows, dim) + u.int_in_range(0..=3000usize)?];
        let (mut gx, mut gy) = (vec![f32::NAN; x.len()], vec![f32::NAN; y.len()]);
        let got = if cross {
            loss.cross_batch_with_grad(&x, &y, dim, &xc, &yc, &mut gx, &mut gy, &mut scratch)
        } else {
            loss.in_batch_with_grad(&x, dim, &xc, &mut gx, &mut scratch)
        };
        let got = match got {
            Ok(l) => l,
            Err(e) => {
                // The only refusal for valid shapes: a mean over no pair.
                assert!(pairs.is_empty() && o.red == Red::Mean, "{backend:?}: {e:?}");
                continue;
            }
        };
        if nan && !pairs.is_empty() {
            assert!(
                got.is_nan(),
                "{backend:?} {o:?} cross {cross}: NaN in, {got} out\n  dim {dim} x {x:?} {xc:?}\n  y {y:?} {yc:?}"
            );
            continue;
        }
        if !finite || !smooth {
            continue;
        }
        assert!(
            close(got, out.loss, out.loss_scale, rtol),
            "{backend:?} {o:?}: loss {got} vs {}",
            out.loss
        );
        for (k, &g) in gx.iter().enumerate() {
            assert!(
                close(g, out.gx[k], out.gx_scale[k], rtol),
                "{backend:?} {o:?}: gx[{k}] {g} vs {} (scale {})",
                out.gx[k],
                out.gx_scale[k]
            );
        }
        if cross {
            for (k, &g) in gy.iter().enumerate() {
                assert!(
                    close(g, out.gy[k], out.gy_scale[k], rtol),
                    "{backend:?} {o:?}: gy[{k}] {g} vs {} (scale {})",
                    out.gy[k],
                    out.gy_scale[k]
                );
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
