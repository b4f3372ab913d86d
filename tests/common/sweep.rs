//! Where the backend tests look: the batch shapes and the misaligned slices every sweep
//! shares. Each test file decides what it checks at a point; this decides the points.

/// Start offsets (in floats) of the misaligned slices: every residue of a 32-byte vector.
pub const OFFSETS: usize = 8;

/// Whether `SWEEP_FULL` (any value) asks for every point rather than a stride.
pub fn full() -> bool {
    std::env::var_os("SWEEP_FULL").is_some()
}

/// Batch shapes `(N, d)`: N over 1..=70 (every N with `SWEEP_FULL`, a stride through it
/// otherwise, so that a debug build stays within seconds) against odd d from 1 to 129,
/// cycled so that each N meets another d; and the corners (2, 1), (70, 1), (70, 129) and
/// an even d past the widest vector, (8, 130).
pub fn batch_shapes() -> Vec<(usize, usize)> {
    const DS: [usize; 15] = [1, 3, 5, 7, 9, 15, 17, 31, 33, 47, 63, 65, 97, 127, 129];
    let ns: Vec<usize> = if full() {
        (1..=70).collect()
    } else {
        vec![1, 2, 3, 4, 5, 6, 7, 9, 13, 17, 24, 31, 33, 47, 64, 65, 70]
    };
    ns.iter()
        .zip(DS.iter().cycle().skip(3))
        .map(|(&n, &d)| (n, d))
        .chain([(2, 1), (70, 1), (70, 129), (8, 130)])
        .collect()
}

/// `values` placed `offset` floats into a fresh buffer, NaN before them (which no kernel
/// may read): `&buf[offset..]` is the data, misaligned for SIMD loads unless `offset` is a
/// multiple of the vector width.
pub fn placed(values: &[f32], offset: usize) -> Vec<f32> {
    let mut buf = vec![f32::NAN; offset];
    buf.extend_from_slice(values);
    buf
}
