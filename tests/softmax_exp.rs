//! The vectorised `e^x` of every backend against f64 over the whole f32 range, strided
//! (every 65,521st bit pattern, both signs, subnormal results included), with the bound the
//! docs state: 1.5 ULP (the full sweep of `examples/exp_ulp.rs` measured 1.010 at most).

use contrastive::Backend;

#[path = "common/ulps.rs"]
mod ulps;

use ulps::ulps;

fn bound(_: Backend) -> f64 {
    1.5
}

#[test]
fn exp_is_within_its_ulp_bound_over_the_f32_range() {
    let inputs: Vec<f32> = (0..=u32::MAX).step_by(65_521).map(f32::from_bits).collect();
    for backend in Backend::available() {
        let mut out = inputs.clone();
        backend.exp_in_place(&mut out).unwrap();
        for (&x, &y) in inputs.iter().zip(&out) {
            let e = ulps(y, f64::from(x).exp());
            assert!(
                e <= bound(backend),
                "{}: exp({x:e}) = {y:e}, {e} ULP",
                backend.name()
            );
        }
    }
}

#[test]
fn exp_edges_are_exact() {
    let edges = [
        (0.0f32, 1.0f32),
        (-0.0, 1.0),
        (f32::NEG_INFINITY, 0.0),
        (f32::INFINITY, f32::INFINITY),
        (89.0, f32::INFINITY),
        (88.8, f32::INFINITY),
        (-104.0, 0.0),
        (-1000.0, 0.0),
        (f32::MAX, f32::INFINITY),
        (f32::MIN, 0.0),
    ];
    for backend in Backend::available() {
        // Every length up to 40, so that each backend's tail path runs.
        for len in 1..=40 {
            let mut v: Vec<f32> = (0..len).map(|i| edges[i % edges.len()].0).collect();
            backend.exp_in_place(&mut v).unwrap();
            for (i, &y) in v.iter().enumerate() {
                assert_eq!(
                    y,
                    edges[i % edges.len()].1,
                    "{} len {len} at {i}",
                    backend.name()
                );
            }
        }
        let mut v = [f32::NAN, 1.0, f32::NAN];
        backend.exp_in_place(&mut v).unwrap();
        assert!(v[0].is_nan() && v[2].is_nan() && !v[1].is_nan());
        // The largest finite result and the smallest subnormal one.
        let mut v = [88.72283f32, -103.27893];
        backend.exp_in_place(&mut v).unwrap();
        assert!(
            v[0].is_finite() && v[0] > 3.4e38,
            "{}: {}",
            backend.name(),
            v[0]
        );
        assert!(
            ulps(v[1], (-103.27893f64).exp()) <= 1.0,
            "{}: {:e}",
            backend.name(),
            v[1]
        );
    }
}
