//! Checks that need neither `std` nor an allocator, for running on the targets themselves.
//!
//! Test code, so it lives with the firmware that runs it rather than in the library: the
//! firmware (`tests/selftest.rs` of this crate) runs the list on emulated Cortex-M4F,
//! Cortex-M0 and RV32IMAC, and the main crate's `tests/selftest.rs` includes this module
//! by path and runs the same list on the host and on every target its test suite runs on
//! (aarch64 under qemu-user, wasm32 under Node). So a no_std build is proven to compute the
//! same numbers as the host, with its own FPU (or soft-float), square root and subnormal
//! handling.
//!
//! The checks cover golden cases (inputs and the float64 reference, rounded to f32, from
//! `tests/data/golden.json`), extreme magnitudes, the edge-case semantics of the crate docs
//! and every kind of bad input. Golden cases and magnitudes run on every backend available
//! on the target. Only the crate's public API is used.

#![forbid(unsafe_code)]

pub mod golden;
mod inbatch;
mod softmax;

use contrastive::{
    Backend, ContrastiveLoss, Distance, Error, Reduction, cosine_similarity, dot, euclidean, seed,
    squared_euclidean,
};
use core::fmt;

/// A check: `Ok(())` or the first thing that was wrong.
pub type Check = fn() -> Result<(), Failure>;

/// Why a check failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Failure {
    /// What was being compared (for example `"grad_a"` or `"batch"`).
    pub what: &'static str,
    /// The backend it ran on, if it ran on a named one.
    pub backend: Option<Backend>,
    /// What differed.
    pub mismatch: Mismatch,
}

/// The difference a [`Failure`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mismatch {
    /// A number outside its tolerance.
    Value {
        /// Index of the component (0 for a scalar).
        index: usize,
        /// The computed value.
        got: f32,
        /// The reference value.
        expected: f32,
        /// The allowed absolute difference.
        tolerance: f64,
    },
    /// A call returned an error where a value was expected.
    UnexpectedError(Error),
    /// A call returned a value where an error was expected.
    UnexpectedOk {
        /// The error that was expected.
        expected: Error,
    },
    /// A call returned another error than expected.
    WrongError {
        /// The error returned.
        got: Error,
        /// The error expected.
        expected: Error,
    },
    /// A golden case does not fit the check's fixed-size buffers.
    TooLarge {
        /// The case's element count.
        len: usize,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)?;
        if let Some(b) = self.backend {
            write!(f, " on {}", b.name())?;
        }
        match self.mismatch {
            Mismatch::Value {
                index,
                got,
                expected,
                tolerance,
            } => write!(
                f,
                "[{index}]: got {got:e}, expected {expected:e} (tolerance {tolerance:e})"
            ),
            Mismatch::UnexpectedError(e) => write!(f, ": unexpected error: {e}"),
            Mismatch::UnexpectedOk { expected } => {
                write!(f, ": returned Ok, expected the error: {expected}")
            }
            Mismatch::WrongError { got, expected } => {
                write!(f, ": got the error: {got}; expected: {expected}")
            }
            Mismatch::TooLarge { len } => write!(f, ": {len} elements do not fit the buffers"),
        }
    }
}

/// One golden case: inputs, and the float64 reference rounded to f32.
#[derive(Debug)]
pub struct Golden {
    /// Its id in `tests/data/golden.json`.
    pub id: &'static str,
    /// Which function computes it.
    pub loss: GoldenLoss,
    /// First inputs (`x1` or `input_1`), row-major.
    pub a: &'static [f32],
    /// Second inputs (`x2` or `input_2`), row-major.
    pub b: &'static [f32],
    /// Labels, 1 = similar.
    pub labels: &'static [f32],
    /// The reduced loss.
    pub expected_loss: f32,
    /// Per-pair losses (empty for the seed port).
    pub expected_per_pair: &'static [f32],
    /// `∂loss/∂a`.
    pub expected_grad_a: &'static [f32],
    /// `∂loss/∂b`.
    pub expected_grad_b: &'static [f32],
}

/// The function a [`Golden`] case is computed by.
#[derive(Clone, Copy, Debug)]
pub enum GoldenLoss {
    /// [`seed::contrastive_loss_with_grad`] with this margin.
    Seed {
        /// The margin.
        margin: f32,
    },
    /// A [`ContrastiveLoss`] over rows of `dim`.
    Contrastive {
        /// The loss, with its preset, distance and reduction.
        loss: ContrastiveLoss,
        /// Row length.
        dim: usize,
    },
}

/// Every check, by name.
pub static CHECKS: &[(&str, Check)] = &[
    ("golden_seed_np_random_0", || {
        run_golden(&golden::SEED_NP_RANDOM_0)
    }),
    ("golden_hadsell_n3_d5", || {
        run_golden(&golden::HADSELL_N3_D5)
    }),
    ("golden_hadsell_n3_d44", || {
        run_golden(&golden::HADSELL_N3_D44)
    }),
    ("golden_tfa_sum_n8_d5", || {
        run_golden(&golden::TFA_SUM_N8_D5)
    }),
    ("golden_tiny_1e-30", || run_golden(&golden::TINY_1E_30)),
    ("golden_subnormal_1e-40", || {
        run_golden(&golden::SUBNORMAL_1E_40)
    }),
    ("golden_huge_1e19_vs_0", || {
        run_golden(&golden::HUGE_1E19_VS_0)
    }),
    ("golden_near_f32_max", || run_golden(&golden::NEAR_F32_MAX)),
    ("golden_cosine_n6_d3_mean", || {
        run_golden(&golden::COSINE_N6_D3_MEAN)
    }),
    ("golden_cosine_n3_d64_sum", || {
        run_golden(&golden::COSINE_N3_D64_SUM)
    }),
    (
        "euclidean_roots_are_correctly_rounded",
        euclidean_roots_are_correctly_rounded,
    ),
    ("distances_of_tiny_components", distances_of_tiny_components),
    ("distances_of_huge_components", distances_of_huge_components),
    (
        "dot_survives_intermediate_overflow",
        dot_survives_intermediate_overflow,
    ),
    ("cosine_of_extreme_magnitudes", cosine_of_extreme_magnitudes),
    ("nan_in_nan_out", nan_in_nan_out),
    (
        "gradient_is_zero_at_zero_distance",
        gradient_is_zero_at_zero_distance,
    ),
    (
        "inactive_term_is_not_evaluated",
        inactive_term_is_not_evaluated,
    ),
    ("empty_pair_costs_the_margin", empty_pair_costs_the_margin),
    (
        "mismatched_lengths_are_errors",
        mismatched_lengths_are_errors,
    ),
    ("bad_batch_shapes_are_errors", bad_batch_shapes_are_errors),
    ("bad_labels_are_errors", bad_labels_are_errors),
    (
        "bad_margins_and_weights_are_errors",
        bad_margins_and_weights_are_errors,
    ),
    ("empty_means_are_errors", empty_means_are_errors),
    (
        "unavailable_backends_are_errors",
        unavailable_backends_are_errors,
    ),
    (
        "in_batch_forward_and_gradient",
        inbatch::in_batch_forward_and_gradient,
    ),
    (
        "infonce_forward_and_gradients",
        softmax::infonce_forward_and_gradients,
    ),
];

/// Runs every check and returns `(passed, failed)`, calling `report(name, result)` after
/// each one.
pub fn run_all(mut report: impl FnMut(&str, &Result<(), Failure>)) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in CHECKS {
        let result = check();
        match result {
            Ok(()) => passed += 1,
            Err(_) => failed += 1,
        }
        report(name, &result);
    }
    (passed, failed)
}

// ---------------------------------------------------------------------------------------
// Comparison

/// `u = 2⁻²⁴`.
const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;
/// The smallest subnormal f32, `2⁻¹⁴⁹`.
const SMALLEST_SUBNORMAL: f64 = 1.401_298_464_324_817e-45;
/// Relative tolerance of the golden checks: 1e-5 of the pair's scale, or the crate's
/// stated `(2n + 16)·u` when that is larger.
fn relative_tolerance(n: usize) -> f64 {
    f64::max(1e-5, (2 * n + 16) as f64 * UNIT_ROUNDOFF)
}

/// `got` is `expected` within `tolerance`; non-finite references must match exactly (NaN
/// with NaN, an infinity with the same infinity).
fn close(
    what: &'static str,
    backend: Option<Backend>,
    index: usize,
    got: f32,
    expected: f32,
    tolerance: f64,
) -> Result<(), Failure> {
    let ok = if expected.is_nan() {
        got.is_nan()
    } else if expected.is_infinite() {
        got == expected
    } else {
        got.is_finite() && (f64::from(got) - f64::from(expected)).abs() <= tolerance
    };
    if ok {
        Ok(())
    } else {
        Err(Failure {
            what,
            backend,
            mismatch: Mismatch::Value {
                index,
                got,
                expected,
                tolerance,
            },
        })
    }
}

/// `got` is exactly `expected` (bit-for-bit up to the sign of zero; NaN matches NaN).
fn exact(
    what: &'static str,
    backend: Option<Backend>,
    got: f32,
    expected: f32,
) -> Result<(), Failure> {
    close(what, backend, 0, got, expected, 0.0)
}

fn value(what: &'static str, r: Result<f32, Error>) -> Result<f32, Failure> {
    r.map_err(|e| Failure {
        what,
        backend: None,
        mismatch: Mismatch::UnexpectedError(e),
    })
}

fn on(backend: Backend, r: Result<(), Failure>) -> Result<(), Failure> {
    r.map_err(|f| Failure {
        backend: Some(backend),
        ..f
    })
}

/// `r` is exactly the error `expected` (NaN payloads compare as equal).
fn expect_error<T>(
    what: &'static str,
    r: Result<T, Error>,
    expected: Error,
) -> Result<(), Failure> {
    let same = |got: &Error| match (*got, expected) {
        (Error::InvalidLabel { index: i, label: l }, Error::InvalidLabel { index, label }) => {
            i == index && (l == label || (l.is_nan() && label.is_nan()))
        }
        (Error::InvalidMargin { margin: g }, Error::InvalidMargin { margin }) => {
            g == margin || (g.is_nan() && margin.is_nan())
        }
        (got, expected) => got == expected,
    };
    match r {
        Err(got) if same(&got) => Ok(()),
        Err(got) => Err(Failure {
            what,
            backend: None,
            mismatch: Mismatch::WrongError { got, expected },
        }),
        Ok(_) => Err(Failure {
            what,
            backend: None,
            mismatch: Mismatch::UnexpectedOk { expected },
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Golden cases

/// Buffers of the golden checks: the largest case has 192 elements per side.
const MAX_ELEMENTS: usize = 192;
const MAX_ROWS: usize = 16;

/// The scales of one pair, from which the tolerances follow (see the crate docs): the sum
/// of the absolute terms of the loss, and the largest gradient component such terms give.
#[derive(Clone, Copy, Debug, Default)]
struct PairScale {
    loss: f64,
    grad: f64,
}

/// Scales of a pair with weights `p` (similar term) and `q` (dissimilar term), computed in
/// f64 from the inputs. `two_c` is twice the reduction factor.
fn pair_scale(
    distance: Distance,
    a: &[f32],
    b: &[f32],
    p: f64,
    q: f64,
    margin: f64,
    two_c: f64,
) -> PairScale {
    // The golden cases the selftest runs are the pair losses' (Euclidean or cosine, mean or
    // sum): the in-batch options (squared Euclidean, AvgNonZero) never reach these arms.
    match distance {
        Distance::Euclidean | Distance::SquaredEuclidean => {
            let (mut s, mut largest) = (0.0f64, 0.0f64);
            for (&x, &y) in a.iter().zip(b) {
                let d = f64::from(x) - f64::from(y);
                s += d * d;
                largest = largest.max(d.abs());
            }
            let d = libm::sqrt(s);
            let mut loss = p * s;
            let mut factor = p;
            if q != 0.0 && d < margin {
                loss += q * (margin + d) * (margin + d);
                if d > 0.0 {
                    factor += q * (margin + d) / d;
                }
            }
            PairScale {
                loss,
                grad: two_c * factor * largest,
            }
        }
        Distance::Cosine => {
            // D = 1 − cos is computed from terms of size 1, so its error is absolute: the
            // loss scale is `p·(1 + |cos|)² + q·(m + 1 + |cos|)²`, and the gradient scale that
            // times the largest `|∂cos/∂a_i|`, bounded by `|b_i|/(|a||b|) + |a_i|/|a|²`.
            let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
            for (&x, &y) in a.iter().zip(b) {
                let (x, y) = (f64::from(x), f64::from(y));
                ab += x * y;
                aa += x * x;
                bb += y * y;
            }
            let (na, nb) = (libm::sqrt(aa), libm::sqrt(bb));
            let cos = if na > 0.0 && nb > 0.0 {
                (ab / (na * nb)).abs()
            } else {
                0.0
            };
            let slope = p * (1.0 + cos) + q * (margin + 1.0 + cos);
            let loss =
                p * (1.0 + cos) * (1.0 + cos) + q * (margin + 1.0 + cos) * (margin + 1.0 + cos);
            let mut dcos = 0.0f64;
            if na > 0.0 && nb > 0.0 {
                for (&x, &y) in a.iter().zip(b) {
                    let (x, y) = (f64::from(x).abs(), f64::from(y).abs());
                    dcos = dcos.max(y / (na * nb) + x / aa).max(x / (na * nb) + y / bb);
                }
            }
            PairScale {
                loss,
                grad: two_c * slope * dcos,
            }
        }
        // `Distance` is non-exhaustive; the golden cases use only the two above.
        _ => unreachable!("a golden case with a distance the selftest does not know"),
    }
}

/// Runs a golden case through every API that computes it, on every available backend.
pub fn run_golden(case: &Golden) -> Result<(), Failure> {
    let n = case.a.len();
    if n > MAX_ELEMENTS || case.labels.len() > MAX_ROWS {
        return Err(Failure {
            what: case.id,
            backend: None,
            mismatch: Mismatch::TooLarge { len: n },
        });
    }
    for backend in Backend::available() {
        let r = match case.loss {
            GoldenLoss::Seed { margin } => golden_seed(case, margin, backend),
            GoldenLoss::Contrastive { loss, dim } => {
                golden_contrastive(case, loss.with_backend(backend), dim)
            }
        };
        on(backend, r)?;
    }
    Ok(())
}

fn golden_seed(case: &Golden, margin: f32, backend: Backend) -> Result<(), Failure> {
    let n = case.a.len();
    let similar: f64 = case.labels.iter().map(|&y| f64::from(y)).sum();
    let dissimilar = case.labels.len() as f64 - similar;
    let len = n as f64;
    let scale = pair_scale(
        Distance::Euclidean,
        case.a,
        case.b,
        0.5 * similar,
        dissimilar,
        f64::from(margin),
        2.0 / len,
    );
    let rel = relative_tolerance(n);
    let loss_tol = rel * scale.loss / len + n as f64 * SMALLEST_SUBNORMAL;
    let grad_tol = rel * scale.grad + n as f64 * SMALLEST_SUBNORMAL;

    let loss = value(
        "seed::contrastive_loss",
        seed::contrastive_loss_on(backend, case.a, case.b, case.labels, margin),
    )?;
    close(
        "seed::contrastive_loss",
        None,
        0,
        loss,
        case.expected_loss,
        loss_tol,
    )?;

    let (mut ga, mut gb) = ([0.0f32; MAX_ELEMENTS], [0.0f32; MAX_ELEMENTS]);
    let (ga, gb) = (&mut ga[..n], &mut gb[..n]);
    let loss = value(
        "seed::contrastive_loss_with_grad",
        seed::contrastive_loss_with_grad_on(backend, case.a, case.b, case.labels, margin, ga, gb),
    )?;
    close("seed loss", None, 0, loss, case.expected_loss, loss_tol)?;
    for i in 0..n {
        close(
            "seed grad_1",
            None,
            i,
            ga[i],
            case.expected_grad_a[i],
            grad_tol,
        )?;
        close(
            "seed grad_2",
            None,
            i,
            gb[i],
            case.expected_grad_b[i],
            grad_tol,
        )?;
    }
    Ok(())
}

fn golden_contrastive(case: &Golden, loss: ContrastiveLoss, dim: usize) -> Result<(), Failure> {
    let n = case.a.len();
    let rows = case.labels.len();
    let (w_pos, w_neg) = (
        f64::from(loss.positive_weight),
        f64::from(loss.negative_weight),
    );
    let c = match loss.reduction {
        Reduction::Mean | Reduction::AvgNonZero => 1.0 / rows as f64,
        Reduction::Sum => 1.0,
        // `Reduction` is non-exhaustive; the golden cases use only the two above.
        _ => unreachable!("a golden case with a reduction the selftest does not know"),
    };
    let rel = relative_tolerance(dim);
    let atol = dim.max(1) as f64 * SMALLEST_SUBNORMAL;
    // Per-pair scales, for c = 1 (pair) and for the reduction.
    let mut pair_scales = [PairScale::default(); MAX_ROWS];
    let mut reduced_loss_scale = 0.0;
    for (r, &y) in case.labels.iter().enumerate() {
        let (ra, rb) = (&case.a[r * dim..][..dim], &case.b[r * dim..][..dim]);
        let y = f64::from(y);
        let s = pair_scale(
            loss.distance,
            ra,
            rb,
            w_pos * y,
            w_neg * (1.0 - y),
            f64::from(loss.margin),
            2.0,
        );
        pair_scales[r] = s;
        reduced_loss_scale += c * s.loss;
    }
    let reduced_tol = rel * reduced_loss_scale + atol;

    // The reduced loss, forward only.
    let got = value("batch", loss.batch(case.a, case.b, dim, case.labels))?;
    close("batch", None, 0, got, case.expected_loss, reduced_tol)?;

    // Per-pair losses.
    let mut per_pair = [0.0f32; MAX_ROWS];
    let per_pair = &mut per_pair[..rows];
    loss.batch_per_pair(case.a, case.b, dim, case.labels, per_pair)
        .map_err(|e| Failure {
            what: "batch_per_pair",
            backend: None,
            mismatch: Mismatch::UnexpectedError(e),
        })?;
    for r in 0..rows {
        let tol = rel * pair_scales[r].loss + atol;
        close(
            "batch_per_pair",
            None,
            r,
            per_pair[r],
            case.expected_per_pair[r],
            tol,
        )?;
    }

    // The reduced loss with its gradient.
    let (mut ga, mut gb) = ([0.0f32; MAX_ELEMENTS], [0.0f32; MAX_ELEMENTS]);
    let (ga, gb) = (&mut ga[..n], &mut gb[..n]);
    let got = value(
        "batch_with_grad",
        loss.batch_with_grad(case.a, case.b, dim, case.labels, ga, gb),
    )?;
    close(
        "batch_with_grad",
        None,
        0,
        got,
        case.expected_loss,
        reduced_tol,
    )?;
    for i in 0..n {
        let tol = rel * c * pair_scales[i / dim].grad + atol;
        close(
            "batch_with_grad grad_a",
            None,
            i,
            ga[i],
            case.expected_grad_a[i],
            tol,
        )?;
        close(
            "batch_with_grad grad_b",
            None,
            i,
            gb[i],
            case.expected_grad_b[i],
            tol,
        )?;
    }

    // Each pair alone: the gradient of the pair loss is the reduced gradient over c.
    for (r, scale) in pair_scales[..rows].iter().enumerate() {
        let (ra, rb) = (&case.a[r * dim..][..dim], &case.b[r * dim..][..dim]);
        let (mut pa, mut pb) = ([0.0f32; MAX_ELEMENTS], [0.0f32; MAX_ELEMENTS]);
        let (pa, pb) = (&mut pa[..dim], &mut pb[..dim]);
        let got = value(
            "pair_with_grad",
            loss.pair_with_grad(ra, rb, case.labels[r], pa, pb),
        )?;
        let loss_tol = rel * scale.loss + atol;
        close(
            "pair_with_grad",
            None,
            r,
            got,
            case.expected_per_pair[r],
            loss_tol,
        )?;
        let got = value("pair", loss.pair(ra, rb, case.labels[r]))?;
        close("pair", None, r, got, case.expected_per_pair[r], loss_tol)?;
        let tol = rel * scale.grad + atol;
        for i in 0..dim {
            // The reference pair gradient, rescaled from the reduction (exact for N = 2^k,
            // one rounding otherwise, which `tol` covers).
            let (ea, eb) = (
                (f64::from(case.expected_grad_a[r * dim + i]) / c) as f32,
                (f64::from(case.expected_grad_b[r * dim + i]) / c) as f32,
            );
            close("pair_with_grad grad_a", None, r * dim + i, pa[i], ea, tol)?;
            close("pair_with_grad grad_b", None, r * dim + i, pb[i], eb, tol)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Square root and extreme magnitudes

/// `D = √k` for k ones: the root of every integer 1..=64 must be the correctly rounded one,
/// whichever square root the target uses (hardware or libm).
fn euclidean_roots_are_correctly_rounded() -> Result<(), Failure> {
    let ones = [1.0f32; 64];
    let zeros = [0.0f32; 64];
    for backend in Backend::available() {
        for k in 1..=64 {
            let got = value("euclidean", backend.euclidean(&ones[..k], &zeros[..k]))?;
            let expected = libm::sqrt(k as f64) as f32;
            on(
                backend,
                close("euclidean of k ones", None, k, got, expected, 0.0),
            )?;
        }
    }
    Ok(())
}

/// `x·√k` correctly rounded to f32: the distance of `k` components `x` from zero.
fn scaled_root(x: f32, k: usize) -> f32 {
    (f64::from(x) * libm::sqrt(k as f64)) as f32
}

/// Within `(n/2 + 4)·u` relative (the crate's bound for `euclidean`, n ≤ 64), plus a
/// subnormal step for results below `f32::MIN_POSITIVE`.
fn distance_tolerance(expected: f32) -> f64 {
    40.0 * UNIT_ROUNDOFF * f64::from(expected).abs() + SMALLEST_SUBNORMAL
}

/// Components far below `√f32::MIN_POSITIVE` square to subnormals or zero; the distance
/// must still be right (plain f32 gives 0 or loses all digits).
fn distances_of_tiny_components() -> Result<(), Failure> {
    // (component, count): normal, subnormal, the smallest subnormal, a subnormal root.
    const CASES: [(f32, usize); 5] = [(1e-30, 4), (1e-40, 4), (1e-45, 1), (1e-45, 4), (3e-39, 2)];
    let zeros = [0.0f32; 4];
    for backend in Backend::available() {
        for (i, &(x, k)) in CASES.iter().enumerate() {
            let a = [x; 4];
            let got = value("euclidean", backend.euclidean(&a[..k], &zeros[..k]))?;
            let expected = scaled_root(x, k);
            let tol = distance_tolerance(expected);
            on(
                backend,
                close("euclidean (tiny)", None, i, got, expected, tol),
            )?;
        }
        // The squared distance underflows to 0 correctly, not to NaN.
        let s = value(
            "squared_euclidean",
            backend.squared_euclidean(&[1e-30, 1e-30], &[0.0, 0.0]),
        )?;
        on(backend, exact("squared_euclidean (tiny)", None, s, 0.0))?;
    }
    Ok(())
}

/// Components above `√f32::MAX` square to infinity; a distance that fits in f32 must be
/// right, one that does not must be `+∞`.
fn distances_of_huge_components() -> Result<(), Failure> {
    let big = [1e19f32; 64];
    let zeros = [0.0f32; 64];
    for backend in Backend::available() {
        // √2·2e38 < f32::MAX, though (2e38)² overflows.
        let d = value("euclidean", backend.euclidean(&[2e38, 2e38], &[0.0, 0.0]))?;
        let expected = scaled_root(2e38, 2);
        let tol = distance_tolerance(expected);
        on(
            backend,
            close("euclidean (2e38 x 2)", None, 0, d, expected, tol),
        )?;
        let d = value("euclidean", backend.euclidean(&big, &zeros))?;
        let expected = scaled_root(1e19, 64);
        let tol = distance_tolerance(expected);
        on(
            backend,
            close("euclidean (1e19 x 64)", None, 0, d, expected, tol),
        )?;
        // 6e38·√2 does not fit.
        let d = value(
            "euclidean",
            backend.euclidean(&[3e38, 3e38], &[-3e38, -3e38]),
        )?;
        on(
            backend,
            exact("euclidean (beyond f32::MAX)", None, d, f32::INFINITY),
        )?;
        let s = value(
            "squared_euclidean",
            backend.squared_euclidean(&[1e20], &[0.0]),
        )?;
        on(
            backend,
            exact("squared_euclidean (1e40)", None, s, f32::INFINITY),
        )?;
    }
    Ok(())
}

/// `3e38·2 − 3e38·1 = 3e38`, although `3e38·2` overflows; and `∞ − ∞` inside a dot product
/// of finite vectors is not NaN.
fn dot_survives_intermediate_overflow() -> Result<(), Failure> {
    for backend in Backend::available() {
        let got = value("dot", backend.dot(&[3e38, -3e38], &[2.0, 1.0]))?;
        on(backend, close("dot", None, 0, got, 3e38, 3e38 * 2e-7))?;
        let got = value("dot", backend.dot(&[1e20, -1e20], &[1e20, 1e20]))?;
        on(backend, exact("dot (1e40 − 1e40)", None, got, 0.0))?;
    }
    // The free functions take the same path as the backends' methods.
    let got = value("dot", dot(&[3e38, -3e38], &[2.0, 1.0]))?;
    close("dot", None, 0, got, 3e38, 3e38 * 2e-7)?;
    let got = value(
        "squared_euclidean",
        squared_euclidean(&[3.0, 0.0], &[0.0, 4.0]),
    )?;
    exact("squared_euclidean", None, got, 25.0)?;
    let got = value("euclidean", euclidean(&[3.0, 0.0], &[0.0, 4.0]))?;
    exact("euclidean", None, got, 5.0)
}

/// The cosine of 45° whatever the magnitudes of the two vectors.
fn cosine_of_extreme_magnitudes() -> Result<(), Failure> {
    let expected = core::f32::consts::FRAC_1_SQRT_2;
    let cases: [([f32; 2], [f32; 2]); 5] = [
        ([1.0, 0.0], [1.0, 1.0]),
        ([1e30, 0.0], [1e30, 1e30]),
        ([1e-30, 0.0], [1e-30, 1e-30]),
        ([1e-40, 0.0], [3e38, 3e38]),
        ([3e38, 0.0], [1e-45, 1e-45]),
    ];
    for backend in Backend::available() {
        for (i, (a, b)) in cases.iter().enumerate() {
            let got = value("cosine_similarity", backend.cosine_similarity(a, b))?;
            on(
                backend,
                close("cosine_similarity", None, i, got, expected, 4e-7),
            )?;
        }
    }
    let got = value(
        "cosine_similarity",
        cosine_similarity(&[0.0, 0.0], &[1.0, 1.0]),
    )?;
    exact("cosine_similarity (zero vector)", None, got, 0.0)
}

// ---------------------------------------------------------------------------------------
// Edge-case semantics

fn nan_in_nan_out() -> Result<(), Failure> {
    let (a, b) = ([1.0, f32::NAN, 0.0], [0.0, 0.0, 0.0]);
    for distance in [Distance::Euclidean, Distance::Cosine] {
        for label in [0.0, 0.5, 1.0] {
            let loss = ContrastiveLoss::new(1.0).with_distance(distance);
            let (mut ga, mut gb) = ([0.0; 3], [0.0; 3]);
            let l = value(
                "pair_with_grad",
                loss.pair_with_grad(&a, &b, label, &mut ga, &mut gb),
            )?;
            exact("pair_with_grad (NaN input) loss", None, l, f32::NAN)?;
            for i in 0..3 {
                close(
                    "pair_with_grad (NaN input) grad_a",
                    None,
                    i,
                    ga[i],
                    f32::NAN,
                    0.0,
                )?;
                close(
                    "pair_with_grad (NaN input) grad_b",
                    None,
                    i,
                    gb[i],
                    f32::NAN,
                    0.0,
                )?;
            }
        }
    }
    Ok(())
}

fn gradient_is_zero_at_zero_distance() -> Result<(), Failure> {
    let a = [0.25f32, -1.5, 3.0];
    for backend in Backend::available() {
        let loss = ContrastiveLoss::tfa(2.0).with_backend(backend);
        let (mut ga, mut gb) = ([f32::NAN; 3], [f32::NAN; 3]);
        let l = value(
            "pair_with_grad",
            loss.pair_with_grad(&a, &a, 0.0, &mut ga, &mut gb),
        )?;
        on(backend, exact("pair_with_grad (D = 0) loss", None, l, 4.0))?;
        for i in 0..3 {
            on(
                backend,
                close("pair_with_grad (D = 0) grad_a", None, i, ga[i], 0.0, 0.0),
            )?;
            on(
                backend,
                close("pair_with_grad (D = 0) grad_b", None, i, gb[i], 0.0, 0.0),
            )?;
        }
    }
    Ok(())
}

fn inactive_term_is_not_evaluated() -> Result<(), Failure> {
    let (a, b) = ([f32::INFINITY, 0.0], [0.0, 0.0]);
    let loss = ContrastiveLoss::new(1.0);
    let (mut ga, mut gb) = ([f32::NAN; 2], [f32::NAN; 2]);
    // Dissimilar at infinite distance: the hinge is inactive, loss and gradient exactly 0.
    let l = value(
        "pair_with_grad",
        loss.pair_with_grad(&a, &b, 0.0, &mut ga, &mut gb),
    )?;
    exact("dissimilar at ∞: loss", None, l, 0.0)?;
    close("dissimilar at ∞: grad_a", None, 0, ga[0], 0.0, 0.0)?;
    close("dissimilar at ∞: grad_b", None, 0, gb[0], 0.0, 0.0)?;
    // Similar at infinite distance: +∞, with an infinite gradient component.
    let l = value(
        "pair_with_grad",
        loss.pair_with_grad(&a, &b, 1.0, &mut ga, &mut gb),
    )?;
    exact("similar at ∞: loss", None, l, f32::INFINITY)?;
    close("similar at ∞: grad_a", None, 0, ga[0], f32::INFINITY, 0.0)?;
    close(
        "similar at ∞: grad_b",
        None,
        0,
        gb[0],
        f32::NEG_INFINITY,
        0.0,
    )
}

fn empty_pair_costs_the_margin() -> Result<(), Failure> {
    let loss = ContrastiveLoss::seed(0.5);
    let l = value("pair", loss.pair(&[], &[], 0.0))?;
    exact("pair (d = 0, dissimilar)", None, l, 0.25)?;
    let l = value("pair", loss.pair(&[], &[], 1.0))?;
    exact("pair (d = 0, similar)", None, l, 0.0)?;
    let sum = ContrastiveLoss::new(1.0).with_reduction(Reduction::Sum);
    let l = value("batch (Sum, 0 rows)", sum.batch(&[], &[], 3, &[]))?;
    exact("batch (Sum, 0 rows)", None, l, 0.0)
}

// ---------------------------------------------------------------------------------------
// Bad input

fn mismatched_lengths_are_errors() -> Result<(), Failure> {
    let loss = ContrastiveLoss::new(1.0);
    let (a, b) = ([1.0f32; 3], [0.0f32; 2]);
    let (mut g3, mut g3b, mut g2) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 2]);
    let len = |argument, expected, found| Error::LengthMismatch {
        argument,
        expected,
        found,
    };
    expect_error("pair", loss.pair(&a, &b, 1.0), len("b", 3, 2))?;
    expect_error(
        "pair_with_grad",
        loss.pair_with_grad(&a, &a, 1.0, &mut g2, &mut g3),
        len("grad_a", 3, 2),
    )?;
    expect_error(
        "pair_with_grad",
        loss.pair_with_grad(&a, &a, 1.0, &mut g3, &mut g2),
        len("grad_b", 3, 2),
    )?;
    expect_error(
        "squared_euclidean",
        squared_euclidean(&a, &b),
        len("b", 3, 2),
    )?;
    expect_error("euclidean", euclidean(&a, &b), len("b", 3, 2))?;
    expect_error("dot", dot(&a, &b), len("b", 3, 2))?;
    expect_error(
        "cosine_similarity",
        cosine_similarity(&a, &b),
        len("b", 3, 2),
    )?;
    expect_error(
        "seed::contrastive_loss",
        seed::contrastive_loss(&a, &b, &[1.0], 0.5),
        len("input_2", 3, 2),
    )?;
    expect_error(
        "seed::contrastive_loss_with_grad",
        seed::contrastive_loss_with_grad(&a, &a, &[1.0], 0.5, &mut g3, &mut g2),
        len("grad_2", 3, 2),
    )?;
    // A failed call leaves the caller's buffers as they were or overwritten, never panics;
    // a good call after it still works.
    let l = value(
        "pair_with_grad",
        loss.pair_with_grad(&a, &a, 1.0, &mut g3, &mut g3b),
    )?;
    exact("pair_with_grad after errors", None, l, 0.0)
}

fn bad_batch_shapes_are_errors() -> Result<(), Failure> {
    let loss = ContrastiveLoss::new(1.0);
    let (a, b) = ([1.0f32; 6], [0.0f32; 6]);
    let mut out = [0.0f32; 3];
    let (mut ga, mut gb) = ([0.0f32; 6], [0.0f32; 6]);
    expect_error("batch", loss.batch(&a, &b, 0, &[]), Error::ZeroDimension)?;
    expect_error(
        "batch",
        loss.batch(&a[..5], &b[..5], 2, &[1.0, 1.0]),
        Error::NotMultipleOfDim {
            argument: "a",
            len: 5,
            dim: 2,
        },
    )?;
    expect_error(
        "batch",
        loss.batch(&a, &b, 2, &[1.0, 1.0]),
        Error::LengthMismatch {
            argument: "labels",
            expected: 3,
            found: 2,
        },
    )?;
    expect_error(
        "batch_per_pair",
        loss.batch_per_pair(&a, &b, 3, &[1.0, 0.0], &mut out),
        Error::LengthMismatch {
            argument: "out",
            expected: 2,
            found: 3,
        },
    )?;
    expect_error(
        "batch_with_grad",
        loss.batch_with_grad(&a, &b, 3, &[1.0, 0.0], &mut ga[..3], &mut gb),
        Error::LengthMismatch {
            argument: "grad_a",
            expected: 6,
            found: 3,
        },
    )?;
    expect_error(
        "squared_euclidean_rows",
        contrastive::squared_euclidean_rows(&a, &b, 0, &mut out),
        Error::ZeroDimension,
    )?;
    expect_error(
        "squared_euclidean_rows",
        contrastive::squared_euclidean_rows(&a, &b, 3, &mut out),
        Error::LengthMismatch {
            argument: "out",
            expected: 2,
            found: 3,
        },
    )
}

fn bad_labels_are_errors() -> Result<(), Failure> {
    let loss = ContrastiveLoss::new(1.0);
    let (a, b) = ([1.0f32; 2], [0.0f32; 2]);
    for label in [1.5, -0.25, f32::NAN, f32::INFINITY] {
        expect_error(
            "pair",
            loss.pair(&a, &b, label),
            Error::InvalidLabel { index: 0, label },
        )?;
        expect_error(
            "batch",
            loss.batch(&a, &b, 1, &[1.0, label]),
            Error::InvalidLabel { index: 1, label },
        )?;
        expect_error(
            "seed::contrastive_loss",
            seed::contrastive_loss(&a, &b, &[0.0, 1.0, label], 0.5),
            Error::InvalidLabel { index: 2, label },
        )?;
    }
    Ok(())
}

fn bad_margins_and_weights_are_errors() -> Result<(), Failure> {
    let (a, b) = ([1.0f32; 2], [0.0f32; 2]);
    for margin in [-1.0, f32::NAN, f32::INFINITY] {
        expect_error(
            "pair",
            ContrastiveLoss::new(margin).pair(&a, &b, 0.0),
            Error::InvalidMargin { margin },
        )?;
        expect_error(
            "seed::contrastive_loss",
            seed::contrastive_loss(&a, &b, &[0.0], margin),
            Error::InvalidMargin { margin },
        )?;
    }
    expect_error(
        "pair",
        ContrastiveLoss::new(1.0)
            .with_weights(-0.5, 1.0)
            .pair(&a, &b, 0.0),
        Error::InvalidWeight {
            argument: "positive_weight",
            weight: -0.5,
        },
    )?;
    expect_error(
        "pair",
        ContrastiveLoss::new(1.0)
            .with_weights(1.0, f32::INFINITY)
            .pair(&a, &b, 0.0),
        Error::InvalidWeight {
            argument: "negative_weight",
            weight: f32::INFINITY,
        },
    )
}

fn empty_means_are_errors() -> Result<(), Failure> {
    let loss = ContrastiveLoss::new(1.0);
    let empty = Error::Empty { argument: "labels" };
    expect_error("batch (Mean, 0 rows)", loss.batch(&[], &[], 2, &[]), empty)?;
    expect_error(
        "batch_with_grad (Mean, 0 rows)",
        loss.batch_with_grad(&[], &[], 2, &[], &mut [], &mut []),
        empty,
    )?;
    expect_error(
        "seed::contrastive_loss (empty input)",
        seed::contrastive_loss(&[], &[], &[1.0], 0.5),
        Error::Empty {
            argument: "input_1",
        },
    )
}

fn unavailable_backends_are_errors() -> Result<(), Failure> {
    for backend in Backend::ALL {
        let r = ContrastiveLoss::new(1.0)
            .with_backend(backend)
            .pair(&[1.0], &[0.0], 0.0);
        if backend.is_available() {
            let l = value("pair on an available backend", r)?;
            on(backend, exact("pair", None, l, 0.0))?;
        } else {
            expect_error(
                "pair on an unavailable backend",
                r,
                Error::BackendUnavailable { backend },
            )?;
        }
    }
    // The best backend is always available.
    if Backend::best().is_available() {
        Ok(())
    } else {
        Err(Failure {
            what: "Backend::best() is available",
            backend: Some(Backend::best()),
            mismatch: Mismatch::UnexpectedOk {
                expected: Error::BackendUnavailable {
                    backend: Backend::best(),
                },
            },
        })
    }
}
