//! Every public entry point with arbitrary sizes, dims, label counts, margins, weights,
//! labels, output lengths and backends: each call returns `Ok` or exactly an `Err` that
//! the inputs call for (never a panic, never an `Err` for valid input), and an `Ok` call
//! writes every element of its output buffers.
//!
//! The expected errors are derived here from the documented rules (the numerical contract, docs/guarantees.md), not
//! from the crate's code. When several rules are broken at once the order of the checks
//! is not documented, so any one of the broken rules is accepted.

#![no_main]

use contrastive::{Backend, ContrastiveLoss, Distance, Error, Reduction, seed};
use contrastive_fuzz::{Unstructured, vector};
use libfuzzer_sys::fuzz_target;

/// Errors compared through `Debug`, so that a NaN margin or label matches itself.
fn same(x: &Error, y: &Error) -> bool {
    format!("{x:?}") == format!("{y:?}")
}

fn expect<T: core::fmt::Debug>(what: &str, got: &Result<T, Error>, allowed: &[Error]) {
    match got {
        Ok(_) if allowed.is_empty() => {}
        Ok(v) => panic!("{what}: Ok({v:?}) but expected one of {allowed:?}"),
        Err(e) if allowed.iter().any(|a| same(a, e)) => {
            // Display must not panic either, and must say something.
            assert!(!e.to_string().is_empty());
        }
        Err(e) => panic!("{what}: {e:?}, expected one of {allowed:?}"),
    }
}

fn mismatch(argument: &'static str, expected: usize, found: usize) -> Option<Error> {
    (expected != found).then_some(Error::LengthMismatch {
        argument,
        expected,
        found,
    })
}

fn margin_error(margin: f32) -> Option<Error> {
    (!(margin.is_finite() && margin >= 0.0)).then_some(Error::InvalidMargin { margin })
}

fn label_error(labels: &[f32]) -> Option<Error> {
    labels
        .iter()
        .position(|l| !(*l >= 0.0 && *l <= 1.0))
        .map(|index| Error::InvalidLabel {
            index,
            label: labels[index],
        })
}

fn backend_error(backend: Option<Backend>) -> Option<Error> {
    backend
        .filter(|b| !Backend::available().any(|x| x == *b))
        .map(|backend| Error::BackendUnavailable { backend })
}

/// The errors of a batch's shape: `(errors, rows if the shape is valid)`.
fn batch_shape(a: &[f32], b: &[f32], dim: usize) -> (Vec<Error>, Option<usize>) {
    let mut errors = Vec::new();
    if dim == 0 {
        errors.push(Error::ZeroDimension);
        return (errors, None);
    }
    errors.extend(mismatch("b", a.len(), b.len()));
    if !a.len().is_multiple_of(dim) {
        errors.push(Error::NotMultipleOfDim {
            argument: "a",
            len: a.len(),
            dim,
        });
        return (errors, None);
    }
    (errors, Some(a.len() / dim))
}

fn config_errors(loss: &ContrastiveLoss) -> Vec<Error> {
    let mut errors: Vec<Error> = margin_error(loss.margin).into_iter().collect();
    for (argument, weight) in [
        ("positive_weight", loss.positive_weight),
        ("negative_weight", loss.negative_weight),
    ] {
        if !(weight.is_finite() && weight >= 0.0) {
            errors.push(Error::InvalidWeight { argument, weight });
        }
    }
    errors.extend(backend_error(loss.backend));
    errors
}

/// Runs `f` twice on output buffers of `len.0` and `len.1` elements filled with different
/// sentinels, and checks that an `Ok` call wrote every element of both (the two runs give
/// the same outputs).
fn written<T: core::fmt::Debug>(
    what: &str,
    len: (usize, usize),
    mut f: impl FnMut(&mut [f32], &mut [f32]) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut first = (vec![1234.5f32; len.0], vec![1234.5f32; len.1]);
    let mut second = (vec![-6789.25f32; len.0], vec![-6789.25f32; len.1]);
    let r1 = f(&mut first.0, &mut first.1);
    let r2 = f(&mut second.0, &mut second.1);
    assert_eq!(r1.is_ok(), r2.is_ok(), "{what}: not deterministic");
    if r1.is_ok() {
        let pairs = first
            .0
            .iter()
            .zip(&second.0)
            .chain(first.1.iter().zip(&second.1));
        for (i, (x, y)) in pairs.enumerate() {
            assert!(
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                "{what}: output element {i} was not written ({x} vs {y})"
            );
        }
    }
    r1
}

fn check_loss_value(what: &str, got: &Result<f32, Error>) {
    if let Ok(l) = got {
        assert!(
            l.is_nan() || *l >= 0.0,
            "{what}: negative loss {l} for valid input"
        );
    }
}

fn size(u: &mut Unstructured, base: usize) -> contrastive_fuzz::Result<usize> {
    Ok(match u.int_in_range(0..=7u8)? {
        0..=4 => base,
        5 => base + 1,
        6 => base.saturating_sub(1),
        _ => usize::from(u.int_in_range(0..=40u8)?),
    })
}

fn float(u: &mut Unstructured, valid: &[f32]) -> contrastive_fuzz::Result<f32> {
    Ok(match u.int_in_range(0..=7u8)? {
        0..=5 => *u.choose(valid)?,
        6 => *u.choose(&[
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            -1.0,
            -0.0,
            1.5,
            -1e-45,
        ])?,
        _ => f32::from_bits(u.arbitrary()?),
    })
}

fn run(u: &mut Unstructured) -> contrastive_fuzz::Result<()> {
    let dim = match u.int_in_range(0..=9u8)? {
        0 => 0,
        // A huge dim, valid over zero rows (tests/trust_regressions.rs::
        // rows_kernels_accept_a_huge_dim_over_zero_rows).
        1 => *u.choose(&[usize::MAX, 1 << (usize::BITS - 4), usize::MAX / 8 + 1])?,
        _ => usize::from(u.int_in_range(1..=12u8)?),
    };
    let rows = usize::from(u.int_in_range(0..=4u8)?);
    let base = rows.saturating_mul(dim).min(48);
    let len_a = size(u, base)?;
    let a = vector(u, len_a)?;
    let len_b = size(u, a.len())?;
    let b = vector(u, len_b)?;
    let n_labels = size(u, rows)?;
    let labels = (0..n_labels)
        .map(|_| float(u, &[0.0, 1.0, 0.5, 0.25, 1e-45]))
        .collect::<Result<Vec<f32>, _>>()?;
    let backend = if u.arbitrary()? {
        Some(*u.choose(&Backend::ALL)?)
    } else {
        None
    };
    let margin = float(u, &[0.0, 0.5, 1.0, 3.0, f32::MAX])?;
    let mut loss = ContrastiveLoss::new(margin)
        .with_weights(float(u, &[0.5, 1.0, 0.0])?, float(u, &[0.5, 1.0, 0.0])?);
    if u.arbitrary()? {
        loss = loss.with_distance(Distance::Cosine);
    }
    if u.arbitrary()? {
        loss = loss.with_reduction(Reduction::Sum);
    }
    if let Some(backend) = backend {
        loss = loss.with_backend(backend);
    }
    let out_len = size(u, rows)?;
    let grad_len = size(u, a.len())?;
    let grad_b_len = size(u, grad_len)?;

    // Backends: consistent answers.
    let best = Backend::best();
    assert!(
        best.is_available(),
        "best backend {best:?} is not available"
    );
    assert!(Backend::available().any(|b| b == Backend::Scalar));
    for b in Backend::ALL {
        assert!(!b.name().is_empty());
    }

    // Distances.
    let pair_len: Vec<Error> = mismatch("b", a.len(), b.len()).into_iter().collect();
    expect(
        "squared_euclidean",
        &contrastive::squared_euclidean(&a, &b),
        &pair_len,
    );
    expect("euclidean", &contrastive::euclidean(&a, &b), &pair_len);
    expect("dot", &contrastive::dot(&a, &b), &pair_len);
    expect(
        "cosine_similarity",
        &contrastive::cosine_similarity(&a, &b),
        &pair_len,
    );
    let (mut shape, rows_found) = batch_shape(&a, &b, dim);
    let mut rows_errors = shape.clone();
    if let Some(r) = rows_found {
        rows_errors.extend(mismatch("out", r, out_len));
    }
    let got = written("squared_euclidean_rows", (out_len, 0), |out, _| {
        contrastive::squared_euclidean_rows(&a, &b, dim, out)
    });
    expect("squared_euclidean_rows", &got, &rows_errors);
    if let Some(named) = backend {
        let mut with_backend = pair_len.clone();
        with_backend.extend(backend_error(backend));
        expect("Backend::dot", &named.dot(&a, &b), &with_backend);
        expect(
            "Backend::squared_euclidean",
            &named.squared_euclidean(&a, &b),
            &with_backend,
        );
        expect(
            "Backend::euclidean",
            &named.euclidean(&a, &b),
            &with_backend,
        );
        expect(
            "Backend::cosine",
            &named.cosine_similarity(&a, &b),
            &with_backend,
        );
        rows_errors.extend(backend_error(backend));
        let got = written("Backend::squared_euclidean_rows", (out_len, 0), |out, _| {
            named.squared_euclidean_rows(&a, &b, dim, out)
        });
        expect("Backend::squared_euclidean_rows", &got, &rows_errors);
    }

    // Losses.
    let config = config_errors(&loss);
    let mut pair_errors = config.clone();
    pair_errors.extend(pair_len.iter().copied());
    let first_label = labels.first().copied().unwrap_or(0.5);
    pair_errors.extend(label_error(&[first_label]));
    let got = loss.pair(&a, &b, first_label);
    expect("pair", &got, &pair_errors);
    check_loss_value("pair", &got);

    pair_errors.extend(mismatch("grad_a", a.len(), grad_len));
    pair_errors.extend(mismatch("grad_b", a.len(), grad_b_len));
    let got = written("pair_with_grad", (grad_len, grad_b_len), |ga, gb| {
        loss.pair_with_grad(&a, &b, first_label, ga, gb)
    });
    expect("pair_with_grad", &got, &pair_errors);
    check_loss_value("pair_with_grad", &got);

    shape.extend(config.iter().copied());
    shape.extend(label_error(&labels));
    if let Some(r) = rows_found {
        shape.extend(mismatch("labels", r, labels.len()));
    }
    let mut reduce_errors = shape.clone();
    if rows_found == Some(0) && loss.reduction == Reduction::Mean {
        reduce_errors.push(Error::Empty { argument: "labels" });
    }
    let got = loss.batch(&a, &b, dim, &labels);
    expect("batch", &got, &reduce_errors);
    check_loss_value("batch", &got);

    let mut per_pair_errors = shape.clone();
    if let Some(r) = rows_found {
        per_pair_errors.extend(mismatch("out", r, out_len));
    }
    let got = written("batch_per_pair", (out_len, 0), |out, _| {
        loss.batch_per_pair(&a, &b, dim, &labels, out)
    });
    expect("batch_per_pair", &got, &per_pair_errors);

    reduce_errors.extend(mismatch("grad_a", a.len(), grad_len));
    reduce_errors.extend(mismatch("grad_b", a.len(), grad_b_len));
    let got = written("batch_with_grad", (grad_len, grad_b_len), |ga, gb| {
        loss.batch_with_grad(&a, &b, dim, &labels, ga, gb)
    });
    expect("batch_with_grad", &got, &reduce_errors);
    check_loss_value("batch_with_grad", &got);

    // The seed's function.
    let mut seed_errors: Vec<Error> = margin_error(margin).into_iter().collect();
    seed_errors.extend(mismatch("input_2", a.len(), b.len()));
    seed_errors.extend(label_error(&labels));
    if a.is_empty() {
        seed_errors.push(Error::Empty {
            argument: "input_1",
        });
    }
    let mut seed_with_backend = seed_errors.clone();
    seed_with_backend.extend(backend_error(backend));
    let got = seed::contrastive_loss(&a, &b, &labels, margin);
    expect("seed::contrastive_loss", &got, &seed_errors);
    check_loss_value("seed::contrastive_loss", &got);
    if let Some(named) = backend {
        let got = seed::contrastive_loss_on(named, &a, &b, &labels, margin);
        expect("seed::contrastive_loss_on", &got, &seed_with_backend);
    }
    seed_errors.extend(mismatch("grad_1", a.len(), grad_len));
    seed_errors.extend(mismatch("grad_2", a.len(), grad_b_len));
    let lens = (grad_len, grad_b_len);
    let got = written("seed::contrastive_loss_with_grad", lens, |g1, g2| {
        seed::contrastive_loss_with_grad(&a, &b, &labels, margin, g1, g2)
    });
    expect("seed::contrastive_loss_with_grad", &got, &seed_errors);
    if let Some(named) = backend {
        seed_errors.extend(backend_error(backend));
        let got = written("seed::contrastive_loss_with_grad_on", lens, |g1, g2| {
            seed::contrastive_loss_with_grad_on(named, &a, &b, &labels, margin, g1, g2)
        });
        expect("seed::contrastive_loss_with_grad_on", &got, &seed_errors);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
