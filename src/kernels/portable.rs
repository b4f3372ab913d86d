//! Kernels on `wide::f32x8`: SSE2 on x86-64 (two `__m128` per vector), NEON on aarch64,
//! simd128 on wasm32 (with `-C target-feature=+simd128`). `wide` picks its instructions at
//! compile time, so inside this module the target's baseline ISA is what runs.

use super::generic::Lanes;
use wide::f32x8;

impl Lanes for f32x8 {
    const WIDTH: usize = 8;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        f32x8::splat(x)
    }
    #[inline(always)]
    fn load(chunk: &[f32]) -> Self {
        // `chunk` always has 8 elements here, so the conversion cannot fail and compiles to
        // one (or two) vector loads; the fallback keeps the function panic-free.
        let lanes: [f32; 8] = chunk.try_into().unwrap_or([0.0; 8]);
        f32x8::new(lanes)
    }
    #[inline(always)]
    fn store(self, chunk: &mut [f32]) {
        if let Ok(out) = <&mut [f32; 8]>::try_from(chunk) {
            *out = self.to_array();
        }
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self - other
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        f32x8::mul_add(self, m, a)
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        self.reduce_add()
    }
}

super::lanes_backend::lanes_backend!(f32x8);
