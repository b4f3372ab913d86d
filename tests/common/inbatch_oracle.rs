//! A float64 oracle for the general contrastive loss (pytorch-metric-learning's options:
//! two margins, linear or squared hinges, normalised rows, cosine or (squared) Euclidean
//! distance, Mean / Sum / AvgNonZero) over any list of pairs: explicit pairs, every
//! ordered pair of a batch, or every pair across two batches. Plain loops, independent of
//! the crate. Besides the values it returns the scales that the tests' bounds are
//! relative to: the sum of absolute terms of each result.

#![allow(dead_code)]

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    Euclidean,
    Squared,
    Cosine,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Red {
    Mean,
    Sum,
    AvgNonZero,
    /// Per-pair losses; the gradient is that of their sum.
    None,
}

#[derive(Clone, Copy, Debug)]
pub struct Loss {
    pub dist: Dist,
    pub normalize: bool,
    pub m_pos: f64,
    pub m_neg: f64,
    /// 1 (linear hinge) or 2 (squared).
    pub power: i32,
    pub w_pos: f64,
    pub w_neg: f64,
    pub red: Red,
}

#[derive(Clone, Debug, Default)]
pub struct Out {
    pub loss: f64,
    pub loss_scale: f64,
    pub per_pair: Vec<f64>,
    pub per_pair_scale: Vec<f64>,
    pub gx: Vec<f64>,
    pub gy: Vec<f64>,
    pub gx_scale: Vec<f64>,
    pub gy_scale: Vec<f64>,
    pub n_pos_nonzero: usize,
    pub n_neg_nonzero: usize,
    /// The smallest `|d − m₊|` or `|m₋ − d|` over the pairs whose term is evaluated: how
    /// far the batch is from a kink (finite differences need it away from 0).
    pub kink_gap: f64,
}

/// A row in f64, normalised if asked (a zero row stays zero), with its norm.
fn row(x: &[f32], i: usize, dim: usize, normalize: bool) -> (Vec<f64>, f64) {
    let r: Vec<f64> = x[i * dim..(i + 1) * dim]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    if normalize {
        let inv = if n == 0.0 { 0.0 } else { 1.0 / n };
        (r.iter().map(|v| v * inv).collect(), n)
    } else {
        (r, n)
    }
}

/// The pair's distance value and the derivatives of it with respect to the raw rows,
/// with the absolute-term scales of those derivatives.
struct Measured {
    d: f64,
    dx: Vec<f64>,
    dy: Vec<f64>,
    sx: Vec<f64>,
    sy: Vec<f64>,
}

/// `(g − (g·u)·u)/n` for a unit `u` (0 for a zero row).
fn project(g: &[f64], u: &[f64], n: f64) -> Vec<f64> {
    if n == 0.0 {
        return vec![0.0; g.len()];
    }
    let dot: f64 = g.iter().zip(u).map(|(a, b)| a * b).sum();
    g.iter().zip(u).map(|(a, b)| (a - dot * b) / n).collect()
}

fn measure(l: &Loss, xi: &[f32], yj: &[f32]) -> Measured {
    let dim = xi.len();
    let normalize = l.normalize || l.dist == Dist::Cosine;
    let (u, nu) = row(xi, 0, dim, normalize);
    let (v, nv) = row(yj, 0, dim, normalize);
    let chain = |g: Vec<f64>, u: &[f64], n: f64| if normalize { project(&g, u, n) } else { g };
    let chain_scale = |s: Vec<f64>, n: f64| {
        if normalize {
            // The projection can double a component; 1/‖x‖ scales it.
            s.iter()
                .map(|v| if n == 0.0 { 0.0 } else { 2.0 * v / n })
                .collect()
        } else {
            s
        }
    };
    let delta: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a - b).collect();
    let abs: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a.abs() + b.abs()).collect();
    let s: f64 = delta.iter().map(|d| d * d).sum();
    match l.dist {
        Dist::Euclidean | Dist::Squared => {
            let (d, k, ks) = if l.dist == Dist::Squared {
                (s, 2.0, 2.0)
            } else {
                let d = s.sqrt();
                if d == 0.0 {
                    (0.0, 0.0, 0.0)
                } else {
                    (d, 1.0 / d, 1.0 / d)
                }
            };
            let gx: Vec<f64> = delta.iter().map(|t| k * t).collect();
            let gy: Vec<f64> = delta.iter().map(|t| -k * t).collect();
            let mut sc: Vec<f64> = abs.iter().map(|t| ks * t).collect();
            if normalize && d == 0.0 && xi != yj {
                // Parallel rows of different lengths: f32 normalisation leaves them a few
                // units apart, where any direction is a subgradient; after the projection
                // it is bounded by the row's scale (in one dimension it vanishes).
                sc = vec![1.0; dim];
            }
            Measured {
                d,
                dx: chain(gx, &u, nu),
                dy: chain(gy, &v, nv),
                sx: chain_scale(sc.clone(), nu),
                sy: chain_scale(sc, nv),
            }
        }
        Dist::Cosine => {
            if nu == 0.0 || nv == 0.0 {
                return Measured {
                    d: 1.0,
                    dx: vec![0.0; dim],
                    dy: vec![0.0; dim],
                    sx: vec![0.0; dim],
                    sy: vec![0.0; dim],
                };
            }
            let bitwise_equal = xi == yj;
            let cos = if bitwise_equal {
                1.0
            } else {
                u.iter()
                    .zip(&v)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    .clamp(-1.0, 1.0)
            };
            // D = 1 − cos: ∂D/∂x = −(ŷ − cos·x̂)/‖x‖.
            let dx = u.iter().zip(&v).map(|(a, b)| -(b - cos * a) / nu).collect();
            let dy = u.iter().zip(&v).map(|(a, b)| -(a - cos * b) / nv).collect();
            let sx = abs.iter().map(|t| 2.0 * t / nu).collect();
            let sy = abs.iter().map(|t| 2.0 * t / nv).collect();
            Measured {
                d: 1.0 - cos,
                dx,
                dy,
                sx,
                sy,
            }
        }
    }
}

/// `(w·relu(a)^k, its derivative)`.
fn hinge(w: f64, a: f64, k: i32) -> (f64, f64) {
    if w == 0.0 || a <= 0.0 {
        return (0.0, 0.0);
    }
    if k == 2 {
        (w * a * a, 2.0 * w * a)
    } else {
        (w * a, w)
    }
}

/// The loss over `pairs` = `(i, j, label)` of rows of `x` and `y`; with `same`, `y` is
/// `x` and the gradient is all in `gx`.
pub fn evaluate(
    l: &Loss,
    x: &[f32],
    y: &[f32],
    dim: usize,
    pairs: &[(usize, usize, f64)],
    same: bool,
) -> Out {
    struct PairValue {
        pos: f64,
        neg: f64,
        dpos: f64,
        dneg: f64,
        label: f64,
        m: Measured,
        i: usize,
        j: usize,
    }
    let values: Vec<PairValue> = pairs
        .iter()
        .map(|&(i, j, label)| {
            let m = measure(l, &x[i * dim..(i + 1) * dim], &y[j * dim..(j + 1) * dim]);
            let (pos, dpos) = hinge(l.w_pos, m.d - l.m_pos, l.power);
            let (neg, dneg) = hinge(l.w_neg, l.m_neg - m.d, l.power);
            PairValue {
                pos,
                neg,
                dpos,
                dneg: -dneg,
                label,
                m,
                i,
                j,
            }
        })
        .collect();
    let n_pairs = values.len();
    let n_pos_nonzero = values
        .iter()
        .filter(|v| v.label == 1.0 && v.pos > 0.0)
        .count();
    let n_neg_nonzero = values
        .iter()
        .filter(|v| v.label == 0.0 && v.neg > 0.0)
        .count();
    let inv = |n: usize| if n == 0 { 0.0 } else { 1.0 / n as f64 };
    let (fp, fn_) = match l.red {
        Red::Mean => (inv(n_pairs), inv(n_pairs)),
        Red::Sum | Red::None => (1.0, 1.0),
        Red::AvgNonZero => (inv(n_pos_nonzero), inv(n_neg_nonzero)),
    };
    let rows_y = if same { 0 } else { y.len() / dim };
    let mut out = Out {
        gx: vec![0.0; x.len()],
        gy: vec![0.0; rows_y * dim],
        gx_scale: vec![0.0; x.len()],
        gy_scale: vec![0.0; rows_y * dim],
        n_pos_nonzero,
        n_neg_nonzero,
        ..Out::default()
    };
    let margins = l.m_pos.abs() + l.m_neg.abs() + 1.0;
    out.kink_gap = f64::INFINITY;
    for v in &values {
        if v.label != 0.0 && l.w_pos != 0.0 {
            out.kink_gap = out.kink_gap.min((v.m.d - l.m_pos).abs());
        }
        if v.label != 1.0 && l.w_neg != 0.0 {
            out.kink_gap = out.kink_gap.min((l.m_neg - v.m.d).abs());
        }
    }
    for v in &values {
        let (pos, neg) = (v.label * v.pos, (1.0 - v.label) * v.neg);
        let slope = fp * v.label * v.dpos + fn_ * (1.0 - v.label) * v.dneg;
        let mut slope_abs = fp * v.label * v.dpos.abs() + fn_ * (1.0 - v.label) * v.dneg.abs();
        if l.power == 2 {
            // A squared hinge's slope moves with the distance: an error in D of a few
            // units of (D + 1) moves the gradient by 2w times that, even where the exact
            // slope is 0 (identical directions computed from differently scaled rows).
            slope_abs += 2.0
                * (fp * v.label * l.w_pos + fn_ * (1.0 - v.label) * l.w_neg)
                * (v.m.d.abs() + 1.0);
        }
        out.per_pair.push(pos + neg);
        let pair_scale =
            pos.abs() + neg.abs() + (v.dpos.abs() + v.dneg.abs()) * (v.m.d.abs() + margins);
        out.per_pair_scale.push(pair_scale);
        out.loss_scale += match l.red {
            Red::AvgNonZero => {
                fp * pos.abs() + fn_ * neg.abs() + slope_abs * (v.m.d.abs() + margins)
            }
            _ => fp * pair_scale,
        };
        if l.red != Red::AvgNonZero {
            out.loss += fp * pos + fn_ * neg;
        }
        for k in 0..dim {
            out.gx[v.i * dim + k] += slope * v.m.dx[k];
            out.gx_scale[v.i * dim + k] += slope_abs * v.m.sx[k];
            let (g, gs) = if same {
                (&mut out.gx, &mut out.gx_scale)
            } else {
                (&mut out.gy, &mut out.gy_scale)
            };
            g[v.j * dim + k] += slope * v.m.dy[k];
            gs[v.j * dim + k] += slope_abs * v.m.sy[k];
        }
    }
    if l.red == Red::AvgNonZero {
        let pos: f64 = values
            .iter()
            .filter(|v| v.label == 1.0 && v.pos > 0.0)
            .map(|v| v.pos)
            .sum();
        let neg: f64 = values
            .iter()
            .filter(|v| v.label == 0.0 && v.neg > 0.0)
            .map(|v| v.neg)
            .sum();
        out.loss = pos * fp + neg * fn_;
    }
    out
}

/// Every ordered pair `(i, j)`, `i ≠ j`, of one batch, labelled by class equality.
pub fn within_pairs(classes: &[u32]) -> Vec<(usize, usize, f64)> {
    let n = classes.len();
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                pairs.push((i, j, f64::from(u8::from(classes[i] == classes[j]))));
            }
        }
    }
    pairs
}

/// Every `(i, j)` of two batches, labelled by class equality.
pub fn across_pairs(x_classes: &[u32], y_classes: &[u32]) -> Vec<(usize, usize, f64)> {
    let mut pairs = Vec::new();
    for (i, a) in x_classes.iter().enumerate() {
        for (j, b) in y_classes.iter().enumerate() {
            pairs.push((i, j, f64::from(u8::from(a == b))));
        }
    }
    pairs
}

/// sentence-transformers' `OnlineContrastiveLoss` (current version) on explicit pairs:
/// thresholds from the batch, strict selections, `Σ hard_pos D² + Σ relu(m − D)²` over
/// the hard negatives (no ½), its gradient with the selection held fixed. Cosine or
/// Euclidean distance.
pub fn online(x1: &[f32], x2: &[f32], dim: usize, y: &[f64], margin: f64, cosine: bool) -> Out {
    let l = Loss {
        dist: if cosine {
            Dist::Cosine
        } else {
            Dist::Euclidean
        },
        normalize: false,
        m_pos: 0.0,
        m_neg: margin,
        power: 2,
        w_pos: 1.0,
        w_neg: 1.0,
        red: Red::Sum,
    };
    let measured: Vec<Measured> = (0..y.len())
        .map(|i| measure(&l, &x1[i * dim..(i + 1) * dim], &x2[i * dim..(i + 1) * dim]))
        .collect();
    let poss: Vec<f64> = measured
        .iter()
        .zip(y)
        .filter(|(_, l)| **l == 1.0)
        .map(|(m, _)| m.d)
        .collect();
    let negs: Vec<f64> = measured
        .iter()
        .zip(y)
        .filter(|(_, l)| **l == 0.0)
        .map(|(m, _)| m.d)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let neg_t = if poss.is_empty() {
        mean(&negs)
    } else {
        poss.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    let pos_t = if negs.is_empty() {
        mean(&poss)
    } else {
        negs.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let pairs: Vec<(usize, usize, f64)> = y
        .iter()
        .enumerate()
        .filter(|&(i, &l)| {
            if l == 1.0 {
                measured[i].d > pos_t
            } else {
                measured[i].d < neg_t
            }
        })
        .map(|(i, &l)| (i, i, l))
        .collect();
    let mut out = evaluate(&l, x1, x2, dim, &pairs, false);
    // Each pair against its own side's threshold (the pair that sets the other side's
    // threshold sits on it by construction).
    let gap = measured
        .iter()
        .zip(y)
        .map(|(m, &l)| {
            if l == 1.0 {
                (m.d - pos_t).abs()
            } else {
                (m.d - neg_t).abs()
            }
        })
        .fold(f64::INFINITY, f64::min);
    out.kink_gap = out.kink_gap.min(gap);
    out
}
