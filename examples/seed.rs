//! The example of the numpy function this crate was specified from (`contrastive::seed`),
//! `np.random.seed(0)`: ten-dimensional inputs, ten labels, margin 0.5. Prints our loss
//! next to the float64 reference, then a small batch with its gradients.
//!
//!     cargo run --release --example seed

use contrastive::{Backend, ContrastiveLoss, seed};

/// `np.random.randn(10)` twice after `np.random.seed(0)` (golden case
/// `seed/np_random_seed_0`), rounded to f32.
const INPUT_1: [f32; 10] = [
    1.764_052_3,
    0.400_157_2,
    0.978_738,
    2.240_893_1,
    1.867_558,
    -0.977_277_9,
    0.950_088_4,
    -0.151_357_2,
    -0.103_218_85,
    0.410_598_5,
];
const INPUT_2: [f32; 10] = [
    0.144_043_57,
    1.454_273_5,
    0.761_037_7,
    0.121_675_02,
    0.443_863_24,
    0.333_674_34,
    1.494_079_1,
    -0.205_158_26,
    0.313_067_7,
    -0.854_095_76,
];
/// `np.random.randint(0, 2, 10)`.
const LABELS: [f32; 10] = [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
/// The seed's loss computed in float64 by the independent reference.
const REFERENCE: f64 = 3.522_784_391_858_832_6;

fn main() -> Result<(), contrastive::Error> {
    println!("contrastive, backend {:?}", Backend::best());
    println!();
    println!("The seed function's example (np.random.seed(0), margin 0.5):");
    let (mut grad_1, mut grad_2) = ([0.0; 10], [0.0; 10]);
    let loss = seed::contrastive_loss_with_grad(
        &INPUT_1,
        &INPUT_2,
        &LABELS,
        0.5,
        &mut grad_1,
        &mut grad_2,
    )?;
    let relative = (f64::from(loss) - REFERENCE).abs() / REFERENCE;
    println!("  ours (f32)            {loss:.9}");
    println!("  reference (float64)   {REFERENCE:.9}");
    println!(
        "  relative difference   {relative:.1e} (f32 epsilon is {:.1e})",
        f32::EPSILON
    );
    println!("  d loss / d input_1    {:?}", rounded(&grad_1));
    println!();

    println!("A batch of three pairs (dim 4), Hadsell's loss with margin 1, mean:");
    let a = [0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let b = [
        0.1, 0.25, 0.3, 0.35, 0.3, 0.4, 0.0, 0.0, -1.0, 1.0, 1.0, 1.0,
    ];
    let labels = [1.0, 0.0, 0.0]; // similar, close dissimilar, far dissimilar
    let hadsell = ContrastiveLoss::new(1.0);
    let (mut grad_a, mut grad_b) = ([0.0; 12], [0.0; 12]);
    let mean = hadsell.batch_with_grad(&a, &b, 4, &labels, &mut grad_a, &mut grad_b)?;
    let mut per_pair = [0.0; 3];
    hadsell.batch_per_pair(&a, &b, 4, &labels, &mut per_pair)?;
    println!("  per pair              {per_pair:?}");
    println!("  mean                  {mean}");
    for (row, g) in grad_a.chunks(4).enumerate() {
        println!("  d mean / d a[{row}]       {:?}", rounded(g));
    }
    Ok(())
}

fn rounded(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| (v * 1e6).round() / 1e6).collect()
}
