//! Sweeps every f32 input (or every `STRIDE`-th, from the first argument) through each
//! available backend's `exp_in_place` and reports the largest error in ULP against f64,
//! the input where it occurs, and how many inputs are off by more than 1 ULP.
//!
//! `cargo run --release --example exp_ulp` (about a minute per backend).

use contrastive::Backend;

#[path = "../tests/common/ulps.rs"]
mod ulps;

use ulps::ulps;

fn main() {
    let stride: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for backend in Backend::available() {
        let mut worst = (0.0f64, 0.0f32);
        let mut over_one = 0u64;
        let mut count = 0u64;
        let mut buf = vec![0.0f32; 1 << 16];
        let mut inputs = vec![0.0f32; 1 << 16];
        let mut bits: u64 = 0;
        while bits <= u64::from(u32::MAX) {
            let mut n = 0;
            while n < buf.len() && bits <= u64::from(u32::MAX) {
                inputs[n] = f32::from_bits(bits as u32);
                bits += stride;
                n += 1;
            }
            buf[..n].copy_from_slice(&inputs[..n]);
            backend.exp_in_place(&mut buf[..n]).unwrap();
            for (&x, &y) in inputs[..n].iter().zip(&buf[..n]) {
                let e = ulps(y, f64::from(x).exp());
                if e > worst.0 {
                    worst = (e, x);
                }
                if e > 1.0 {
                    over_one += 1;
                }
                count += 1;
            }
        }
        println!(
            "{:>8}: {count} inputs, max error {:.3} ULP at x = {:e} ({:#010x}), {over_one} above 1 ULP",
            backend.name(),
            worst.0,
            worst.1,
            worst.1.to_bits()
        );
    }
}
