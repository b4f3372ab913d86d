//! Gradients of the softmax losses against central differences of the f64 oracle's loss
//! (proptest: random small batches, every backend). This checks the analytic gradients
//! of the crate and, independently, the oracle's, which the other tests use as truth.

use crate::common;

use common::softmax_oracle as oracle;
use contrastive::{Backend, InfoNceLoss, NoPositive, NtXentLoss, SupConLoss};
use proptest::prelude::*;

/// `∂f/∂xₖ` by central differences in f64, step `h` relative to the component.
fn central(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    let mut xp = x.to_vec();
    for k in 0..x.len() {
        let h = 1e-6 * x[k].abs().max(1e-3);
        xp[k] = x[k] + h;
        let a = f(&xp);
        xp[k] = x[k] - h;
        let b = f(&xp);
        xp[k] = x[k];
        g[k] = (a - b) / (2.0 * h);
    }
    g
}

/// Rows away from zero (no kink at a zero row), values of f32.
fn batch(n: usize, d: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(prop_oneof![-1.0f32..-0.1, 0.1f32..1.0], n * d)
}

/// `|got − fd| ≤ 1e-3·|fd| + 1e-4·scaleᵢ + 1e-7`, with `scaleᵢ = Σⱼ |∂L/∂cosᵢⱼ|·2/‖xᵢ‖` the row's
/// scale from the oracle (a gradient that is exactly 0, as for d = 1, comes out as
/// rounding noise of that size): central differences are good to ~1e-6 here, the f32
/// gradient to the documented bound; this is a check of the formulas.
fn close(
    what: &str,
    got: &[f32],
    fd: &[f64],
    d: usize,
    scale: &[f64],
) -> Result<(), TestCaseError> {
    for (k, (&g, &f)) in got.iter().zip(fd).enumerate() {
        // 1e-7: the central differences' own noise floor (f64 rounding over steps ≥ 1e-7).
        let tol = 1e-3 * f.abs() + 1e-4 * scale[k / d] + 1e-7;
        prop_assert!(
            (f64::from(g) - f).abs() <= tol,
            "{what}: [{k}] {g:e} vs fd {f:e} (tol {tol:e})"
        );
    }
    Ok(())
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn infonce_gradients_match_central_differences(
        (n, d, x, y) in (2usize..6, 1usize..6).prop_flat_map(|(n, d)| (Just(n), Just(d), batch(n, d), batch(n, d))),
        symmetric in any::<bool>(),
        scale in 1.0f32..30.0,
    ) {
        let (x64, y64) = (to64(&x), to64(&y));
        let s = f64::from(scale);
        let fx = central(&x64, |v| oracle::infonce(v, &y64, d, s, symmetric).loss);
        let fy = central(&y64, |v| oracle::infonce(&x64, v, d, s, symmetric).loss);
        let o = oracle::chain(&x, &y, d, &oracle::infonce(&x, &y, d, s, symmetric), false);
        for backend in Backend::available() {
            let mut loss = InfoNceLoss::new(scale).with_backend(backend);
            loss.symmetric = symmetric;
            let mut sc = vec![0.0; loss.scratch_len(n, d)];
            let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            loss.forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut sc).unwrap();
            close(&format!("grad_x on {}", backend.name()), &gx, &fx, d, &o.scale_x)?;
            close(&format!("grad_y on {}", backend.name()), &gy, &fy, d, &o.scale_y)?;
        }
    }

    #[test]
    fn supcon_gradients_match_central_differences(
        (n, d, x) in (2usize..7, 1usize..6).prop_flat_map(|(n, d)| (Just(n), Just(d), batch(n, d))),
        k in 1u32..4,
        zero in any::<bool>(),
    ) {
        let classes: Vec<u32> = (0..n as u32).map(|i| i % k).collect();
        let (mode, name) = if zero { (NoPositive::Zero, "zero") } else { (NoPositive::Exclude, "exclude") };
        let x64 = to64(&x);
        let fd = central(&x64, |v| oracle::supcon(v, d, &classes, 0.5, 0.25, name).loss);
        let o = oracle::chain(&x, &x, d, &oracle::supcon(&x, d, &classes, 0.5, 0.25, name), true);
        for backend in Backend::available() {
            let loss = SupConLoss::new(0.5).with_base_temperature(0.25).with_no_positive(mode).with_backend(backend);
            let mut sc = vec![0.0; loss.scratch_len(n, d)];
            let mut g = vec![0.0; x.len()];
            loss.forward_with_grad(&x, d, &classes, &mut g, &mut sc).unwrap();
            close(&format!("supcon on {}", backend.name()), &g, &fd, d, &o.scale_x)?;
        }
    }

    #[test]
    fn ntxent_gradients_match_central_differences(
        (n, d, x) in (2usize..7, 1usize..6).prop_flat_map(|(n, d)| (Just(n), Just(d), batch(n, d))),
        k in 1u32..4,
    ) {
        let classes: Vec<u32> = (0..n as u32).map(|i| i % k).collect();
        let x64 = to64(&x);
        let fd = central(&x64, |v| oracle::ntxent(v, d, &classes, 0.5).loss);
        let o = oracle::chain(&x, &x, d, &oracle::ntxent(&x, d, &classes, 0.5), true);
        for backend in Backend::available() {
            let loss = NtXentLoss::new(0.5).with_backend(backend);
            let mut sc = vec![0.0; loss.scratch_len(n, d)];
            let mut g = vec![0.0; x.len()];
            loss.forward_with_grad(&x, d, &classes, &mut g, &mut sc).unwrap();
            close(&format!("ntxent on {}", backend.name()), &g, &fd, d, &o.scale_x)?;
        }
    }
}
