//! The backends a test sweeps: every available one natively; under Miri only those that
//! the pass's `-C target-feature` flags add (AVX-512 and AVX2 with `+avx512f`, AVX2 with
//! `+avx2` alone, else portable, whose `wide` vectors are SSE2 intrinsics), so that the
//! Miri passes (.ci/steps/20-background.sh) cover every backend with `unsafe` or
//! intrinsics once. The AVX2 kernels are `#[target_feature]` functions: the AVX-512 pass
//! runs them as it runs its own. The scalar backend is plain safe arithmetic: it runs
//! natively only (every native sweep, and the aarch64, wasm32 and embedded suites).

use contrastive::Backend;

pub fn backends() -> Vec<Backend> {
    if !cfg!(miri) {
        return Backend::available().collect();
    }
    let wanted: &[Backend] = if cfg!(target_feature = "avx512f") {
        &[Backend::Avx512, Backend::Avx2]
    } else if cfg!(target_feature = "avx2") {
        &[Backend::Avx2]
    } else {
        &[Backend::Portable]
    };
    for b in wanted {
        assert!(
            b.is_available(),
            "{b:?} should run under these target features"
        );
    }
    wanted.to_vec()
}
