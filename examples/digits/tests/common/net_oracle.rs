//! Independent float64 oracles (plain loops) for the example's network and loss, and
//! central finite differences.

/// The network `input → hidden (ReLU) → output`, or linear when `hidden == 0`, in f64,
/// with the parameter layout of `net::Shape` (weights `[out][in]` then biases, per layer).
pub fn forward(input: usize, hidden: usize, output: usize, p: &[f64], x: &[f64]) -> Vec<f64> {
    let dense = |w: &[f64], b: &[f64], v: &[f64], n_in: usize| -> Vec<f64> {
        (0..b.len())
            .map(|o| b[o] + (0..n_in).map(|i| w[o * n_in + i] * v[i]).sum::<f64>())
            .collect()
    };
    let rows = x.len() / input;
    let mut out = Vec::new();
    for r in 0..rows {
        let v = &x[r * input..(r + 1) * input];
        if hidden == 0 {
            let (w, b) = p.split_at(input * output);
            out.extend(dense(w, b, v, input));
        } else {
            let (w1, rest) = p.split_at(input * hidden);
            let (b1, rest) = rest.split_at(hidden);
            let (w2, b2) = rest.split_at(hidden * output);
            let h: Vec<f64> = dense(w1, b1, v, input)
                .into_iter()
                .map(|a| a.max(0.0))
                .collect();
            out.extend(dense(w2, b2, &h, hidden));
        }
    }
    out
}

/// The contrastive loss over every pair i < j of the batch `e` (`dim` per row), mean over
/// pairs: `w⁺·y·D² + w⁻·(1 − y)·max(0, m − D)²`, `y = 1` for equal classes; `cosine`
/// picks `D = 1 − cos`, else `D = ‖a − b‖`.
pub fn contrastive_all_pairs(
    e: &[f64],
    dim: usize,
    classes: &[u8],
    margin: f64,
    w_pos: f64,
    w_neg: f64,
    cosine: bool,
) -> f64 {
    let n = classes.len();
    let mut total = 0.0;
    let mut pairs = 0;
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&e[i * dim..(i + 1) * dim], &e[j * dim..(j + 1) * dim]);
            let d = if cosine {
                let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
                let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
                1.0 - (dot / (na * nb)).clamp(-1.0, 1.0)
            } else {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f64>()
                    .sqrt()
            };
            total += if classes[i] == classes[j] {
                w_pos * d * d
            } else {
                w_neg * (margin - d).max(0.0).powi(2)
            };
            pairs += 1;
        }
    }
    total / pairs as f64
}

/// Central differences of `f` at `x` with step `h`, one coordinate at a time.
pub fn finite_differences(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut v = x.to_vec();
    (0..x.len())
        .map(|k| {
            v[k] = x[k] + h;
            let up = f(&v);
            v[k] = x[k] - h;
            let down = f(&v);
            v[k] = x[k];
            (up - down) / (2.0 * h)
        })
        .collect()
}
