//! In-batch triplet losses, forward and forward with gradient, at N = 1024, d = 128 (one
//! batch of 512 KiB, in L2): batch-hard (sentence-transformers, Euclidean and cosine) and
//! batch-all (hinge on raw rows, PML's normalised rows, and softplus), on the best backend,
//! in ONE criterion group with the in-batch contrastive loss on the same batch
//! (`contrastive/...`, `ContrastiveLoss::new(1.0)`: Euclidean, mean), the baseline their
//! ratios are taken against. 64 classes of 16 rows.
//!
//! `cargo bench -p contrastive-benches --bench triplet`; results land in
//! `target/criterion/triplet_inbatch/<name>/`.
//!
//! `cargo bench -p contrastive-benches --bench triplet -- ratios [ROUNDS]` runs no criterion
//! benchmark: it times the forward with gradient of each loss and of the contrastive loss
//! interleaved (each round runs every kernel in turn, twice, the second run timed; default
//! 21 rounds; timed in thread CPU time where the system gives it, so that a long kernel is not
//! charged for the time other tenants held the core) and prints `loss/contrastive` from the best round of each and as the median
//! of the per-round ratios (the machine is shared: a drift between two criterion
//! benchmarks seconds apart lands in their ratio, here it has one round to do so).

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;
    use std::time::Instant;

    use contrastive::{BatchAllTripletLoss, BatchHardTripletLoss, ContrastiveLoss, Distance};
    use criterion::Criterion;

    use crate::common::AlignedBuf;

    const N: usize = 1024;
    const DIM: usize = 128;
    const CLASSES: u32 = 64;

    /// The baseline: the in-batch contrastive loss (Euclidean, mean).
    fn baseline() -> ContrastiveLoss {
        ContrastiveLoss::new(1.0)
    }

    fn hard() -> [(&'static str, BatchHardTripletLoss); 2] {
        [
            ("batch_hard", BatchHardTripletLoss::new(1.0)),
            (
                "batch_hard_cosine",
                BatchHardTripletLoss::new(0.2).with_distance(Distance::Cosine),
            ),
        ]
    }

    fn all() -> [(&'static str, BatchAllTripletLoss); 3] {
        [
            ("batch_all", BatchAllTripletLoss::new(0.5)),
            ("batch_all_pml", BatchAllTripletLoss::pml()),
            (
                "batch_all_smooth",
                BatchAllTripletLoss::new(0.5).with_smooth(true),
            ),
        ]
    }

    fn inputs() -> (AlignedBuf, Vec<u32>) {
        let x = AlignedBuf::random(N * DIM, 0x7219);
        let classes: Vec<u32> = (0..N as u32).map(|i| i % CLASSES).collect();
        (x, classes)
    }

    pub fn triplet(c: &mut Criterion) {
        let (x, classes) = inputs();
        let x = x.as_slice();
        let mut grad = AlignedBuf::zeroed(N * DIM);
        let grad = grad.as_mut_slice();
        let mut group = c.benchmark_group("triplet_inbatch");
        group.sample_size(10);
        {
            let loss = baseline();
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            group.bench_function("contrastive/forward", |b| {
                b.iter(|| loss.in_batch(black_box(x), DIM, &classes, &mut scratch))
            });
            group.bench_function("contrastive/with_grad", |b| {
                b.iter(|| {
                    loss.in_batch_with_grad(
                        black_box(x),
                        DIM,
                        &classes,
                        black_box(&mut *grad),
                        &mut scratch,
                    )
                })
            });
        }
        for (name, loss) in hard() {
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            group.bench_function(format!("{name}/forward"), |b| {
                b.iter(|| loss.batch(black_box(x), DIM, &classes, &mut scratch))
            });
            group.bench_function(format!("{name}/with_grad"), |b| {
                b.iter(|| {
                    loss.batch_with_grad(
                        black_box(x),
                        DIM,
                        &classes,
                        black_box(&mut *grad),
                        &mut scratch,
                    )
                })
            });
        }
        for (name, loss) in all() {
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            group.bench_function(format!("{name}/forward"), |b| {
                b.iter(|| loss.batch(black_box(x), DIM, &classes, &mut scratch))
            });
            group.bench_function(format!("{name}/with_grad"), |b| {
                b.iter(|| {
                    loss.batch_with_grad(
                        black_box(x),
                        DIM,
                        &classes,
                        black_box(&mut *grad),
                        &mut scratch,
                    )
                })
            });
        }
        group.finish();
    }

    /// Seconds taken by `f`: wall time, or with `cpu` the time this thread spent on a CPU
    /// (`CLOCK_THREAD_CPUTIME_ID`), which other tenants of a shared machine do not
    /// inflate by preempting it (they still share its caches).
    fn seconds(cpu: bool, f: impl FnOnce()) -> f64 {
        if cpu {
            let start = cpu_seconds().unwrap_or(0.0);
            f();
            return cpu_seconds().unwrap_or(0.0) - start;
        }
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    }

    /// The CPU time of this thread, in seconds, if the system gives it.
    fn cpu_seconds() -> Option<f64> {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable `timespec` for the duration of the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        (rc == 0).then_some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
    }

    /// One loss's forward with gradient, writing into the gradient it is given.
    type Kernel<'a> = Box<dyn FnMut(&mut [f32]) + 'a>;

    /// `-- ratios [ROUNDS]`: the forward with gradient of every loss against the contrastive
    /// loss's, interleaved (see the module's documentation).
    pub fn ratios() {
        let args: Vec<String> = std::env::args().collect();
        let Some(at) = args.iter().position(|a| a == "ratios") else {
            return;
        };
        let rounds: usize = args.get(at + 1).and_then(|r| r.parse().ok()).unwrap_or(21);
        let (x, classes) = inputs();
        let x = x.as_slice();
        let mut grad = vec![0.0f32; N * DIM];
        let mut names = vec!["contrastive"];
        let mut kernels: Vec<Kernel> = Vec::new();
        {
            let loss = baseline();
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            let classes = classes.clone();
            kernels.push(Box::new(move |g| {
                black_box(
                    loss.in_batch_with_grad(black_box(x), DIM, &classes, g, &mut scratch)
                        .unwrap(),
                );
            }));
        }
        for (name, loss) in hard() {
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            let classes = classes.clone();
            names.push(name);
            kernels.push(Box::new(move |g| {
                black_box(
                    loss.batch_with_grad(black_box(x), DIM, &classes, g, &mut scratch)
                        .unwrap(),
                );
            }));
        }
        // The batch-all losses with `scratch_len` (the row path) and, for the hinge, with
        // `symmetric_scratch_len` (the symmetric path; `_sym` in the name).
        let largest = (N as u32).div_ceil(CLASSES) as usize;
        let variants = all().into_iter().flat_map(|(name, loss)| {
            let row = (name.to_string(), loss, loss.scratch_len(N, DIM));
            let sym = (!loss.smooth).then(|| {
                let len = loss.symmetric_scratch_len(N, DIM, largest);
                (format!("{name}_sym"), loss, len)
            });
            core::iter::once(row).chain(sym)
        });
        for (name, loss, len) in variants {
            let mut scratch = vec![0.0; len];
            let classes = classes.clone();
            names.push(Box::leak(name.into_boxed_str()));
            kernels.push(Box::new(move |g| {
                black_box(
                    loss.batch_with_grad(black_box(x), DIM, &classes, g, &mut scratch)
                        .unwrap(),
                );
            }));
        }
        // `ratios ROUNDS NAME...`: only these losses (and the baseline), for a profiler.
        let only: Vec<&str> = args.iter().skip(at + 2).map(String::as_str).collect();
        if !only.is_empty() {
            let keep: Vec<bool> = names
                .iter()
                .enumerate()
                .map(|(k, n)| k == 0 || only.contains(n))
                .collect();
            let mut it = keep.iter();
            kernels.retain(|_| *it.next().unwrap());
            let mut it = keep.iter();
            names.retain(|_| *it.next().unwrap());
        }
        let count = kernels.len();
        let cpu = cpu_seconds().is_some();
        let mut times = vec![Vec::with_capacity(rounds); count];
        for round in 0..rounds {
            for turn in 0..count {
                let k = (round + turn) % count;
                kernels[k](&mut grad);
                times[k].push(seconds(cpu, || kernels[k](&mut grad)));
            }
        }
        let best = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
        let clock = if cpu { "thread CPU time" } else { "wall time" };
        println!(
            "forward + gradient, N = {N}, d = {DIM}, {CLASSES} classes, {rounds} rounds, {clock}"
        );
        println!("| loss | best round (ms) | loss/contrastive, best rounds | median of rounds |");
        println!("|---|---|---|---|");
        for k in 0..count {
            let mut r: Vec<f64> = times[k].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
            r.sort_by(f64::total_cmp);
            println!(
                "| {} | {:.3} | {:.2} | {:.2} |",
                names[k],
                best(&times[k]) * 1e3,
                best(&times[k]) / best(&times[0]),
                r[r.len() / 2]
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_group! {
    name = benches;
    config = common::config();
    targets = x86::triplet
}

#[cfg(target_arch = "x86_64")]
fn main() {
    if std::env::args().any(|a| a == "ratios") {
        x86::ratios();
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {}
