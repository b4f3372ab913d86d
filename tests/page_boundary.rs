//! No kernel reads or writes outside its slices: every input and output slice is placed so
//! that it ends exactly at the end of a readable page followed by a `PROT_NONE` guard page
//! (and, in a second pass, starts exactly at the start of a page preceded by one), and
//! every public entry point runs on every available backend for every length 0..=64 and
//! a few larger ones. A read or write past either end faults (SIGSEGV) and fails the test.
//!
//! Values come in three flavours, ordinary, tiny (1e-30) and huge (1e30), so that the cold
//! rescaling paths, which read the inputs again, run too.

#![cfg(all(unix, any(target_arch = "x86_64", target_arch = "aarch64")))]

use contrastive::{Backend, ContrastiveLoss, Distance, Reduction, seed};

/// `pages` readable and writable pages with a `PROT_NONE` page on each side, holding a
/// slice of `len` floats placed flush against one of the two guards.
struct Guarded {
    base: *mut libc::c_void,
    total: usize,
    slice: *mut f32,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
enum Flush {
    /// The slice ends where the guard page after it begins.
    End,
    /// The slice starts where the guard page before it ends.
    Start,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("page size")
}

impl Guarded {
    fn new(len: usize, flush: Flush) -> Guarded {
        let page = page_size();
        let bytes = len * size_of::<f32>();
        let pages = bytes.div_ceil(page).max(1);
        let total = (pages + 2) * page;
        // SAFETY: an anonymous private mapping with no address hint and valid flags; the
        // result is checked against MAP_FAILED before use.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap failed");
        let start = base.cast::<u8>();
        // SAFETY: `base` is page-aligned and the mapping spans `total` bytes, so the first
        // and the last page lie inside it; mprotect only changes their permissions.
        unsafe {
            assert_eq!(libc::mprotect(base, page, libc::PROT_NONE), 0);
            let last = start.add(total - page).cast();
            assert_eq!(libc::mprotect(last, page, libc::PROT_NONE), 0);
        }
        let offset = match flush {
            Flush::Start => page,
            Flush::End => total - page - bytes,
        };
        // SAFETY: `offset + bytes ≤ total − page`, inside the readable part of the mapping;
        // `offset` is a multiple of 4 (page sizes and `bytes` are), so the pointer is
        // aligned for f32.
        let slice = unsafe { start.add(offset) }.cast::<f32>();
        Guarded {
            base,
            total,
            slice,
            len,
        }
    }

    fn with(len: usize, flush: Flush, values: impl Fn(usize) -> f32) -> Guarded {
        let mut g = Guarded::new(len, flush);
        for (i, x) in g.as_mut().iter_mut().enumerate() {
            *x = values(i);
        }
        g
    }

    fn as_ref(&self) -> &[f32] {
        // SAFETY: `slice` points at `len` initialized (zero-filled by mmap) f32s in a
        // readable mapping that lives as long as `self`; a shared borrow of `self` keeps
        // every mutable view of it out.
        unsafe { core::slice::from_raw_parts(self.slice, self.len) }
    }

    fn as_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_ref`, and the mapping is writable; the exclusive borrow of
        // `self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.slice, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: `base` and `total` are exactly the mapping made in `new`, and no slice
        // of it outlives `self`.
        unsafe {
            libc::munmap(self.base, self.total);
        }
    }
}

const LENGTHS: [usize; 6] = [65, 100, 128, 257, 1000, 1031];

fn lengths() -> impl Iterator<Item = usize> {
    (0..=64).chain(LENGTHS)
}

/// Values of one flavour: ordinary, tiny (squares underflow) or huge (squares overflow).
fn value(flavour: usize, side: usize, i: usize) -> f32 {
    let x = ((i * 7 + side * 3) % 11) as f32 - 5.0 + 0.25 * side as f32;
    match flavour {
        0 => x,
        1 => x * 1e-30,
        _ => x * 1e30,
    }
}

/// The divisors of `n` that make interesting batch shapes: 1, a few small ones, `n`.
fn dims(n: usize) -> Vec<usize> {
    (1..=n)
        .filter(|d| n.is_multiple_of(*d) && (*d <= 8 || *d == n || n / d <= 4))
        .collect()
}

fn run_everything(n: usize, flush: Flush, flavour: usize) {
    let a = Guarded::with(n, flush, |i| value(flavour, 0, i));
    let b = Guarded::with(n, flush, |i| value(flavour, 1, i));
    let (a, b) = (a.as_ref(), b.as_ref());
    let mut grad_a = Guarded::new(n, flush);
    let mut grad_b = Guarded::new(n, flush);
    for backend in Backend::available() {
        let ctx = format!("{backend:?}, n = {n}, {flush:?}, flavour {flavour}");
        backend.squared_euclidean(a, b).expect(&ctx);
        backend.euclidean(a, b).expect(&ctx);
        backend.dot(a, b).expect(&ctx);
        backend.cosine_similarity(a, b).expect(&ctx);
        for distance in [Distance::Euclidean, Distance::Cosine] {
            for label in [0.0, 1.0, 0.5] {
                let loss = ContrastiveLoss::new(1.0)
                    .with_distance(distance)
                    .with_backend(backend);
                loss.pair(a, b, label).expect(&ctx);
                loss.pair_with_grad(a, b, label, grad_a.as_mut(), grad_b.as_mut())
                    .expect(&ctx);
            }
        }
        if n > 0 {
            let labels: Vec<f32> = [1.0]
                .into_iter()
                .chain([0.0, 0.5])
                .cycle()
                .take(n)
                .collect();
            seed::contrastive_loss_on(backend, a, b, &labels, 0.5).expect(&ctx);
            seed::contrastive_loss_with_grad_on(
                backend,
                a,
                b,
                &labels,
                0.5,
                grad_a.as_mut(),
                grad_b.as_mut(),
            )
            .expect(&ctx);
        }
        for dim in dims(n) {
            let rows = n / dim;
            let ctx = format!("{ctx}, dim = {dim}");
            let mut out = Guarded::new(rows, flush);
            backend
                .squared_euclidean_rows(a, b, dim, out.as_mut())
                .expect(&ctx);
            let labels = Guarded::with(rows, flush, |r| (r % 3) as f32 * 0.5);
            for distance in [Distance::Euclidean, Distance::Cosine] {
                for reduction in [Reduction::Mean, Reduction::Sum] {
                    let loss = ContrastiveLoss::tfa(2.0)
                        .with_distance(distance)
                        .with_reduction(reduction)
                        .with_backend(backend);
                    loss.batch(a, b, dim, labels.as_ref()).expect(&ctx);
                    loss.batch_per_pair(a, b, dim, labels.as_ref(), out.as_mut())
                        .expect(&ctx);
                    loss.batch_with_grad(
                        a,
                        b,
                        dim,
                        labels.as_ref(),
                        grad_a.as_mut(),
                        grad_b.as_mut(),
                    )
                    .expect(&ctx);
                }
            }
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri checks every access itself, and has no mprotect")]
fn no_kernel_reads_or_writes_past_the_end_of_a_slice() {
    for n in lengths() {
        for flavour in 0..3 {
            run_everything(n, Flush::End, flavour);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri checks every access itself, and has no mprotect")]
fn no_kernel_reads_or_writes_before_the_start_of_a_slice() {
    for n in lengths() {
        for flavour in 0..3 {
            run_everything(n, Flush::Start, flavour);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri checks every access itself, and has no mprotect")]
fn the_guard_page_does_fault() {
    // The harness itself: a read one element past a slice that ends at the guard page
    // must kill a child process with SIGSEGV. Without this, a guard that silently failed
    // to be set up would make the tests above pass vacuously.
    let g = Guarded::with(4, Flush::End, |i| i as f32);
    let end = g.as_ref().as_ptr_range().end;
    // SAFETY: fork in a test process; the child only reads memory and ends with _exit (no
    // allocation, no locks, no destructors).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: this read is out of bounds on purpose: `end` is the first byte of the
        // PROT_NONE page, so it faults; the child exits normally only if it does not.
        let x = unsafe { core::ptr::read_volatile(end) };
        // SAFETY: _exit ends the child at once and is async-signal-safe.
        unsafe { libc::_exit(if x.is_nan() { 1 } else { 0 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
        "reading past the guard did not fault (status {status:#x})"
    );
}
