//! Every distance on every available backend against the float64 oracle, within the
//! documented bound, over arbitrary lengths, start offsets and values (NaN, infinities and
//! subnormals included), and the batched rows form against the single-pair bound.

#![no_main]

use contrastive::Backend;
use contrastive_fuzz::oracle;
use contrastive_fuzz::{Unstructured, offset, partner, placed, require, vector};
use libfuzzer_sys::fuzz_target;

fn run(u: &mut Unstructured) -> contrastive_fuzz::Result<()> {
    let n = usize::from(u.int_in_range(0..=300u16)?);
    let a = vector(u, n)?;
    let b = partner(u, &a)?;
    let (off_a, off_b, off_out) = (offset(u)?, offset(u)?, offset(u)?);
    let dim = if n == 0 {
        1
    } else {
        usize::from(u.int_in_range(1..=n.min(64) as u16)?)
    };
    let (buf_a, buf_b) = (placed(&a, off_a), placed(&b, off_b));
    let (a, b) = (&buf_a[off_a..], &buf_b[off_b..]);
    let case = || format!("a = {a:?}\n  b = {b:?}\n  dim = {dim}");

    let best = [
        contrastive::squared_euclidean(a, b).unwrap(),
        contrastive::euclidean(a, b).unwrap(),
        contrastive::dot(a, b).unwrap(),
        contrastive::cosine_similarity(a, b).unwrap(),
    ];
    require(oracle::check_distances(a, b, best), || {
        format!("default backend\n  {}", case())
    });

    let rows = n / dim;
    let used = rows * dim;
    for backend in Backend::available() {
        let got = [
            backend.squared_euclidean(a, b).unwrap(),
            backend.euclidean(a, b).unwrap(),
            backend.dot(a, b).unwrap(),
            backend.cosine_similarity(a, b).unwrap(),
        ];
        require(oracle::check_distances(a, b, got), || {
            format!("backend {backend:?}\n  {}", case())
        });

        let mut out_buf = placed(&vec![f32::NAN; rows], off_out);
        let out = &mut out_buf[off_out..];
        backend
            .squared_euclidean_rows(&a[..used], &b[..used], dim, out)
            .unwrap();
        for (r, &got) in out.iter().enumerate() {
            let (ra, rb) = (&a[r * dim..][..dim], &b[r * dim..][..dim]);
            let s = oracle::squared_euclidean(ra, rb);
            let bound = oracle::squared_euclidean_bound(dim, s);
            require(
                oracle::check(format_args!("squared_euclidean_rows[{r}]"), got, s, bound),
                || format!("backend {backend:?}\n  {}", case()),
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
