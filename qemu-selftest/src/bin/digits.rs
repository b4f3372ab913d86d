//! On-device training: a linear embedding of hand-written digits learnt with the contrastive
//! loss on a Cortex-M4F, without an allocator, from images held in flash.
//!
//!     cargo run --release --features digits --bin digits    # from qemu-selftest/
//!
//! Runs on `qemu-system-arm -machine mps2-an386` (the runner of `.cargo/config.toml`).
//! The training step is the desktop example's (`examples/digits/src/net.rs`, compiled here
//! as it is): batches of 5 classes × 3 images of the digits 0–4, the contrastive loss over
//! every pair of the batch (`ContrastiveLoss::in_batch_with_grad`, cosine distance,
//! margin 0.5), SGD with momentum. It prints the
//! loss every 25 steps, 5-way 5-shot accuracy by nearest prototype before and after
//! training (on held-out images of the digits 0–4 and on the unseen digits 5–9), and the
//! peak stack, measured by painting the stack before `main`'s work and looking for the
//! deepest overwritten word afterwards. Exits 0 if the loss went down.

#![no_std]
#![no_main]

#[allow(dead_code)]
#[path = "../../../examples/digits/src/net.rs"]
mod net;

use contrastive::{ContrastiveLoss, Distance};
use net::{PIXEL_MAX, PIXELS, Rng, Sgd, Shape};
use semihosting::println;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

/// Images of each class taken from the data file (the first ones in file order).
const PER_CLASS: usize = 36;
/// Of those, for the digits 0–4: the first ones train, the rest are held out.
const TRAIN_PER_CLASS: usize = 20;
const IMAGES: usize = 10 * PER_CLASS;

/// The data file, read at compile time: only the selected images reach the flash.
const CSV: &[u8] = include_bytes!("../../../data/digits/digits.csv");

/// The first `PER_CLASS` images of each class, class `c` in rows
/// `c·PER_CLASS .. (c+1)·PER_CLASS`; parsed by the compiler.
static DATA: [[u8; PIXELS]; IMAGES] = select();

const fn select() -> [[u8; PIXELS]; IMAGES] {
    let mut out = [[0u8; PIXELS]; IMAGES];
    let mut count = [0usize; 10];
    let mut row = [0u8; PIXELS + 1];
    let (mut i, mut field, mut value, mut filled) = (0, 0, 0u8, 0);
    while i < CSV.len() && filled < IMAGES {
        let b = CSV[i];
        i += 1;
        if b == b',' || b == b'\n' {
            assert!(field <= PIXELS, "more than 65 fields on a line");
            row[field] = value;
            (field, value) = (field + 1, 0);
            if b == b'\n' {
                assert!(field == PIXELS + 1, "fewer than 65 fields on a line");
                let c = row[PIXELS] as usize;
                assert!(c < 10, "class out of range");
                if count[c] < PER_CLASS {
                    let mut k = 0;
                    while k < PIXELS {
                        assert!(row[k] <= 16, "pixel out of range");
                        out[c * PER_CLASS + count[c]][k] = row[k];
                        k += 1;
                    }
                    count[c] += 1;
                    filled += 1;
                }
                field = 0;
            }
        } else if b != b'\r' {
            assert!(b.is_ascii_digit(), "not a digit");
            value = value * 10 + (b - b'0');
        }
    }
    assert!(filled == IMAGES, "too few images of some class");
    out
}

const SHAPE: Shape = Shape {
    input: PIXELS,
    hidden: 0,
    output: 16,
};
const PARAMS: usize = SHAPE.param_len();
const CLASSES_PER_BATCH: usize = 5;
const PER_BATCH_CLASS: usize = 3;
const BATCH: usize = CLASSES_PER_BATCH * PER_BATCH_CLASS;
/// Scratch of the in-batch loss: `loss.scratch_len(BATCH, 16)` (checked in `main`; the
/// loss would return `Error::ScratchTooShort` otherwise).
const SCRATCH: usize = 1054;
const STEPS: usize = 300;
const EPISODES: usize = 200;

fn load(image: usize, out: &mut [f32]) {
    for (o, &p) in out.iter_mut().zip(&DATA[image]) {
        *o = f32::from(p) / PIXEL_MAX;
    }
}

/// Embeds every image of `DATA` into `emb` (`IMAGES × output`), a few rows at a time.
fn embed_all(params: &[f32], emb: &mut [f32; IMAGES * 16]) {
    const CHUNK: usize = 8;
    let mut x = [0.0f32; CHUNK * PIXELS];
    for (chunk, out) in emb.chunks_mut(CHUNK * SHAPE.output).enumerate() {
        let rows = out.len() / SHAPE.output;
        for r in 0..rows {
            load(chunk * CHUNK + r, &mut x[r * PIXELS..(r + 1) * PIXELS]);
        }
        net::forward(&SHAPE, params, &x[..rows * PIXELS], &mut [], out);
    }
}

/// 5-way 5-shot accuracy (percent) over `EPISODES` episodes of the classes `first..first + 5`,
/// drawing from `skip..PER_CLASS` of each class's rows.
fn few_shot(emb: &[f32], first: usize, skip: usize) -> f32 {
    let mut members = [[0u16; PER_CLASS]; 5];
    for (k, m) in members.iter_mut().enumerate() {
        for (j, slot) in m.iter_mut().enumerate() {
            *slot = ((first + k) * PER_CLASS + j) as u16;
        }
    }
    let groups: [&[u16]; 5] = core::array::from_fn(|k| &members[k][skip..]);
    let (shots, queries) = (5, 10);
    let mut rng = Rng::new(2026);
    let mut protos = [0.0f32; 5 * 16];
    let mut correct = 0;
    for _ in 0..EPISODES {
        match net::prototype_episode(
            &mut rng,
            emb,
            SHAPE.output,
            &groups,
            shots,
            queries,
            &mut protos,
        ) {
            Ok(c) => correct += c,
            Err(e) => {
                println!("episode failed: {e}");
                qemu_selftest::exit(1);
            }
        }
    }
    100.0 * correct as f32 / (EPISODES * 5 * queries) as f32
}

fn report(when: &str, params: &[f32], emb: &mut [f32; IMAGES * 16]) {
    embed_all(params, emb);
    let seen = few_shot(emb, 0, TRAIN_PER_CLASS);
    let unseen = few_shot(emb, 5, 0);
    println!(
        "{when}: 5-way 5-shot accuracy {seen:.1} % on held-out digits 0-4, {unseen:.1} % on unseen digits 5-9"
    );
}

/// One training step on a random batch; returns the batch's loss.
#[inline(never)]
fn train_step(
    rng: &mut Rng,
    loss: &ContrastiveLoss,
    sgd: &Sgd,
    params: &mut [f32; PARAMS],
    velocity: &mut [f32; PARAMS],
) -> f32 {
    let mut x = [0.0f32; BATCH * PIXELS];
    let mut classes = [0u32; BATCH];
    let mut emb = [0.0f32; BATCH * 16];
    let mut d_emb = [0.0f32; BATCH * 16];
    let mut grads = [0.0f32; PARAMS];
    let mut scratch = [0.0f32; SCRATCH];
    for c in 0..CLASSES_PER_BATCH {
        for k in 0..PER_BATCH_CLASS {
            let row = c * PER_BATCH_CLASS + k;
            let image = c * PER_CLASS + rng.below(TRAIN_PER_CLASS);
            load(image, &mut x[row * PIXELS..(row + 1) * PIXELS]);
            classes[row] = c as u32;
        }
    }
    net::forward(&SHAPE, params, &x, &mut [], &mut emb);
    let value = match loss.in_batch_with_grad(&emb, 16, &classes, &mut d_emb, &mut scratch) {
        Ok(v) => v,
        Err(e) => {
            println!("loss failed: {e}");
            qemu_selftest::exit(1);
        }
    };
    net::backward(&SHAPE, params, &x, &[], &d_emb, &mut grads, &mut []);
    sgd.step(params, &grads, velocity);
    value
}

#[entry]
fn main() -> ! {
    let painted = stack::paint();
    println!(
        "on-device training on {}: linear embedding {}->{}, {} parameters, {} images in flash",
        qemu_selftest::BOARD,
        SHAPE.input,
        SHAPE.output,
        PARAMS,
        IMAGES
    );
    let mut params = [0.0f32; PARAMS];
    let mut velocity = [0.0f32; PARAMS];
    let mut emb = [0.0f32; IMAGES * 16];
    let mut rng = Rng::new(7);
    net::init(&SHAPE, &mut params, &mut rng);
    report("before training", &params, &mut emb);

    let loss = ContrastiveLoss::new(0.5).with_distance(Distance::Cosine);
    let needed = loss.scratch_len(BATCH, SHAPE.output);
    println!("in-batch loss scratch: {needed} floats ({SCRATCH} reserved)");
    if needed > SCRATCH {
        qemu_selftest::exit(1);
    }
    let sgd = Sgd {
        learning_rate: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
    };
    let (mut first, mut last, mut window) = (0.0f32, 0.0f32, 0.0f32);
    for step in 1..=STEPS {
        window += train_step(&mut rng, &loss, &sgd, &mut params, &mut velocity);
        if step % 25 == 0 {
            let mean = window / 25.0;
            println!("step {step:>4}  mean loss of the last 25 batches {mean:.5}");
            if step == 25 {
                first = mean;
            }
            last = mean;
            window = 0.0;
        }
    }
    report("after training", &params, &mut emb);
    let peak = stack::peak(painted);
    println!("peak stack: {peak} bytes (measured by stack painting)");
    let ok = last < first && last.is_finite();
    println!(
        "loss {} ({first:.5} -> {last:.5})",
        if ok { "went down" } else { "did NOT go down" }
    );
    qemu_selftest::exit(if ok { 0 } else { 1 })
}

/// Stack painting: fill the unused stack below the current frame with a pattern, then find
/// the lowest word that no longer holds it.
#[cfg(target_arch = "arm")]
mod stack {
    const PATTERN: u32 = 0xa5a5_5a5a;
    /// How far below `main`'s frame to paint (must exceed the peak).
    const DEPTH: usize = 256 * 1024;

    unsafe extern "C" {
        /// The top of the stack (cortex-m-rt's linker script).
        static _stack_start: u32;
    }

    /// The painted region: (lowest address, top of the stack).
    pub struct Painted(usize, usize);

    pub fn paint() -> Painted {
        let sp = cortex_m::register::msp::read() as usize;
        // Only the address of the linker symbol is taken, never its value.
        let top = core::ptr::addr_of!(_stack_start) as usize;
        let low = sp - DEPTH;
        // Leave 256 bytes below the current stack pointer for this function's own calls.
        let mut p = low;
        while p < sp - 256 {
            // SAFETY: `low..sp - 256` is RAM below the live stack (the board has 4 MiB of
            // RAM and the stack grows down from its end; `DEPTH` is far from the statics),
            // which nothing uses yet; a volatile write keeps the compiler from eliding it.
            unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
            p += 4;
        }
        Painted(low, top)
    }

    /// The deepest stack use since [`paint`], in bytes below the top of the stack.
    pub fn peak(painted: Painted) -> usize {
        let Painted(low, top) = painted;
        let mut p = low;
        // SAFETY: reads of the region `paint` wrote, aligned words of RAM.
        while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PATTERN {
            p += 4;
        }
        top - p
    }
}
