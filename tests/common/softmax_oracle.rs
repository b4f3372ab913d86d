//! Float64 oracle of the softmax losses (NT-Xent, SupCon, InfoNCE/CLIP): plain loops over
//! the full N×N matrix, never the crate. Each loss gives `∂L/∂cosᵢⱼ` as a matrix `h`, from
//! which [`chain`] builds the gradients through the normalisation, with per-row scales
//! for the tolerance.

#![allow(dead_code)]

/// The unit roundoff of f32 (as in `common`; this file is also the fuzz targets' oracle,
/// so it stands alone).
const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Absolute slack for results in the subnormal range.
// A few of f32's smallest normals: a gradient component whose exact value underflows is
// the product of factors each rounded near the bottom of the normal range (found by the
// fuzz target: 1.24e-38 where the exact value is -1e-45, one ulp of scale beyond 1 × this).
const ATOL: f64 = 4.0 * f32::MIN_POSITIVE as f64;
/// `2⁻¹⁴⁹`, the smallest subnormal f32.
const TINY: f64 = 1.401_298_464_324_817e-45;

/// `x̂ = x/‖x‖` per row (0 for a zero row) and `1/‖x‖` (0 for a zero row).
pub fn normalise<T: Copy + Into<f64>>(x: &[T], dim: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rows = Vec::new();
    let mut inv = Vec::new();
    for r in x.chunks(dim) {
        let s: f64 = r.iter().map(|&v| v.into() * v.into()).sum();
        let k = if s == 0.0 { 0.0 } else { 1.0 / s.sqrt() };
        rows.push(r.iter().map(|&v| v.into() * k).collect());
        inv.push(k);
    }
    (rows, inv)
}

/// `cos(xᵢ, yⱼ)` for every pair.
pub fn cosines(x: &[Vec<f64>], y: &[Vec<f64>]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|a| {
            y.iter()
                .map(|b| a.iter().zip(b).map(|(p, q)| p * q).sum())
                .collect()
        })
        .collect()
}

fn lse(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.map(|t| (t - m).exp()).sum::<f64>().ln()
}

/// A loss, `h = ∂L/∂cos` (N×M), the sums of the absolute terms of each `h` (the scale
/// of its rounding error: `p − 1/|P|` cancels) and the cosines.
pub struct Softmax {
    pub loss: f64,
    pub h: Vec<Vec<f64>>,
    pub habs: Vec<Vec<f64>>,
    pub cos: Vec<Vec<f64>>,
}

/// Gradients of `x` (and `y`) through the normalisation, and per-row tolerance scales
/// `Σⱼ |hᵢⱼ|·2/‖xᵢ‖`. With `same`, `y` is `x` and both sides add into one gradient.
pub struct Grads {
    pub gx: Vec<f64>,
    pub gy: Vec<f64>,
    pub scale_x: Vec<f64>,
    pub scale_y: Vec<f64>,
    /// `1/‖xᵢ‖` and `1/‖yⱼ‖`, for the bound's underflow term.
    pub inv_x: Vec<f64>,
    pub inv_y: Vec<f64>,
}

pub fn chain(x: &[f32], y: &[f32], dim: usize, s: &Softmax, same: bool) -> Grads {
    let (xh, ix) = normalise(x, dim);
    let (yh, iy) = normalise(y, dim);
    let (n, m) = (xh.len(), yh.len());
    let mut gx = vec![0.0; n * dim];
    let mut gy = vec![0.0; m * dim];
    let mut scale_x = vec![0.0; n];
    let mut scale_y = vec![0.0; m];
    for i in 0..n {
        for j in 0..m {
            let h = s.h[i][j];
            let ha = s.habs[i][j].max(h.abs());
            if ha == 0.0 {
                continue;
            }
            let c = s.cos[i][j];
            for k in 0..dim {
                gx[i * dim + k] += h * ix[i] * (yh[j][k] - c * xh[i][k]);
                gy[j * dim + k] += h * iy[j] * (xh[i][k] - c * yh[j][k]);
            }
            scale_x[i] += ha * 2.0 * ix[i];
            scale_y[j] += ha * 2.0 * iy[j];
        }
    }
    if same {
        for (a, b) in gx.iter_mut().zip(&gy) {
            *a += b;
        }
        for (a, b) in scale_x.iter_mut().zip(&scale_y) {
            *a += b;
        }
    }
    Grads {
        gx,
        gy,
        scale_x,
        scale_y,
        inv_x: ix,
        inv_y: iy,
    }
}

/// InfoNCE / CLIP: logits `scale·cos(xᵢ, yⱼ)`, row `i` matches column `i`.
pub fn infonce<T: Copy + Into<f64>>(
    x: &[T],
    y: &[T],
    dim: usize,
    scale: f64,
    symmetric: bool,
) -> Softmax {
    let (xh, _) = normalise(x, dim);
    let (yh, _) = normalise(y, dim);
    let cos = cosines(&xh, &yh);
    let n = cos.len();
    let l: Vec<Vec<f64>> = cos
        .iter()
        .map(|r| r.iter().map(|c| scale * c).collect())
        .collect();
    let row_lse: Vec<f64> = (0..n).map(|i| lse(l[i].iter().copied())).collect();
    let col_lse: Vec<f64> = (0..n).map(|j| lse((0..n).map(|i| l[i][j]))).collect();
    // Per-row CE as log Σⱼ e^(Lᵢⱼ − Lᵢᵢ) = log1p(Σ_{j≠i} …), and 1 − pᵢᵢ as that sum
    // over 1 + that sum: exact when a row is saturated, where lse − Lᵢᵢ cancels.
    // With `at(i, j)` the logit of query i and key j in one direction.
    let off_diagonal = |at: &dyn Fn(usize, usize) -> f64| -> Vec<f64> {
        (0..n)
            .map(|i| {
                (0..n)
                    .filter(|&j| j != i)
                    .map(|j| (at(i, j) - at(i, i)).exp())
                    .sum()
            })
            .collect()
    };
    let off_row = off_diagonal(&|i, j| l[i][j]);
    let off_col = off_diagonal(&|j, i| l[i][j]);
    let mean_ce = |off: &[f64]| off.iter().map(|t| t.ln_1p()).sum::<f64>() / n as f64;
    let (xy, yx) = (mean_ce(&off_row), mean_ce(&off_col));
    let (wr, wc) = if symmetric {
        (0.5 / n as f64, 0.5 / n as f64)
    } else {
        (1.0 / n as f64, 0.0)
    };
    let mut h = vec![vec![0.0; n]; n];
    let mut habs = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            let g = if i == j {
                -wr * off_row[i] / (1.0 + off_row[i]) - wc * off_col[i] / (1.0 + off_col[i])
            } else {
                wr * (l[i][j] - row_lse[i]).exp() + wc * (l[i][j] - col_lse[j]).exp()
            };
            h[i][j] = scale * g;
            habs[i][j] = (scale * g).abs();
        }
    }
    let loss = if symmetric { (xy + yx) / 2.0 } else { xy };
    Softmax { loss, h, habs, cos }
}

/// The cosines of the rows of `x` with each other, and the logits: those over `tau`.
fn self_logits<T: Copy + Into<f64>>(
    x: &[T],
    dim: usize,
    tau: f64,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let (xh, _) = normalise(x, dim);
    let cos = cosines(&xh, &xh);
    let s = cos
        .iter()
        .map(|r| r.iter().map(|c| c / tau).collect())
        .collect();
    (cos, s)
}

/// SupCon: `no_pos` is "exclude", "zero" or "nan".
pub fn supcon<T: Copy + Into<f64>>(
    x: &[T],
    dim: usize,
    classes: &[u32],
    tau: f64,
    base: f64,
    no_pos: &str,
) -> Softmax {
    let (cos, s) = self_logits(x, dim, tau);
    let n = cos.len();
    let f = tau / base;
    let mut li = vec![0.0; n];
    let mut lses = vec![0.0; n];
    let mut npos = vec![0usize; n];
    for i in 0..n {
        lses[i] = lse((0..n).filter(|&j| j != i).map(|j| s[i][j]));
        let pos: Vec<usize> = (0..n)
            .filter(|&j| j != i && classes[j] == classes[i])
            .collect();
        npos[i] = pos.len();
        li[i] = if pos.is_empty() {
            if no_pos == "nan" { f64::NAN } else { 0.0 }
        } else if let [p] = pos[..] {
            // One positive: lse − sᵢₚ = log1p(Σ e^(sᵢⱼ − sᵢₚ)) over the other rows, which
            // keeps a saturated anchor's tiny loss (and so its place in the mean) in f64.
            let rest: f64 = (0..n)
                .filter(|&j| j != i && j != p)
                .map(|j| (s[i][j] - s[i][p]).exp())
                .sum();
            f * rest.ln_1p()
        } else {
            f * pos.iter().map(|&p| lses[i] - s[i][p]).sum::<f64>() / pos.len() as f64
        };
    }
    let kept: Vec<bool> = (0..n)
        .map(|i| match no_pos {
            "exclude" => li[i] > 0.0 || li[i].is_nan(),
            _ => true,
        })
        .collect();
    let count = kept.iter().filter(|&&k| k).count();
    let loss = if count == 0 {
        0.0
    } else {
        (0..n).filter(|&i| kept[i]).map(|i| li[i]).sum::<f64>() / count as f64
    };
    let mut h = vec![vec![0.0; n]; n];
    let mut habs = vec![vec![0.0; n]; n];
    for i in 0..n {
        if !kept[i] || npos[i] == 0 {
            continue;
        }
        let w = 1.0 / count as f64;
        for j in 0..n {
            if j == i {
                continue;
            }
            let p = (s[i][j] - lses[i]).exp();
            let t = if classes[j] == classes[i] {
                1.0 / npos[i] as f64
            } else {
                0.0
            };
            // ∂L/∂sᵢⱼ, then ∂s/∂cos = 1/τ.
            h[i][j] += f * w * (p - t) / tau;
            habs[i][j] += f * w * (p + t) / tau;
        }
    }
    Softmax { loss, h, habs, cos }
}

/// pytorch-metric-learning NT-Xent: per ordered positive pair, other positives not in the
/// denominator, mean over pairs; 0 without a positive or a negative pair.
pub fn ntxent<T: Copy + Into<f64>>(x: &[T], dim: usize, classes: &[u32], tau: f64) -> Softmax {
    let (cos, s) = self_logits(x, dim, tau);
    let n = cos.len();
    let mut h = vec![vec![0.0; n]; n];
    let mut habs = vec![vec![0.0; n]; n];
    let mut pairs = Vec::new();
    for i in 0..n {
        for p in 0..n {
            if p != i && classes[p] == classes[i] {
                pairs.push((i, p));
            }
        }
    }
    let any_neg = (0..n).any(|i| (0..n).any(|j| classes[j] != classes[i]));
    if pairs.is_empty() || !any_neg {
        return Softmax {
            loss: 0.0,
            h,
            habs,
            cos,
        };
    }
    let w = 1.0 / pairs.len() as f64;
    let mut total = 0.0;
    for &(i, p) in &pairs {
        let negs: Vec<usize> = (0..n).filter(|&j| classes[j] != classes[i]).collect();
        let terms = std::iter::once(s[i][p]).chain(negs.iter().map(|&j| s[i][j]));
        let den = lse(terms);
        total += den - s[i][p];
        // softmax over {p} ∪ N(i)
        h[i][p] += -w * (1.0 - (s[i][p] - den).exp()) / tau;
        habs[i][p] += w * (1.0 + (s[i][p] - den).exp()) / tau;
        for &j in &negs {
            h[i][j] += w * (s[i][j] - den).exp() / tau;
            habs[i][j] += w * (s[i][j] - den).exp() / tau;
        }
    }
    Softmax {
        loss: total * w,
        h,
        habs,
        cos,
    }
}

// ---------------------------------------------------------------------------------------
// The documented bounds.

/// The documented bound of a softmax loss: `(S·(d + 8) + 64)·u·max(1, |L|)`, with `S` the
/// largest factor from a cosine to a logit (`1/τ`, `τ/τ_b · 1/τ`, or the scale).
pub fn loss_tol(s: f64, d: usize, want: f64) -> f64 {
    (s * (d as f64 + 8.0) + 64.0) * U * want.abs().max(1.0)
}

/// The documented bound of a gradient component of row `i`: `(S·(d + 8) + n + 64)·u`
/// times the row's scale `Σⱼ |∂L/∂cosᵢⱼ|·2/‖xᵢ‖`, plus the underflow term
/// `n·(S·n + 1)·2⁻¹⁴⁷/‖xᵢ‖`: entries of `∂L/∂cos` that fall among f32's subnormals (a
/// row saturated beyond `e⁻⁸⁷`) keep an absolute error of a few `2⁻¹⁴⁹` each, times the
/// factor (at most `S·n`) from a probability to the entry; and a few smallest normals
/// for a component that underflows itself.
pub fn grad_tol(s: f64, d: usize, n: usize, row_scale: f64, inv_norm: f64) -> f64 {
    let nf = n as f64;
    let underflow = nf * (s * nf + 1.0) * TINY * 4.0 * inv_norm;
    ATOL + underflow + (s * (d as f64 + 8.0) + nf + 64.0) * U * row_scale
}

pub fn check_loss(what: &str, got: f32, want: f64, tol: f64) {
    let got = f64::from(got);
    assert!(
        (got - want).abs() <= tol || (got.is_nan() && want.is_nan()),
        "{what}: loss {got:e}, want {want:e} (tol {tol:e})"
    );
}

pub fn check_grad(
    what: &str,
    got: &[f32],
    want: &[f64],
    d: usize,
    tol_of_row: impl Fn(usize) -> f64,
) {
    assert_eq!(got.len(), want.len());
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = tol_of_row(k / d);
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "{what}: grad[{k}] (row {}) {g:e}, want {w:e} (tol {tol:e})",
            k / d
        );
    }
}

/// The loss and the gradients (`gy` for the key side of InfoNCE) against the oracle's
/// `want` and `g`, each within its documented bound.
#[allow(clippy::too_many_arguments)]
pub fn check_all(
    what: &str,
    s: f64,
    d: usize,
    loss: f32,
    want: &Softmax,
    g: &Grads,
    gx: &[f32],
    gy: Option<&[f32]>,
) {
    let n = g.scale_x.len();
    check_loss(what, loss, want.loss, loss_tol(s, d, want.loss));
    check_grad(what, gx, &g.gx, d, |i| {
        grad_tol(s, d, n, g.scale_x[i], g.inv_x[i])
    });
    if let Some(gy) = gy {
        check_grad(what, gy, &g.gy, d, |i| {
            grad_tol(s, d, n, g.scale_y[i], g.inv_y[i])
        });
    }
}
