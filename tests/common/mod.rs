//! Shared by the integration tests: an independent float64 oracle (it never calls the
//! crate), the error bounds the crate documents, a small deterministic RNG, and the golden
//! file reader.

#![allow(dead_code)]

pub mod inbatch_cases;
pub mod inbatch_loss;
pub mod inbatch_oracle;
pub mod miri;
pub mod sweep;
pub mod triplet_loss;
pub mod triplet_oracle;

/// The unit roundoff of f32.
pub const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Absolute slack for results in the subnormal range.
pub const ATOL: f64 = f32::MIN_POSITIVE as f64;

/// The documented bound of sums over `n` terms: `(n + 4)·u`, relative to `Σ|terms|`.
pub fn sum_rtol(n: usize) -> f64 {
    (n as f64 + 4.0) * U
}

/// The documented bound of losses and gradients of pairs of length `n`: `(2n + 16)·u`,
/// relative to the pair's scale.
pub fn pair_rtol(n: usize) -> f64 {
    (2.0 * n as f64 + 16.0) * U
}

/// `|got − want| ≤ atol + rtol·scale`, with NaN matching NaN and infinities matching
/// exactly. Panics with `what` in the message otherwise.
#[track_caller]
pub fn assert_close(what: &str, got: f32, want: f64, rtol: f64, scale: f64) {
    let got = f64::from(got);
    if want.is_nan() || got.is_nan() {
        assert!(
            want.is_nan() && got.is_nan(),
            "{what}: got {got:e}, want {want:e}"
        );
        return;
    }
    if want.is_infinite() || got.is_infinite() {
        assert_eq!(got, want, "{what}: got {got:e}, want {want:e}");
        return;
    }
    let tol = ATOL + rtol * scale.abs();
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}, |diff| {:e} > tol {tol:e}",
        (got - want).abs()
    );
}

/// An in-batch triplet result (loss and gradient of `n` rows of `d`) against the oracle's,
/// within the documented bound `(2d + 2N + 32)·u` of their scales.
#[track_caller]
pub fn assert_in_batch_close(
    what: &str,
    got: f32,
    grad: &[f32],
    r: &triplet_oracle::InBatchRef,
    n: usize,
    d: usize,
) {
    let rtol = (2.0 * d as f64 + 2.0 * n as f64 + 32.0) * U;
    assert_close(&format!("{what}: loss"), got, r.loss, rtol, r.scale);
    for (k, (&g, (&want, &scale))) in grad
        .iter()
        .zip(r.grad.iter().zip(&r.grad_scale))
        .enumerate()
    {
        assert_close(&format!("{what}: grad[{k}]"), g, want, rtol, scale);
    }
    assert_eq!(grad.len(), n * d, "{what}: gradient length");
}

/// SplitMix64: small, deterministic, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unit()).collect()
    }
    /// A value of either sign with a magnitude anywhere from about 2⁻²⁰ to 2²⁰.
    pub fn wide(&mut self) -> f32 {
        let exponent = (self.next_u64() % 40) as i32 - 20;
        self.unit() * 2f32.powi(exponent)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// The float64 oracle.
//
// The oracle of distances and pairs, with every documented bound and the known-gap
// predicates, is `trust_oracle.rs` (the fuzz targets include it by path too); this file
// adds the pair reference of the golden and sweep tests. An oracle for another family of
// losses goes in its own `<topic>_oracle.rs` here, declared with one `pub mod` line.

pub mod trust_oracle;

/// `Σ (a − b)²` in f64 (also `Σ|terms|`, all terms being non-negative), and
/// `(Σ a·b, Σ|a·b|)` in f64.
pub use trust_oracle::{dot, squared_euclidean};

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// The cosine in f64: clamped to [-1, 1], 0 when either vector is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (ab, _) = dot(a, b);
    let (na, nb) = (dot(a, a).0.sqrt(), dot(b, b).0.sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (ab / (na * nb)).clamp(-1.0, 1.0)
    }
}

/// One pair's configuration: `L = p·D² + q·max(0, m − D)²`, gradient of `c·L`.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    pub wp: f64,
    pub wn: f64,
    pub margin: f64,
    pub label: f64,
    pub cosine: bool,
    /// The reduction factor `c` applied to the gradient (1 for a single pair).
    pub c: f64,
}

/// The oracle's answer for one pair, with the scales the documented bounds refer to.
#[derive(Clone, Debug)]
pub struct PairRef {
    pub loss: f64,
    pub distance: f64,
    pub grad_a: Vec<f64>,
    pub grad_b: Vec<f64>,
    pub loss_scale: f64,
    pub grad_scale_a: f64,
    pub grad_scale_b: f64,
}

impl Pair {
    fn weights(&self) -> (f64, f64) {
        (self.wp * self.label, self.wn * (1.0 - self.label))
    }

    /// Loss and gradient of `c·L` in f64, with select semantics (a zero weight does not
    /// evaluate its term) and subgradient 0 at zero distance / zero vectors.
    pub fn reference(&self, a: &[f32], b: &[f32]) -> PairRef {
        let (p, q) = self.weights();
        let m = self.margin;
        let (a64, b64) = (wide(a), wide(b));
        if self.cosine {
            return self.cosine_reference(&a64, &b64, a, b);
        }
        let s = squared_euclidean(a, b);
        let d = s.sqrt();
        let h = if q != 0.0 && d < m { m - d } else { 0.0 };
        let mut loss = 0.0;
        if p != 0.0 {
            loss += p * s;
        }
        if h > 0.0 {
            loss += q * h * h;
        }
        let mut k = if p != 0.0 { 2.0 * self.c * p } else { 0.0 };
        if h > 0.0 && d > 0.0 {
            k -= 2.0 * self.c * q * h / d;
        }
        let delta: Vec<f64> = a64.iter().zip(&b64).map(|(x, y)| x - y).collect();
        let grad_a: Vec<f64> = if k == 0.0 {
            vec![0.0; a.len()]
        } else {
            delta.iter().map(|&x| k * x).collect()
        };
        let grad_b = grad_a.iter().map(|g| -g).collect();
        let max_delta = delta.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let near = q != 0.0 && d > 0.0 && d <= m * (1.0 + 1e-3) + 1e-30;
        let mut grad_scale = 2.0 * self.c * p * max_delta;
        if near {
            grad_scale += 2.0 * self.c * q * (m + d) / d * max_delta;
        }
        PairRef {
            loss,
            distance: d,
            grad_a,
            grad_b,
            loss_scale: p * s + q * (m + d) * (m + d),
            grad_scale_a: grad_scale,
            grad_scale_b: grad_scale,
        }
    }

    fn cosine_reference(&self, a: &[f64], b: &[f64], a32: &[f32], b32: &[f32]) -> PairRef {
        let (p, q) = self.weights();
        let m = self.margin;
        let cos = cosine(a32, b32);
        let d = 1.0 - cos;
        let h = if q != 0.0 && d < m { m - d } else { 0.0 };
        let mut loss = 0.0;
        if p != 0.0 {
            loss += p * d * d;
        }
        if h > 0.0 {
            loss += q * h * h;
        }
        let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        let slope = p * d - q * h; // ∂L/∂D
        let g = -2.0 * self.c * slope; // ∂(cL)/∂cos
        let n = a.len();
        let (mut grad_a, mut grad_b) = (vec![0.0; n], vec![0.0; n]);
        let (mut scale_a, mut scale_b) = (0.0f64, 0.0f64);
        if na > 0.0 && nb > 0.0 {
            let g_abs = 2.0 * self.c * (p * (d + 1.0) + q * (m + 2.0));
            for i in 0..n {
                grad_a[i] = g * (b[i] / (na * nb) - cos * a[i] / (na * na));
                grad_b[i] = g * (a[i] / (na * nb) - cos * b[i] / (nb * nb));
                scale_a = scale_a.max(g_abs * (b[i].abs() / (na * nb) + a[i].abs() / (na * na)));
                scale_b = scale_b.max(g_abs * (a[i].abs() / (na * nb) + b[i].abs() / (nb * nb)));
            }
        }
        PairRef {
            loss,
            distance: d,
            grad_a,
            grad_b,
            loss_scale: p * (d + 1.0) * (d + 1.0) + q * (m + 2.0) * (m + 2.0),
            grad_scale_a: scale_a,
            grad_scale_b: scale_b,
        }
    }
}

/// Checks a pair's loss and gradients against the oracle within the documented bound.
#[track_caller]
pub fn check_pair(
    what: &str,
    cfg: &Pair,
    a: &[f32],
    b: &[f32],
    loss: f32,
    grad_a: &[f32],
    grad_b: &[f32],
) {
    let r = cfg.reference(a, b);
    let rtol = pair_rtol(a.len());
    assert_close(&format!("{what}: loss"), loss, r.loss, rtol, r.loss_scale);
    for i in 0..a.len() {
        assert_close(
            &format!("{what}: grad_a[{i}]"),
            grad_a[i],
            r.grad_a[i],
            rtol,
            r.grad_scale_a,
        );
        assert_close(
            &format!("{what}: grad_b[{i}]"),
            grad_b[i],
            r.grad_b[i],
            rtol,
            r.grad_scale_b,
        );
    }
}

// ---------------------------------------------------------------------------------------
// The golden file.

/// A number from the golden file: finite numbers, or the strings NaN / Infinity / -Infinity.
pub fn number(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().unwrap(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => panic!("unexpected number string {other}"),
        },
        other => panic!("unexpected value {other}"),
    }
}

pub fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(number).collect()
}

/// Inputs as f32 (they are f32-representable unless `inputs_dtype` is f64, then rounded).
pub fn inputs(v: &serde_json::Value) -> Vec<f32> {
    numbers(v).into_iter().map(|x| x as f32).collect()
}

pub fn golden_cases() -> Vec<serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden.json");
    let text = std::fs::read_to_string(path).expect("tests/data/golden.json");
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all["cases"].as_array().unwrap().clone()
}

/// The cases of tests/data/inbatch.json whose `loss` is `kind` (at least one).
pub fn inbatch_cases(kind: &str) -> Vec<serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/inbatch.json");
    let text = std::fs::read_to_string(path).expect("tests/data/inbatch.json");
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<serde_json::Value> = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["loss"] == kind)
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no {kind} cases");
    cases
}

/// A golden file's class labels (an array of non-negative integers).
pub fn labels(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as u32)
        .collect()
}
pub mod softmax_oracle;
