//! The float64 oracle of the triplet losses and the cosine embedding loss: plain loops
//! over every triplet (N³ for batch-all, fine at test sizes), never the crate's code.

#![allow(dead_code)]

fn row(x: &[f32], dim: usize, i: usize) -> Vec<f64> {
    x[i * dim..(i + 1) * dim]
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}

/// `‖x − y + eps‖` and its unit direction (0 at distance 0).
pub fn distance(x: &[f64], y: &[f64], eps: f64) -> (f64, Vec<f64>) {
    let diff: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b + eps).collect();
    let d = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
    let u = if d == 0.0 {
        vec![0.0; x.len()]
    } else {
        diff.iter().map(|v| v / d).collect()
    };
    (d, u)
}

/// One explicit triplet: loss, gradients of `c·loss`, the loss scale the bound refers to
/// (`m + Σ distances`) and the violation (how far from the hinge).
pub struct TripletRef {
    pub loss: f64,
    pub grad: [Vec<f64>; 3],
    /// Per component, the sum of the absolute terms (the gradient's bound scale).
    pub grad_scale: [Vec<f64>; 3],
    pub scale: f64,
    pub violation: f64,
}

pub fn triplet(
    a: &[f32],
    p: &[f32],
    n: &[f32],
    margin: f64,
    swap: bool,
    eps: f64,
    c: f64,
) -> TripletRef {
    let w = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let (a, p, n) = (w(a), w(p), w(n));
    let (dap, uap) = distance(&a, &p, eps);
    let (dan, uan) = distance(&a, &n, eps);
    let (dpn, upn) = distance(&p, &n, eps);
    let (neg, wan, wpn) = if !swap || dan < dpn {
        (dan, 1.0, 0.0)
    } else if dan == dpn {
        (dan, 0.5, 0.5)
    } else {
        (dpn, 0.0, 1.0)
    };
    let v = margin + dap - neg;
    let active = if v > 0.0 { 1.0 } else { 0.0 };
    let k = c * active;
    let dim = a.len();
    let mut ga = vec![0.0; dim];
    let mut gp = vec![0.0; dim];
    let mut gn = vec![0.0; dim];
    let (mut sa, mut sp, mut sn) = (vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]);
    for i in 0..dim {
        ga[i] = k * (uap[i] - wan * uan[i]);
        gp[i] = k * (-uap[i] - wpn * upn[i]);
        gn[i] = k * (wan * uan[i] + wpn * upn[i]);
        let k = c; // the scale holds whichever side of the hinge the rounding picks
        sa[i] = k * (uap[i].abs() + wan * uan[i].abs());
        sp[i] = k * (uap[i].abs() + wpn * upn[i].abs());
        sn[i] = k * (wan * uan[i].abs() + wpn * upn[i].abs());
    }
    TripletRef {
        loss: v.max(0.0),
        grad: [ga, gp, gn],
        grad_scale: [sa, sp, sn],
        scale: margin + dap + dan + if swap { dpn } else { 0.0 },
        violation: v,
    }
}

/// torch's cosine embedding loss in f64 with the exact cosine (0 for a zero vector), and
/// the gradients of `c·loss`.
pub struct CosineEmbeddingRef {
    pub loss: f64,
    pub grad_a: Vec<f64>,
    pub grad_b: Vec<f64>,
    /// Largest `|∂cos/∂·|` component scale (`c·(|b|/(|a||b|) + |a|/|a|²)` summed).
    pub grad_scale: f64,
    pub cos: f64,
}

pub fn cosine_embedding(
    a: &[f32],
    b: &[f32],
    target: f32,
    margin: f64,
    c: f64,
) -> CosineEmbeddingRef {
    let a: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    let b: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    let ab: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    let zero = na == 0.0 || nb == 0.0;
    let cos = if zero {
        0.0
    } else {
        (ab / (na * nb)).clamp(-1.0, 1.0)
    };
    let (loss, slope) = if target == 1.0 {
        (1.0 - cos, -1.0)
    } else if target == -1.0 && cos - margin > 0.0 {
        (cos - margin, 1.0)
    } else {
        (0.0, 0.0)
    };
    let dim = a.len();
    let (mut ga, mut gb) = (vec![0.0; dim], vec![0.0; dim]);
    let mut scale = 0.0f64;
    if !zero && slope != 0.0 {
        for i in 0..dim {
            ga[i] = c * slope * (b[i] / (na * nb) - cos * a[i] / (na * na));
            gb[i] = c * slope * (a[i] / (na * nb) - cos * b[i] / (nb * nb));
            scale = scale
                .max(c * (b[i].abs() / (na * nb) + a[i].abs() / (na * na)))
                .max(c * (a[i].abs() / (na * nb) + b[i].abs() / (nb * nb)));
        }
    }
    CosineEmbeddingRef {
        loss,
        grad_a: ga,
        grad_b: gb,
        grad_scale: scale,
        cos,
    }
}

/// An in-batch result: the loss, its gradient, the loss scale of the bound, and the
/// smallest distance of any decision to its kink (hinge or argmax/argmin runner-up).
pub struct InBatchRef {
    pub loss: f64,
    pub grad: Vec<f64>,
    /// Per component, the sum of the absolute contributions (the gradient's bound scale).
    pub grad_scale: Vec<f64>,
    pub scale: f64,
    pub kink_gap: f64,
}

/// Rows of `x` as f64, L2-normalised if asked (a zero row stays zero).
fn rows64(x: &[f32], dim: usize, normalize: bool) -> Vec<Vec<f64>> {
    let n = x.len().checked_div(dim).unwrap_or(0);
    (0..n)
        .map(|i| {
            let r = row(x, dim, i);
            if !normalize {
                return r;
            }
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm == 0.0 {
                r
            } else {
                r.iter().map(|v| v / norm).collect()
            }
        })
        .collect()
}

/// Chain rule through `x̂ = x/‖x‖`: `(g − x̂(x̂·g))/‖x‖`, 0 for a zero row.
fn through_normalization(x: &[f32], dim: usize, grad: &mut [f64]) {
    for i in 0..grad.len() / dim {
        let r = row(x, dim, i);
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        let g = &mut grad[i * dim..(i + 1) * dim];
        if norm == 0.0 {
            g.iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        let xh: Vec<f64> = r.iter().map(|v| v / norm).collect();
        let dot: f64 = xh.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
        for k in 0..dim {
            g[k] = (g[k] - xh[k] * dot) / norm;
        }
    }
}

/// The bound scale through the normalisation: `(s + |x̂|·Σ|x̂|s)/‖x‖`.
fn scale_through_normalization(x: &[f32], dim: usize, scale: &mut [f64]) {
    for i in 0..scale.len() / dim {
        let r = row(x, dim, i);
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        let s = &mut scale[i * dim..(i + 1) * dim];
        if norm == 0.0 {
            s.iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        let xh: Vec<f64> = r.iter().map(|v| (v / norm).abs()).collect();
        let dot: f64 = xh.iter().zip(s.iter()).map(|(a, b)| a * b).sum();
        for k in 0..dim {
            s[k] = (s[k] + xh[k] * dot) / norm;
        }
    }
}

fn softplus(v: f64) -> f64 {
    if v > 0.0 {
        v + (-v).exp().ln_1p()
    } else {
        v.exp().ln_1p()
    }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// PML batch-all: every (a, p, n), plain triple loop.
pub fn batch_all(
    x: &[f32],
    dim: usize,
    classes: &[u32],
    margin: f64,
    smooth: bool,
    normalize: bool,
) -> InBatchRef {
    let rows = rows64(x, dim, normalize);
    let n = rows.len();
    let mut grad = vec![0.0; n * dim];
    let mut grad_scale = vec![0.0; n * dim];
    // Normalised rows carry a rounding of their own in each component: the scale of a
    // difference is then |a| + |b|, not |a − b|.
    let unit_scale = |a: &[f64], b: &[f64], d: f64, k: usize| {
        if d == 0.0 {
            0.0
        } else if normalize {
            (a[k].abs() + b[k].abs()) / d
        } else {
            (a[k] - b[k]).abs() / d
        }
    };
    let (mut total, mut count, mut scale) = (0.0f64, 0usize, 0.0f64);
    let mut kink_gap = f64::INFINITY;
    let dist: Vec<Vec<(f64, Vec<f64>)>> = (0..n)
        .map(|i| (0..n).map(|j| distance(&rows[i], &rows[j], 0.0)).collect())
        .collect();
    let mut all = 0usize;
    let mut coef = vec![0.0f64; n * n];
    for a in 0..n {
        for p in 0..n {
            if p == a || classes[p] != classes[a] {
                continue;
            }
            for q in 0..n {
                if classes[q] == classes[a] {
                    continue;
                }
                all += 1;
                let dap = &dist[a][p].0;
                let dan = &dist[a][q].0;
                let v = dap - dan + margin;
                let (loss, weight) = if smooth {
                    (softplus(v), sigmoid(v))
                } else {
                    kink_gap = kink_gap.min(v.abs() / (dap + dan + margin).max(1e-30));
                    if v > 0.0 { (v, 1.0) } else { (0.0, 0.0) }
                };
                if weight == 0.0 && loss == 0.0 {
                    continue;
                }
                if !smooth {
                    count += 1;
                }
                total += loss;
                scale += margin + dap + dan + if normalize { 4.0 } else { 0.0 };
                // ∂v/∂d_ap = 1, ∂v/∂d_an = −1: per pair coefficients, applied below.
                coef[a * n + p] += weight;
                coef[a * n + q] -= weight;
            }
        }
    }
    for a in 0..n {
        for j in 0..n {
            let w = coef[a * n + j];
            if w == 0.0 {
                continue;
            }
            let (dj, u) = &dist[a][j];
            for k in 0..dim {
                grad[a * dim + k] += w * u[k];
                grad[j * dim + k] -= w * u[k];
                let s = w.abs() * unit_scale(&rows[a], &rows[j], *dj, k);
                grad_scale[a * dim + k] += s;
                grad_scale[j * dim + k] += s;
            }
        }
    }
    let denominator = if smooth { all } else { count };
    let (loss, scale) = if denominator == 0 {
        (0.0, 0.0)
    } else {
        let inv = 1.0 / denominator as f64;
        grad.iter_mut().for_each(|g| *g *= inv);
        grad_scale.iter_mut().for_each(|g| *g *= inv);
        (total * inv, scale * inv)
    };
    if normalize {
        through_normalization(x, dim, &mut grad);
        scale_through_normalization(x, dim, &mut grad_scale);
    }
    InBatchRef {
        loss,
        grad,
        grad_scale,
        scale,
        kink_gap,
    }
}

/// sentence-transformers batch-hard, with the documented edge cases (hardest positive 0
/// without positives; hardest negative the row maximum, self included, without
/// negatives; ties to the lowest index; mean over all anchors).
pub fn batch_hard(x: &[f32], dim: usize, classes: &[u32], margin: f64, cosine: bool) -> InBatchRef {
    let rows = rows64(x, dim, false);
    let n = rows.len();
    let mut grad = vec![0.0; n * dim];
    let mut grad_scale = vec![0.0; n * dim];
    // (D, ∂D/∂a, ∂D/∂b, and the bound scale of each component of both).
    type Pair = (f64, Vec<f64>, Vec<f64>, Vec<f64>);
    let d = |i: usize, j: usize| -> Pair {
        let zero = || (0.0, vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]);
        if i == j {
            return zero();
        }
        let (a, b) = (&rows[i], &rows[j]);
        if cosine {
            let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            if na == 0.0 || nb == 0.0 {
                let (_, ga, gb, s) = zero();
                return (1.0, ga, gb, s);
            }
            if a == b {
                return zero();
            }
            let cos = (ab / (na * nb)).clamp(-1.0, 1.0);
            // ∂(1 − cos)/∂a, ∂/∂b.
            let ga = (0..dim)
                .map(|k| -(b[k] / (na * nb) - cos * a[k] / (na * na)))
                .collect();
            let gb = (0..dim)
                .map(|k| -(a[k] / (na * nb) - cos * b[k] / (nb * nb)))
                .collect();
            let s = (0..dim)
                .map(|k| {
                    let sa = b[k].abs() / (na * nb) + a[k].abs() / (na * na);
                    let sb = a[k].abs() / (na * nb) + b[k].abs() / (nb * nb);
                    sa.max(sb)
                })
                .collect();
            (1.0 - cos, ga, gb, s)
        } else {
            let (dist, u) = distance(a, b, 0.0);
            let neg = u.iter().map(|v| -v).collect();
            let s = u.iter().map(|v| v.abs()).collect();
            (dist, u, neg, s)
        }
    };
    let (mut total, mut scale) = (0.0f64, 0.0f64);
    let mut kink_gap = f64::INFINITY;
    for i in 0..n {
        let row: Vec<Pair> = (0..n).map(|j| d(i, j)).collect();
        let (mut hp, mut hpi) = (0.0, None::<usize>);
        let (mut hn, mut hni) = (0.0, None::<usize>);
        let (mut largest, mut largest_i) = (0.0, i);
        let mut pos = vec![];
        let mut neg = vec![];
        for j in 0..n {
            let dj = row[j].0;
            if dj > largest {
                largest = dj;
                largest_i = j;
            }
            if j == i {
                continue;
            }
            if classes[j] == classes[i] {
                pos.push(dj);
                if hpi.is_none() || dj > hp {
                    hp = dj;
                    hpi = Some(j);
                }
            } else {
                neg.push(dj);
                if hni.is_none() || dj < hn {
                    hn = dj;
                    hni = Some(j);
                }
            }
        }
        // Runner-up gaps (ties of distinct distances that rounding could reorder).
        let rel = |a: f64, b: f64| (a - b).abs() / (a.abs() + b.abs()).max(1e-30);
        for &p in &pos {
            if p != hp {
                kink_gap = kink_gap.min(rel(p, hp));
            }
        }
        for &q in &neg {
            if q != hn {
                kink_gap = kink_gap.min(rel(q, hn));
            }
        }
        let hni = match hni {
            Some(j) => j,
            None => {
                hn = largest;
                largest_i
            }
        };
        let v = hp - hn + margin;
        kink_gap = kink_gap.min(v.abs() / (hp + hn + margin).max(1e-30));
        scale += hp + hn + margin;
        if v > 0.0 {
            total += v;
            let c = 1.0 / n as f64;
            if let Some(j) = hpi {
                for k in 0..dim {
                    grad[i * dim + k] += c * row[j].1[k];
                    grad[j * dim + k] += c * row[j].2[k];
                    grad_scale[i * dim + k] += c * row[j].3[k];
                    grad_scale[j * dim + k] += c * row[j].3[k];
                }
            }
            if hni != i {
                for k in 0..dim {
                    grad[i * dim + k] -= c * row[hni].1[k];
                    grad[hni * dim + k] -= c * row[hni].2[k];
                    grad_scale[i * dim + k] += c * row[hni].3[k];
                    grad_scale[hni * dim + k] += c * row[hni].3[k];
                }
            }
        }
    }
    InBatchRef {
        loss: total / n as f64,
        grad,
        grad_scale,
        scale: scale / n as f64,
        kink_gap,
    }
}
