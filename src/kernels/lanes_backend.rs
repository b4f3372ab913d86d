//! Builds a kernel table from a [`Lanes`](super::generic::Lanes) type: the scalar and
//! portable backends are the same generic loops over different lanes.

/// Expands to a `pub(crate) static KERNELS: Kernels` whose entries run the generic loops of
/// `generic.rs` over the lanes type `$lanes`.
macro_rules! lanes_backend {
    ($lanes:ty) => {
        use super::Kernels;
        use super::generic::{self, Dot, DotAndNorms, LinearCombination, SquaredEuclidean};

        fn squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
            generic::reduce::<$lanes, SquaredEuclidean, 1>(a, b)[0]
        }
        fn robust_squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
            crate::numerics::squared_or_rescaled(squared_euclidean(a, b), a, b)
        }
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            generic::reduce::<$lanes, Dot, 1>(a, b)[0]
        }
        fn dot_and_norms(a: &[f32], b: &[f32]) -> [f32; 3] {
            generic::reduce::<$lanes, DotAndNorms, 3>(a, b)
        }
        // Never inlined: where the table is known at compile time (no_std firmware), the
        // callers' special cases (k = 0, NaN) would each get their own copy of the loop.
        #[inline(never)]
        fn scaled_difference(a: &[f32], b: &[f32], k: f32, out_a: &mut [f32], out_b: &mut [f32]) {
            generic::scaled_difference::<$lanes>(a, b, k, out_a, out_b)
        }
        fn linear_combination(
            a: &[f32],
            b: &[f32],
            p: [f32; 4],
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) {
            generic::map2::<$lanes, LinearCombination>(a, b, p, out_a, out_b)
        }
        fn squared_euclidean_rows(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
            generic::squared_euclidean_rows::<$lanes>(a, b, dim, out)
        }
        fn scaled_difference_rows(
            a: &[f32],
            b: &[f32],
            dim: usize,
            k: &[f32],
            out_a: &mut [f32],
            out_b: &mut [f32],
            _stream: bool,
        ) {
            generic::scaled_difference_rows::<$lanes>(a, b, dim, k, out_a, out_b)
        }

        fn contrastive_epilogue(
            sums: &[f32; super::EPILOGUE_ROWS],
            labels: &[f32; super::EPILOGUE_ROWS],
            params: [f32; 4],
            gradient: bool,
            losses: &mut [f32; super::EPILOGUE_ROWS],
            coefficients: &mut [f32; super::EPILOGUE_ROWS],
        ) -> super::epilogue::Summary {
            super::epilogue::contrastive_epilogue(
                sums,
                labels,
                params,
                gradient,
                losses,
                coefficients,
                super::epilogue::sum_f64,
            )
        }

        pub(crate) static KERNELS: Kernels = Kernels {
            squared_euclidean,
            robust_squared_euclidean,
            dot,
            dot_and_norms,
            scaled_difference,
            linear_combination,
            squared_euclidean_rows,
            scaled_difference_rows,
            contrastive_epilogue,
            contrastive_one_pass: |_, _, _, _, _, _, _, _| crate::kernels::OnePass::Declined,
            one_pass_takes: |_, _| false,
            contrastive_forward: |_, _, _, _, _, _, _| crate::kernels::OnePass::Declined,
            fence: || {},
        };
    };
}
pub(crate) use lanes_backend;
