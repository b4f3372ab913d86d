//! The `rayon` feature's `_par` in-batch losses against the serial calls, as ratios measured
//! in one run (interleaved rounds: each round runs every kernel in turn; a ratio is given
//! from each kernel's best round and as the median of the per-round ratios). It asserts
//! nothing.
//!
//! `cargo bench -p contrastive-benches --bench rayon` (a minute); `-- ROUNDS` changes the
//! number of rounds (default 7).
//!
//! Rows (N = 4096, d = 128, 16 classes; the parallel calls in a rayon pool of 2 threads;
//! the serial calls on full scratch, the best backend):
//! - `in_batch/<loss>/forward`: the serial call's time over the parallel one's.
//! - `in_batch/<loss>/grad`: the same with the gradient.
//! - `cross_batch/<loss>/forward` and `/grad` at N = M = 2048.
//! - `softmax/<loss>/forward` and `/grad`: CLIP (scale 100, both directions), MNRL
//!   (scale 20, one direction; 4096 query/key pairs), SupCon and NT-Xent (PML presets).
//!   `-- softmax` runs only these.
//!
//! Each row also gives `cpu par/serial`: the CPU time of all threads of the parallel
//! calls over that of the serial ones (Linux). It is the work the split adds (1.00 for
//! none), which a machine busy with other processes does not hide: with two free cores
//! the ratio can be at most about `2 / (cpu par/serial)`. `cores used` is CPU time over
//! wall time: about 1 and 2 on a quiet machine; less where other work took the cores.
//!
//! `-- threshold` instead times the serial and the parallel forward for small batches
//! (d = 64), to place the serial fallback. Build it with
//! `CONTRASTIVE_MIN_PARALLEL_WORK=0` in the environment, or the parallel call of a small
//! batch is the serial one. `-- softmax-threshold` does the same for the softmax losses
//! (SupCon), with `CONTRASTIVE_SOFTMAX_MIN_PARALLEL_WORK=0`.

use contrastive::{ContrastiveLoss, InfoNceLoss, NtXentLoss, SupConLoss};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 4096;
const DIM: usize = 128;
const CLASSES: u32 = 16;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn classes(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 7 + 3) % CLASSES).collect()
}

fn seconds(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// The CPU time of every thread of this process so far, in seconds (Linux: the sum of
/// `/proc/self/task/*/schedstat`), or `None` where that is not readable. On a busy
/// machine wall-clock ratios say little; CPU time says how much work a call did.
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// A named kernel of a round.
type Kernel<'a> = (String, Box<dyn FnMut() + 'a>);

/// `times[k][r]`: kernel `k` in round `r`, run `reps` times in its turn after one
/// untimed run, the mean timed; and `cpu[k]`, its total CPU time over all rounds (NaN if
/// unknown).
fn rounds(rounds: usize, reps: usize, kernels: &mut [Kernel<'_>]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut times = vec![Vec::new(); kernels.len()];
    let mut cpu = vec![0.0; kernels.len()];
    for r in 0..rounds {
        for t in 0..kernels.len() {
            let k = (t + r) % kernels.len();
            (kernels[k].1)();
            let f = &mut kernels[k].1;
            let before = cpu_seconds();
            times[k].push(seconds(&mut || (0..reps).for_each(|_| f())) / reps as f64);
            cpu[k] += match (before, cpu_seconds()) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            };
        }
    }
    (times, cpu)
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// `serial`'s time over `parallel`'s: from the best rounds, and the median of the
/// per-round ratios.
fn ratio(parallel: &[f64], serial: &[f64]) -> (f64, f64) {
    let mut per: Vec<f64> = parallel.iter().zip(serial).map(|(p, s)| s / p).collect();
    per.sort_by(f64::total_cmp);
    (best(serial) / best(parallel), per[per.len() / 2])
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.iter().any(|a| a == "threshold") {
        return threshold();
    }
    if args.iter().any(|a| a == "softmax-threshold") {
        return softmax_threshold();
    }
    let rounds_n = args.iter().find_map(|a| a.parse().ok()).unwrap_or(7);
    if args.iter().any(|a| a == "softmax") {
        return softmax(rounds_n);
    }
    let two = pool(2);
    let spread = (2.0 * DIM as f32 / 3.0).sqrt();
    let losses = [
        ("hadsell", ContrastiveLoss::new(spread)),
        ("pml", ContrastiveLoss::pml()),
    ];
    let x = data(N * DIM, 1);
    let cx = classes(N);
    let half = N / 2;
    let (xa, xb) = x.split_at(half * DIM);
    let (ca, cb) = cx.split_at(half);
    println!(
        "rayon: serial over 2 threads, N = {N}, d = {DIM} (cross: N = M = {half}), {rounds_n} rounds"
    );
    for (name, loss) in losses {
        let mut scratch = vec![0.0f32; loss.scratch_len(N, DIM)];
        let mut scratch2 = scratch.clone();
        let mut g = vec![0.0f32; x.len()];
        let mut g2 = g.clone();
        let mut cs = vec![0.0f32; loss.scratch_len(N, DIM)];
        let mut cs2 = cs.clone();
        let (mut gxa, mut gyb) = (vec![0.0f32; xa.len()], vec![0.0f32; xb.len()]);
        let (mut gxa2, mut gyb2) = (gxa.clone(), gyb.clone());
        let two = &two;
        let (x, cx) = (&x, &cx);
        let mut kernels: Vec<Kernel<'_>> = vec![
            (
                "in_batch/forward/serial".into(),
                Box::new(move || {
                    black_box(loss.in_batch(x, DIM, cx, &mut scratch).unwrap());
                }),
            ),
            (
                "in_batch/forward/par".into(),
                Box::new(move || {
                    two.install(|| black_box(loss.in_batch_par(x, DIM, cx).unwrap()));
                }),
            ),
            (
                "in_batch/grad/serial".into(),
                Box::new(move || {
                    black_box(
                        loss.in_batch_with_grad(x, DIM, cx, &mut g, &mut scratch2)
                            .unwrap(),
                    );
                }),
            ),
            (
                "in_batch/grad/par".into(),
                Box::new(move || {
                    two.install(|| {
                        black_box(loss.in_batch_with_grad_par(x, DIM, cx, &mut g2).unwrap())
                    });
                }),
            ),
            (
                "cross_batch/forward/serial".into(),
                Box::new(move || {
                    black_box(loss.cross_batch(xa, xb, DIM, ca, cb, &mut cs).unwrap());
                }),
            ),
            (
                "cross_batch/forward/par".into(),
                Box::new(move || {
                    two.install(|| black_box(loss.cross_batch_par(xa, xb, DIM, ca, cb).unwrap()));
                }),
            ),
            (
                "cross_batch/grad/serial".into(),
                Box::new(move || {
                    black_box(
                        loss.cross_batch_with_grad(
                            xa, xb, DIM, ca, cb, &mut gxa, &mut gyb, &mut cs2,
                        )
                        .unwrap(),
                    );
                }),
            ),
            (
                "cross_batch/grad/par".into(),
                Box::new(move || {
                    two.install(|| {
                        black_box(
                            loss.cross_batch_with_grad_par(
                                xa, xb, DIM, ca, cb, &mut gxa2, &mut gyb2,
                            )
                            .unwrap(),
                        )
                    });
                }),
            ),
        ];
        let (times, cpu) = rounds(rounds_n, 1, &mut kernels);
        report(name, &kernels, &times, &cpu);
    }
    softmax(rounds_n);
}

/// One line per serial/parallel pair of `kernels` (in that order): the times and ratios.
fn report(name: &str, kernels: &[Kernel<'_>], times: &[Vec<f64>], cpu: &[f64]) {
    for pair in (0..kernels.len()).step_by(2) {
        let row = kernels[pair].0.trim_end_matches("/serial");
        let (b, m) = ratio(&times[pair + 1], &times[pair]);
        let wall = |k: usize| times[k].iter().sum::<f64>();
        println!(
            "{:<30} serial {:>7.2} ms  par {:>7.2} ms  ratio best {b:.2}x  median {m:.2}x  \
             cpu par/serial {:.3}  cores used: serial {:.2}, par {:.2}",
            row.replacen('/', &format!("/{name}/"), 1),
            best(&times[pair]) * 1e3,
            best(&times[pair + 1]) * 1e3,
            cpu[pair + 1] / cpu[pair],
            cpu[pair] / wall(pair),
            cpu[pair + 1] / wall(pair + 1),
        );
    }
}

/// The softmax losses at N = 4096, d = 128 (InfoNCE: 4096 query/key pairs), serial on
/// full scratch against 2 threads: CLIP (scale 100, symmetric), MNRL (scale 20, one
/// direction), SupCon (PML), NT-Xent (PML), forward and forward with the gradient.
fn softmax(rounds_n: usize) {
    let two = &pool(2);
    let x = &data(N * DIM, 3);
    let y = &data(N * DIM, 4);
    let cx = &classes(N);
    println!("rayon softmax: serial over 2 threads, N = {N}, d = {DIM}, {rounds_n} rounds");
    for (name, loss) in [
        ("clip", InfoNceLoss::clip(100.0)),
        ("mnrl", InfoNceLoss::mnrl()),
    ] {
        let mut s = vec![0.0f32; loss.scratch_len(N, DIM)];
        let mut s2 = s.clone();
        let (mut gx, mut gy) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        let (mut gx2, mut gy2) = (gx.clone(), gy.clone());
        let mut kernels: Vec<Kernel<'_>> = vec![
            (
                "softmax/forward/serial".into(),
                Box::new(move || {
                    black_box(loss.forward(x, y, DIM, &mut s).unwrap());
                }),
            ),
            (
                "softmax/forward/par".into(),
                Box::new(move || {
                    two.install(|| black_box(loss.forward_par(x, y, DIM).unwrap()));
                }),
            ),
            (
                "softmax/grad/serial".into(),
                Box::new(move || {
                    black_box(
                        loss.forward_with_grad(x, y, DIM, &mut gx, &mut gy, &mut s2)
                            .unwrap(),
                    );
                }),
            ),
            (
                "softmax/grad/par".into(),
                Box::new(move || {
                    two.install(|| {
                        black_box(
                            loss.forward_with_grad_par(x, y, DIM, &mut gx2, &mut gy2)
                                .unwrap(),
                        )
                    });
                }),
            ),
        ];
        let (times, cpu) = rounds(rounds_n, 1, &mut kernels);
        report(name, &kernels, &times, &cpu);
    }
    macro_rules! labelled {
        ($name:expr, $loss:expr) => {{
            let loss = $loss;
            let mut s = vec![0.0f32; loss.scratch_len(N, DIM)];
            let mut s2 = s.clone();
            let mut g = vec![0.0f32; x.len()];
            let mut g2 = g.clone();
            let mut kernels: Vec<Kernel<'_>> = vec![
                (
                    "softmax/forward/serial".into(),
                    Box::new(move || {
                        black_box(loss.forward(x, DIM, cx, &mut s).unwrap());
                    }),
                ),
                (
                    "softmax/forward/par".into(),
                    Box::new(move || {
                        two.install(|| black_box(loss.forward_par(x, DIM, cx).unwrap()));
                    }),
                ),
                (
                    "softmax/grad/serial".into(),
                    Box::new(move || {
                        black_box(loss.forward_with_grad(x, DIM, cx, &mut g, &mut s2).unwrap());
                    }),
                ),
                (
                    "softmax/grad/par".into(),
                    Box::new(move || {
                        two.install(|| {
                            black_box(loss.forward_with_grad_par(x, DIM, cx, &mut g2).unwrap())
                        });
                    }),
                ),
            ];
            let (times, cpu) = rounds(rounds_n, 1, &mut kernels);
            report($name, &kernels, &times, &cpu);
        }};
    }
    labelled!("supcon", SupConLoss::pml());
    labelled!("ntxent", NtXentLoss::pml());
}

/// Serial against parallel softmax forwards (SupCon) of small batches: where the split
/// starts to pay.
fn softmax_threshold() {
    let loss = SupConLoss::pml();
    threshold_sweep(
        "rayon softmax threshold: SupCon forward",
        &[16, 32, 64, 96, 128, 180, 256, 384, 512],
        ("N²d", |n| n * n),
        |n, dim| loss.scratch_len(n, dim),
        |x, dim, c, scratch| {
            black_box(loss.forward(x, dim, c, scratch).unwrap());
        },
        |x, dim, c| {
            black_box(loss.forward_par(x, dim, c).unwrap());
        },
    );
}

/// Serial against parallel forwards of small batches: where the split starts to pay.
fn threshold() {
    let loss = ContrastiveLoss::new(1.0);
    threshold_sweep(
        "rayon threshold: in_batch forward",
        &[16, 32, 48, 64, 96, 128, 180, 256, 384, 512],
        ("N(N-1)d", |n| n * (n - 1)),
        |n, dim| loss.scratch_len(n, dim),
        |x, dim, c, scratch| {
            black_box(loss.in_batch(x, dim, c, scratch).unwrap());
        },
        |x, dim, c| {
            black_box(loss.in_batch_par(x, dim, c).unwrap());
        },
    );
}

/// The serial call (`serial(x, dim, classes, scratch)`) against the parallel one in a pool
/// of 2 threads, at d = 64 and each batch size of `sizes`; `work` names the pairs a call
/// visits and counts them from `N`.
fn threshold_sweep(
    title: &str,
    sizes: &[usize],
    work: (&str, fn(usize) -> usize),
    scratch_len: impl Fn(usize, usize) -> usize,
    serial: impl Fn(&[f32], usize, &[u32], &mut [f32]),
    par: impl Fn(&[f32], usize, &[u32]) + Sync,
) {
    let two = pool(2);
    let dim = 64;
    println!("{title}, d = {dim}, 2 threads (serial over par)");
    for &n in sizes {
        let x = data(n * dim, 2);
        let c = classes(n);
        let mut scratch = vec![0.0f32; scratch_len(n, dim)];
        let (xr, cr, two, serial, par) = (&x, &c, &two, &serial, &par);
        let mut kernels: Vec<Kernel<'_>> = vec![
            (
                "serial".into(),
                Box::new(move || serial(xr, dim, cr, &mut scratch)),
            ),
            (
                "par".into(),
                Box::new(move || two.install(|| par(xr, dim, cr))),
            ),
        ];
        let reps = (50_000_000 / (n * n * dim)).clamp(5, 20_000);
        let (times, cpu) = rounds(9, reps, &mut kernels);
        let (b, m) = ratio(&times[1], &times[0]);
        println!(
            "N = {n:>4}: work {} = {:>9}  serial {:>9.2} us  par {:>9.2} us  \
             best {b:.2}x  median {m:.2}x  cpu par/serial {:.2}",
            work.0,
            (work.1)(n) * dim,
            best(&times[0]) * 1e6,
            best(&times[1]) * 1e6,
            cpu[1] / cpu[0],
        );
    }
}
