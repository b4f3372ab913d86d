//! The data loader: the committed file has the UCI digits as scikit-learn ships them.

use digits::Digits;

#[test]
fn loads_all_1797_images_of_10_classes_with_pixels_in_0_to_16() {
    let d = Digits::load().unwrap();
    assert_eq!(d.len(), 1797);
    assert_eq!(d.pixels.len(), 1797 * 64);
    let mut counts = [0usize; 10];
    for &c in &d.classes {
        counts[c as usize] += 1;
    }
    // scikit-learn's `load_digits()` class counts.
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert_eq!(d.pixels.iter().copied().min(), Some(0));
    assert_eq!(d.pixels.iter().copied().max(), Some(16));
    // The first image is a 0 (scikit-learn's `digits.images[0]`, first two rows).
    assert_eq!(d.classes[0], 0);
    assert_eq!(
        &d.pixels[..16],
        &[0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]
    );
    let f: Vec<f32> = d.features(0).collect();
    assert_eq!(f[2], 5.0 / 16.0);
}

#[test]
fn bad_lines_are_errors_not_panics() {
    let row = |pixel: &str, class: &str| {
        let mut fields = vec!["0"; 63];
        fields.push(pixel);
        fields.push(class);
        fields.join(",")
    };
    assert!(Digits::parse(&row("16", "9")).is_ok());
    assert!(Digits::parse(&row("17", "9")).is_err());
    assert!(Digits::parse(&row("16", "10")).is_err());
    assert!(Digits::parse(&row("-1", "3")).is_err());
    assert!(Digits::parse(&row("x", "3")).is_err());
    assert!(Digits::parse("1,2,3").is_err());
    assert_eq!(Digits::parse("").unwrap().len(), 0);
}

#[test]
fn select_and_split_keep_classes_and_sizes() {
    let d = Digits::load().unwrap();
    let seen = d.select(|c| c < 5);
    assert_eq!(seen.len(), 178 + 182 + 177 + 183 + 181);
    assert!(seen.classes.iter().all(|&c| c < 5));
    let (a, b) = seen.split(0.2, &mut digits::net::Rng::new(1));
    assert_eq!(a.len() + b.len(), seen.len());
    assert_eq!(b.groups().len(), 5);
    for g in b.groups() {
        assert!((35..=37).contains(&g.len()), "{}", g.len());
    }
    // Every image of the split is one of the originals, with its class.
    let originals: std::collections::HashSet<(&[u8], u8)> = (0..seen.len())
        .map(|i| (&seen.pixels[i * 64..(i + 1) * 64], seen.classes[i]))
        .collect();
    for part in [&a, &b] {
        for i in 0..part.len() {
            assert!(originals.contains(&(&part.pixels[i * 64..(i + 1) * 64], part.classes[i])));
        }
    }
}

#[test]
fn shift_moves_pixels_and_fills_zeros() {
    let pixels: Vec<u8> = (0..64).map(|i| (i % 17) as u8).collect();
    let mut out = [0.0f32; 64];
    digits::shift(&pixels, 1, 0, &mut out);
    for r in 0..8 {
        assert_eq!(out[r * 8], 0.0);
        for c in 1..8 {
            assert_eq!(out[r * 8 + c], f32::from(pixels[r * 8 + c - 1]) / 16.0);
        }
    }
    digits::shift(&pixels, 0, -1, &mut out);
    for c in 0..8 {
        assert_eq!(out[7 * 8 + c], 0.0);
        assert_eq!(out[c], f32::from(pixels[8 + c]) / 16.0);
    }
}
