//! NT-Xent, SupCon and InfoNCE/CLIP on every available backend against the float64 oracle
//! (`tests/common/softmax_oracle.rs`), within the documented bounds, over arbitrary batch
//! sizes, row lengths, start offsets, classes, temperatures and scales; rows of components
//! from 1e-30 to 1e19 in magnitude (and zeros), the range the bounds cover. Any NaN or
//! infinite component must give a NaN loss, never a panic.

#![no_main]

use contrastive::{Backend, InfoNceLoss, NoPositive, NtXentLoss, SupConLoss};
use contrastive_fuzz::softmax_oracle::{
    self as oracle, check_grad, check_loss, grad_tol, loss_tol,
};
use contrastive_fuzz::{Unstructured, offset, placed};
use libfuzzer_sys::fuzz_target;

/// A component: 0 or `±m·2^e` with `e` such that the magnitude is in [1e-30, 1e19].
fn component(u: &mut Unstructured) -> contrastive_fuzz::Result<f32> {
    if u.ratio(1, 8)? {
        return Ok(0.0);
    }
    let e: i32 = u.int_in_range(-99..=62)?;
    let bits: u32 = u.arbitrary()?;
    let m = f32::from_bits(0x3f80_0000 | (bits & 0x007f_ffff));
    let s = if bits >> 31 == 1 { -1.0 } else { 1.0 };
    Ok((s * f64::from(m) * 2f64.powi(e)) as f32)
}

/// One magnitude per row (the cosines do not care), so that rows mix magnitudes.
fn batch(u: &mut Unstructured, n: usize, d: usize) -> contrastive_fuzz::Result<Vec<f32>> {
    let mut v = Vec::with_capacity(n * d);
    for _ in 0..n {
        let scale = 2f32.powi(u.int_in_range(-40..=40)?);
        for _ in 0..d {
            let c = component(u)?;
            let c = c * scale;
            v.push(
                if c.is_finite() && (c == 0.0 || c.abs() >= 1e-30) && c.abs() <= 1e19 {
                    c
                } else {
                    0.0
                },
            );
        }
    }
    Ok(v)
}

fn run(u: &mut Unstructured) -> contrastive_fuzz::Result<()> {
    let n = usize::from(u.int_in_range(1..=20u8)?);
    let d = usize::from(u.int_in_range(1..=40u8)?);
    let x = batch(u, n, d)?;
    let mut y = batch(u, n, d)?;
    if u.ratio(1, 4)? {
        y.copy_from_slice(&x);
    }
    let k = u32::from(u.int_in_range(1..=6u8)?);
    let classes: Vec<u32> = (0..n)
        .map(|_| u.int_in_range(0..=k))
        .collect::<contrastive_fuzz::Result<_>>()?;
    let tau = [0.05f32, 0.07, 0.1, 0.5, 1.0][usize::from(u.int_in_range(0..=4u8)?)];
    let scale = [1.0f32, 14.285714, 20.0, 50.0, 100.0][usize::from(u.int_in_range(0..=4u8)?)];
    let symmetric: bool = u.arbitrary()?;
    // Rows of keys per pass: 32 is `scratch_len` (the tile kernels), fewer the plain dot
    // products a short scratch gets.
    let width = if u.ratio(1, 2)? { 32 } else { usize::from(u.int_in_range(1..=32u8)?) };
    let poison = u.ratio(1, 10)?;
    let (ox, oy) = (offset(u)?, offset(u)?);
    let (mut bx, by) = (placed(&x, ox), placed(&y, oy));
    if poison {
        let at = ox + usize::from(u.int_in_range(0..=255u8)?) % (n * d);
        bx[at] =
            [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][usize::from(u.int_in_range(0..=2u8)?)];
    }
    let (x, y) = (&bx[ox..], &by[oy..]);
    let case = || {
        format!(
            "n {n} d {d} tau {tau} scale {scale} sym {symmetric}\n x {x:?}\n y {y:?}\n classes {classes:?}"
        )
    };

    let clip = oracle::infonce(x, y, d, f64::from(scale), symmetric);
    let clip_g = oracle::chain(x, y, d, &clip, false);
    let sup = oracle::supcon(x, d, &classes, f64::from(tau), f64::from(tau), "exclude");
    let sup_g = oracle::chain(x, x, d, &sup, true);
    let nt = oracle::ntxent(x, d, &classes, f64::from(tau));
    let nt_g = oracle::chain(x, x, d, &nt, true);
    let s_clip = f64::from(scale);
    let s_tau = f64::from(1.0 / tau);
    for backend in Backend::available() {
        let what = format!("{} on {}\n{}", "infonce", backend.name(), case());
        let mut loss = InfoNceLoss::new(scale).with_backend(backend);
        loss.symmetric = symmetric;
        let mut s = vec![0.0; loss.min_scratch_len(n, d) - d + width * d];
        let (mut gx, mut gy) = (vec![0.0; n * d], vec![0.0; n * d]);
        let l = loss
            .forward_with_grad(x, y, d, &mut gx, &mut gy, &mut s)
            .unwrap();
        if poison {
            assert!(l.is_nan(), "{what}: {l}");
        } else {
            check_loss(&what, l, clip.loss, loss_tol(s_clip, d, clip.loss));
            check_grad(&what, &gx, &clip_g.gx, d, |i| {
                grad_tol(s_clip, d, n, clip_g.scale_x[i], clip_g.inv_x[i])
            });
            check_grad(&what, &gy, &clip_g.gy, d, |i| {
                grad_tol(s_clip, d, n, clip_g.scale_y[i], clip_g.inv_y[i])
            });
        }

        let what = format!("supcon on {}\n{}", backend.name(), case());
        let loss = SupConLoss::new(tau)
            .with_no_positive(NoPositive::Exclude)
            .with_backend(backend);
        let mut s = vec![0.0; loss.min_scratch_len(n, d) - d + width * d];
        let l = loss
            .forward_with_grad(x, d, &classes, &mut gx, &mut s)
            .unwrap();
        if poison {
            assert!(l.is_nan() || l == 0.0, "{what}: {l}");
        } else {
            check_loss(&what, l, sup.loss, loss_tol(s_tau, d, sup.loss));
            check_grad(&what, &gx, &sup_g.gx, d, |i| {
                grad_tol(s_tau, d, n, sup_g.scale_x[i], sup_g.inv_x[i])
            });
        }

        let what = format!("ntxent on {}\n{}", backend.name(), case());
        let loss = NtXentLoss::new(tau).with_backend(backend);
        let mut s = vec![0.0; loss.min_scratch_len(n, d) - d + width * d];
        let l = loss
            .forward_with_grad(x, d, &classes, &mut gx, &mut s)
            .unwrap();
        if poison {
            assert!(l.is_nan() || l == 0.0, "{what}: {l}");
        } else {
            check_loss(&what, l, nt.loss, loss_tol(s_tau, d, nt.loss));
            check_grad(&what, &gx, &nt_g.gx, d, |i| {
                grad_tol(s_tau, d, n, nt_g.scale_x[i], nt_g.inv_x[i])
            });
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
