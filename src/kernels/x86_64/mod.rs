//! `core::arch` kernels for x86-64: AVX2+FMA and AVX-512F. Each table is handed out only
//! after its instructions are known to be available, which is what makes the safe
//! wrappers in it sound.
//!
//! The kernels themselves are safe `#[target_feature]` functions over slices: every load
//! and store goes through a helper that takes a fixed-size array or a slice whose length
//! bounds the lane mask, so no kernel can touch memory outside the slices it is given.
//! The only `unsafe` outside those helpers is the call into a `#[target_feature]` function
//! from a table entry.

mod avx2;
mod avx512;
pub(crate) mod dot_tile;
mod shapes;
pub(crate) mod tile;

use super::Kernels;

/// The AVX2+FMA table, if this CPU has AVX2 and FMA.
#[inline]
pub(crate) fn avx2() -> Option<&'static Kernels> {
    has_avx2_fma().then_some(&avx2::KERNELS)
}

/// The AVX-512F table, if this CPU has AVX-512F.
#[inline]
pub(crate) fn avx512() -> Option<&'static Kernels> {
    has_avx512f().then_some(&avx512::KERNELS)
}

/// What this CPU (and OS) runs, asked once under `std`: bit 0 AVX2 and FMA, bit 1 AVX-512F
/// with them. One cached load per call, so that a named backend costs what the default one
/// does (three `is_x86_feature_detected!` per call cost a pair at d = 16 more than its
/// arithmetic).
#[cfg(feature = "std")]
#[inline]
fn detected() -> u8 {
    static FEATURES: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *FEATURES.get_or_init(|| {
        let avx2_fma =
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let avx512f = avx2_fma && std::is_x86_feature_detected!("avx512f");
        u8::from(avx2_fma) | u8::from(avx512f) << 1
    })
}

/// Whether AVX2 and FMA may run: asked of the CPU (and OS) under `std`.
#[cfg(feature = "std")]
#[inline]
fn has_avx2_fma() -> bool {
    detected() & 1 != 0
}

/// Whether AVX2 and FMA may run: without `std`, only what the build was told (`-C
/// target-cpu` or `-C target-feature`).
#[cfg(not(feature = "std"))]
fn has_avx2_fma() -> bool {
    cfg!(all(target_feature = "avx2", target_feature = "fma"))
}

/// Whether AVX-512F may run (with the AVX2 and FMA the kernels enable with it).
#[cfg(feature = "std")]
#[inline]
fn has_avx512f() -> bool {
    detected() & 2 != 0
}

/// Whether AVX-512F may run, from the build's target features.
#[cfg(not(feature = "std"))]
fn has_avx512f() -> bool {
    cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx2",
        target_feature = "fma"
    ))
}

/// Whether `a`, `b`, `grad_a` and `grad_b` each hold the `labels.len()` rows of `dim` a
/// one-pass kernel takes (it declines otherwise).
fn rows_fit(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    grad_a: &[f32],
    grad_b: &[f32],
) -> bool {
    dim.checked_mul(labels.len())
        .is_some_and(|n| [a.len(), b.len(), grad_a.len(), grad_b.len()] == [n; 4])
}

/// How many elements precede the first 64-byte boundary that `x` and `y` reach at the same
/// element (0 to 15), or 0 if they never do.
fn aligned_head(x: &[f32], y: &[f32]) -> usize {
    let (offset_x, offset_y) = (x.as_ptr().addr() % 64, y.as_ptr().addr() % 64);
    if offset_x == offset_y && offset_x % size_of::<f32>() == 0 {
        (64 - offset_x) % 64 / size_of::<f32>()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    //! The kernels given slices of different lengths (which the public layer never does):
    //! each works on the shortest and leaves the rest alone, like the generic loops. Under
    //! Miri this is also the check that no load or store leaves its slice.
    use super::super::{Backend, EPILOGUE_ROWS, Kernels, OnePass, table};
    use crate::loss::block::{Block, LabelledPairs, Weights};
    use std::{format, vec, vec::Vec};

    const SENTINEL: f32 = 12345.0;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 20) as f32 / 4096.0
                    - 0.5
            })
            .collect()
    }

    fn close(x: f32, y: f32) -> bool {
        (x - y).abs() <= 1e-5 * (1.0 + x.abs().max(y.abs()))
    }

    /// The x86 tables that can run here, under Miri too: a pass with the AVX-512 features
    /// runs both (the AVX2 kernels are `#[target_feature]` functions), one with AVX2+FMA
    /// alone the AVX2 table, the portable pass neither.
    fn x86_tables() -> Vec<(Backend, &'static Kernels)> {
        Backend::available()
            .filter(|b| matches!(b, Backend::Avx2 | Backend::Avx512))
            .filter_map(|b| table(b).ok().map(|k| (b, k)))
            .collect()
    }

    /// Lengths around the vector widths and block sizes, cut short on each side in turn.
    fn lengths() -> impl Iterator<Item = usize> {
        let long: &'static [usize] = if cfg!(miri) {
            &[0, 1, 7, 9, 17, 33, 70]
        } else {
            &[0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 70, 129]
        };
        long.iter().copied()
    }

    #[test]
    fn reductions_use_the_shorter_slice() {
        let scalar = table(Backend::Scalar).unwrap();
        for (backend, k) in x86_tables() {
            for n in lengths() {
                for extra in [0, 1, 5, 16] {
                    let (a, b) = (data(n + extra, 1), data(n, 2));
                    for (x, y) in [(&a[..], &b[..]), (&b[..], &a[..])] {
                        let what = format!("{backend:?} n={n} extra={extra}");
                        assert!(
                            close(
                                (k.squared_euclidean)(x, y),
                                (scalar.squared_euclidean)(&x[..n], &y[..n])
                            ),
                            "{what}"
                        );
                        assert!(
                            close((k.dot)(x, y), (scalar.dot)(&x[..n], &y[..n])),
                            "{what}"
                        );
                        let (got, want) = (
                            (k.dot_and_norms)(x, y),
                            (scalar.dot_and_norms)(&x[..n], &y[..n]),
                        );
                        assert!(got.iter().zip(&want).all(|(&g, &w)| close(g, w)), "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn maps_write_only_the_shortest_length() {
        let scalar = table(Backend::Scalar).unwrap();
        for (backend, k) in x86_tables() {
            for n in lengths() {
                // Each of the four slices in turn is the short one.
                for short in 0..4 {
                    let len = |i: usize| if i == short { n } else { n + 3 };
                    let (a, b) = (data(len(0), 3), data(len(1), 4));
                    let mut outs = [vec![SENTINEL; len(2)], vec![SENTINEL; len(3)]];
                    let mut want = [vec![0.0; n], vec![0.0; n]];
                    let [oa, ob] = &mut outs;
                    let [wa, wb] = &mut want;
                    (k.scaled_difference)(&a, &b, 0.75, oa, ob);
                    (scalar.scaled_difference)(&a[..n], &b[..n], 0.75, wa, wb);
                    check_written(backend, "scaled_difference", &outs, &want, n);
                    let [oa, ob] = &mut outs;
                    let [wa, wb] = &mut want;
                    let p = [0.5, -1.5, 2.0, 0.25];
                    (k.linear_combination)(&a, &b, p, oa, ob);
                    (scalar.linear_combination)(&a[..n], &b[..n], p, wa, wb);
                    check_written(backend, "linear_combination", &outs, &want, n);
                }
            }
        }
    }

    fn check_written(
        backend: Backend,
        what: &str,
        outs: &[Vec<f32>; 2],
        want: &[Vec<f32>; 2],
        n: usize,
    ) {
        for (out, want) in outs.iter().zip(want) {
            assert!(
                out[..n].iter().zip(want).all(|(&g, &w)| close(g, w)),
                "{backend:?} {what} n={n}"
            );
            assert!(
                out[n..].iter().all(|&x| x == SENTINEL),
                "{backend:?} {what} wrote past n={n}"
            );
        }
    }

    #[test]
    fn row_kernels_stop_at_the_last_whole_row() {
        let scalar = table(Backend::Scalar).unwrap();
        let dims: &[usize] = if cfg!(miri) {
            &[1, 2, 3, 5, 8, 9, 16, 17]
        } else {
            &[1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 40]
        };
        for (backend, k) in x86_tables() {
            for &dim in dims {
                for rows in [0, 1, 3, 8, 17, 33] {
                    // Buffers with a partial row at the end, `out` and `k` one longer.
                    let n = rows * dim + dim / 2;
                    let (a, b) = (data(n, 5), data(n + dim, 6));
                    let mut out = vec![SENTINEL; rows + 1];
                    let mut want = vec![0.0; rows];
                    (k.squared_euclidean_rows)(&a, &b, dim, &mut out);
                    (scalar.squared_euclidean_rows)(
                        &a[..rows * dim],
                        &b[..rows * dim],
                        dim,
                        &mut want,
                    );
                    let what = format!("{backend:?} dim={dim} rows={rows}");
                    assert!(
                        out[..rows].iter().zip(&want).all(|(&g, &w)| close(g, w)),
                        "{what}"
                    );
                    assert_eq!(out[rows], SENTINEL, "{what}");

                    let coefficients: Vec<f32> =
                        (0..=rows).map(|r| [0.0, 1.5, -0.5][r % 3]).collect();
                    let mut outs = [vec![SENTINEL; n + 1], vec![SENTINEL; n + 2]];
                    let mut want = [vec![0.0; rows * dim], vec![0.0; rows * dim]];
                    let [oa, ob] = &mut outs;
                    (k.scaled_difference_rows)(&a, &b, dim, &coefficients, oa, ob, false);
                    let [wa, wb] = &mut want;
                    let m = rows * dim;
                    (scalar.scaled_difference_rows)(
                        &a[..m],
                        &b[..m],
                        dim,
                        &coefficients,
                        wa,
                        wb,
                        false,
                    );
                    for (out, want) in outs.iter().zip(&want) {
                        assert!(
                            out[..m].iter().zip(want).all(|(&g, &w)| close(g, w)),
                            "{what}"
                        );
                        assert!(
                            out[m..].iter().all(|&x| x == SENTINEL),
                            "{what}: wrote past the rows"
                        );
                    }
                }
            }
        }
    }

    /// Streaming stores write exactly what ordinary ones write, and only inside the
    /// outputs: every dim and row count, each output starting at every float offset of a
    /// 64-byte aligned buffer, at equal offsets (the head is peeled and the rest streams)
    /// and at different ones (only vectors that happen to be aligned stream).
    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri does not implement the non-temporal store intrinsic"
    )]
    fn streaming_row_gradients_equal_ordinary_ones() {
        #[repr(C, align(64))]
        struct Aligned([f32; 2048]);
        for (backend, k) in x86_tables() {
            for dim in [1, 2, 3, 5, 8, 15, 16, 17, 33, 64, 100] {
                for rows in [1, 3, 16, 17, 40] {
                    let n = rows * dim;
                    if n + 16 > 2048 {
                        continue;
                    }
                    let (a, b) = (data(n, 7), data(n, 8));
                    let coefficients: Vec<f32> =
                        (0..rows).map(|r| [0.0, 1.5, -0.5, 3.0][r % 4]).collect();
                    let (mut wa, mut wb) = (vec![0.0; n], vec![0.0; n]);
                    (k.scaled_difference_rows)(&a, &b, dim, &coefficients, &mut wa, &mut wb, false);
                    for (at_a, at_b) in (0..16).flat_map(|o| [(o, o), (o, (o + 5) % 16)]) {
                        let mut out = [Aligned([SENTINEL; 2048]), Aligned([SENTINEL; 2048])];
                        let [oa, ob] = &mut out;
                        let (sa, sb) = (&mut oa.0[at_a..at_a + n], &mut ob.0[at_b..at_b + n]);
                        (k.scaled_difference_rows)(&a, &b, dim, &coefficients, sa, sb, true);
                        (k.fence)();
                        let what = format!("{backend:?} dim={dim} rows={rows} at {at_a}, {at_b}");
                        for ((got, at), want) in [(&out[0].0, at_a), (&out[1].0, at_b)]
                            .into_iter()
                            .zip([&wa, &wb])
                        {
                            let same = got[at..at + n].iter().zip(want.iter());
                            assert!(
                                same.into_iter().all(|(g, w)| g.to_bits() == w.to_bits()),
                                "{what}"
                            );
                            let outside = got[..at].iter().chain(&got[at + n..]);
                            assert!(
                                outside.into_iter().all(|&x| x == SENTINEL),
                                "{what}: outside"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The block path of a forward with gradient over one block: the crate's `Block`, on
    /// the table `k`.
    fn block_path(
        k: &Kernels,
        (a, b, dim, labels): (&[f32], &[f32], usize, &[f32]),
        params: [f32; 4],
    ) -> (f64, Vec<f32>, Vec<f32>) {
        let [positive, negative, margin, two_c] = params;
        let w = Weights {
            positive,
            negative,
            margin,
            two_c,
        };
        let mut block = Block::new();
        let pairs = LabelledPairs { a, b, dim, labels };
        block.compute(k, 0, pairs, w, true).unwrap();
        let (mut ga, mut gb) = (vec![0.0; a.len()], vec![0.0; a.len()]);
        block.write_gradients(k, pairs, w, (&mut ga, &mut gb), false);
        (block.sum, ga, gb)
    }

    /// Where a backend's one-pass kernel takes a block (rows of up to 8 on AVX-512 and of up
    /// to 4 on AVX2, in whole chunks of 64 rows; long rows), it writes the bits of the block
    /// path and sums the losses as it does, streaming or not, at aligned and unaligned
    /// outputs, and writes nothing outside them. Elsewhere it declines, writing nothing.
    /// A row that needs care, in a middle chunk, makes it say so: at distance 0, at a
    /// subnormal or overflowing distance, with a NaN, or with an overflowing coefficient.
    #[test]
    fn one_pass_gives_the_block_paths_bits() {
        let miri = cfg!(miri);
        let dims: Vec<usize> = if miri {
            vec![2, 3, 8, 9, 48]
        } else {
            (1..=17).chain([24, 33, 47, 48, 100, 128, 300]).collect()
        };
        let streams: &[bool] = if miri { &[false] } else { &[false, true] };
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (backend, k) in x86_tables() {
            let one_pass = k.contrastive_one_pass;
            for &dim in &dims {
                let row_counts: &[usize] = match (miri, dim <= 8) {
                    (true, true) => &[64],
                    (true, false) => &[65],
                    (false, true) => &[64, 65, 128, 256],
                    (false, false) => &[1, 5, 63, 64, 65, 130],
                };
                let takes = |rows: usize, stream: bool| match backend {
                    Backend::Avx512 if dim <= 8 => rows.is_multiple_of(EPILOGUE_ROWS),
                    Backend::Avx512 => dim >= 48 || (stream && dim >= 24),
                    _ if dim <= 4 => rows.is_multiple_of(EPILOGUE_ROWS),
                    _ => dim >= 48,
                };
                // Rows of uniform [-0.5, 0.5) components are about √(dim / 6) apart: about
                // half the dissimilar rows are inside the margin.
                let params = [1.0, 0.75, (dim as f32 / 6.0).sqrt(), 0.02];
                for &rows in row_counts {
                    let n = rows * dim;
                    let (a, b) = (data(n, 11), data(n, 0x5bd1_e995));
                    let labels: Vec<f32> = (0..rows)
                        .map(|r| [1.0, 0.0, 0.25, 0.0, 1.0][r % 5])
                        .collect();
                    let (want_sum, wa, wb) = block_path(k, (&a, &b, dim, &labels), params);
                    for (&stream, at) in streams.iter().flat_map(|s| [(s, 0), (s, 3)]) {
                        let what = format!("{backend:?} dim={dim} rows={rows} {stream} at {at}");
                        let takes_dim = (k.one_pass_takes)(dim, stream);
                        assert_eq!(takes_dim, takes(EPILOGUE_ROWS, stream), "{what}");
                        // Outputs starting `at` floats past a 64-byte boundary.
                        let mut buffers = [vec![SENTINEL; n + 32], vec![SENTINEL; n + 32]];
                        let starts = buffers
                            .each_ref()
                            .map(|v| at + v.as_ptr().addr().wrapping_neg() % 64 / size_of::<f32>());
                        let [oa, ob] = &mut buffers;
                        let (ga, gb) = (
                            &mut oa[starts[0]..starts[0] + n],
                            &mut ob[starts[1]..starts[1] + n],
                        );
                        let result = one_pass(&a, &b, dim, &labels, params, ga, gb, stream);
                        if stream {
                            (k.fence)();
                        }
                        let written = |i: usize| &buffers[i][starts[i]..starts[i] + n];
                        if takes(rows, stream) {
                            assert_eq!(result, OnePass::Done(want_sum), "{what}");
                            assert_eq!(bits(written(0)), bits(&wa), "{what}: grad a");
                            assert_eq!(bits(written(1)), bits(&wb), "{what}: grad b");
                        } else {
                            assert_eq!(result, OnePass::Declined, "{what}");
                            assert!(written(0).iter().all(|&v| v == SENTINEL), "{what}");
                        }
                        for (buffer, start) in buffers.iter().zip(starts) {
                            let outside = buffer[..start].iter().chain(&buffer[start + n..]);
                            assert!(outside.into_iter().all(|&v| v == SENTINEL), "{what}");
                        }
                    }
                    let (mut ga, mut gb) = (vec![SENTINEL; n], vec![SENTINEL; n]);
                    // Gradients of another length: declined, nothing written.
                    let (short_a, short_b) = (&mut ga[..n - 1], &mut gb[..n - 1]);
                    let result = one_pass(&a, &b, dim, &labels, params, short_a, short_b, false);
                    assert_eq!(result, OnePass::Declined, "{backend:?} dim={dim}: short");
                    assert!(ga.iter().all(|&v| v == SENTINEL), "{backend:?} dim={dim}");
                    // Rows that need care (the caller then takes the block path), in a middle
                    // chunk where there is one.
                    let want = if takes(rows, false) {
                        OnePass::NeedsCare
                    } else {
                        OnePass::Declined
                    };
                    let row = (rows / 2).min(rows - 1);
                    type Change = fn(&mut [f32], &mut [f32]);
                    let cases: [(&str, Change); 4] = [
                        ("at distance 0", |x, y| y.copy_from_slice(x)),
                        ("subnormal", |x, y| {
                            x.fill(0.0);
                            y.fill(1e-22);
                        }),
                        ("overflowing", |x, y| {
                            x.fill(3e19);
                            y.fill(-3e19);
                        }),
                        ("NaN", |x, _| x[0] = f32::NAN),
                    ];
                    for (case, change) in cases {
                        let (mut a, mut b) = (a.clone(), b.clone());
                        let range = row * dim..(row + 1) * dim;
                        change(&mut a[range.clone()], &mut b[range]);
                        let (ga, gb) = (&mut ga[..], &mut gb[..]);
                        let result = one_pass(&a, &b, dim, &labels, params, ga, gb, false);
                        assert_eq!(result, want, "{backend:?} dim={dim} rows={rows}: {case}");
                    }
                    // 2c·w⁺ beyond f32::MAX: every similar row's coefficient overflows.
                    let huge = [3e38, 0.75, params[2], 2.0];
                    let result = one_pass(&a, &b, dim, &labels, huge, &mut ga, &mut gb, false);
                    assert_eq!(
                        result, want,
                        "{backend:?} dim={dim}: overflowing coefficient"
                    );
                }
            }
        }
    }

    /// Where a backend's one-pass forward takes a block (rows of up to 4 on AVX2 and of up
    /// to 8 on AVX-512 in whole chunks of 64 rows; longer rows in any number, a short last
    /// group of rows and a short last chunk included), it sums the losses
    /// with the bits of the block path's forward; it declines other blocks, and says
    /// `NeedsCare` for a row at distance 0, a NaN, or a label outside `[0, 1]` (but not
    /// for −0.0, which is in it).
    #[test]
    fn forward_one_pass_gives_the_block_paths_bits() {
        // Under Miri, 9 (a masked load a row) is trust_miri_paths' (17 rows).
        let dims: &[usize] = if cfg!(miri) {
            &[2, 5, 16, 17]
        } else {
            &[1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 24, 33, 100, 300]
        };
        let row_counts: &[usize] = if cfg!(miri) {
            &[17, 64]
        } else {
            &[1, 7, 17, 63, 64, 65, 128, 130, 256]
        };
        for (backend, k) in x86_tables() {
            for &dim in dims {
                for &rows in row_counts {
                    let n = rows * dim;
                    let (a, b) = (data(n, 21), data(n, 0x2545_f491));
                    let labels: Vec<f32> = (0..rows)
                        .map(|r| [1.0, 0.0, 0.25, -0.0, 1.0][r % 5])
                        .collect();
                    // A zero weight, either one, where the one-pass forward multiplies
                    // by it and the epilogue selects 0.
                    let weights = [(0.7, 1.3), (0.0, 1.3), (0.7, 0.0)][rows % 3];
                    let params = [weights.0, weights.1, (dim as f32 / 6.0).sqrt(), 2.0];
                    let [positive, negative, margin, two_c] = params;
                    let w = Weights {
                        positive,
                        negative,
                        margin,
                        two_c,
                    };
                    let mut block = Block::new();
                    let pairs = LabelledPairs {
                        a: &a,
                        b: &b,
                        dim,
                        labels: &labels,
                    };
                    block.compute(k, 0, pairs, w, false).unwrap();
                    let what = format!("{backend:?} dim={dim} rows={rows}");
                    let result = (k.contrastive_forward)(&a, &b, dim, &labels, params, rows, 0.0);
                    // Tiny rows in whole chunks of 64, longer rows in any number.
                    let tiny = match backend {
                        Backend::Avx512 => dim <= 8,
                        _ => dim <= 4,
                    };
                    let takes = !tiny || rows.is_multiple_of(EPILOGUE_ROWS);
                    if result == OnePass::Declined {
                        assert!(!takes, "{what}");
                        continue;
                    }
                    assert!(takes, "{what}");
                    assert_eq!(result, OnePass::Done(block.sum), "{what}");
                    // In blocks of 64 rows (and of 5, for long rows) after a running total:
                    // each block's sum as the block path's, added in order.
                    let total = 0.1 + f64::from(f32::EPSILON);
                    for block_rows in [EPILOGUE_ROWS, 5] {
                        let mut want = total;
                        for first in (0..rows).step_by(block_rows) {
                            let r = first..rows.min(first + block_rows);
                            let pairs = LabelledPairs {
                                a: &a[r.start * dim..r.end * dim],
                                b: &b[r.start * dim..r.end * dim],
                                dim,
                                labels: &labels[r],
                            };
                            block.compute(k, first, pairs, w, false).unwrap();
                            want += block.sum;
                        }
                        let got = (k.contrastive_forward)(
                            &a, &b, dim, &labels, params, block_rows, total,
                        );
                        if got == OnePass::Declined {
                            assert!(tiny && block_rows != EPILOGUE_ROWS, "{what}");
                            continue;
                        }
                        let what = format!("{what} in blocks of {block_rows}");
                        assert_eq!(got, OnePass::Done(want), "{what}");
                    }
                    let row = rows / 2;
                    let mut same = b.clone();
                    same[row * dim..(row + 1) * dim]
                        .copy_from_slice(&a[row * dim..(row + 1) * dim]);
                    let mut nan = a.clone();
                    nan[row * dim] = f32::NAN;
                    let result =
                        (k.contrastive_forward)(&a, &same, dim, &labels, params, rows, 0.0);
                    assert_eq!(result, OnePass::NeedsCare, "{what}: distance 0");
                    let result = (k.contrastive_forward)(&nan, &b, dim, &labels, params, rows, 0.0);
                    assert_eq!(result, OnePass::NeedsCare, "{what}: NaN");
                    for bad in [1.5, -0.25, f32::NAN, f32::INFINITY, -1e-45] {
                        let mut ys = labels.clone();
                        ys[row] = bad;
                        let result = (k.contrastive_forward)(&a, &b, dim, &ys, params, rows, 0.0);
                        assert_eq!(result, OnePass::NeedsCare, "{what}: label {bad}");
                    }
                }
            }
        }
    }
}
