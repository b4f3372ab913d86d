//! Learns an embedding of hand-written digits on classes 0–4 and recognises the unseen
//! classes 5–9 from five examples each:
//!
//!     cargo run --release -p digits [-- OUTPUT_DIR]
//!
//! Trains a 64 → 64 → 16 network three times, with the contrastive loss over every pair of
//! each mini-batch, with a batch-hard triplet loss and with the supervised contrastive
//! (SupCon, τ = 0.2) loss, then prints 5-way 5-shot accuracy on the unseen classes (1,000
//! episodes, mean and 95 % interval) and 1-NN accuracy on held-out images of the seen
//! classes, for raw pixels, the untrained network and each trained network: its output
//! (L2-normalised for SupCon, which trains on cosine similarities) and its 64 hidden units,
//! after the last epoch and at the epoch with the best 5-shot accuracy on the held-out
//! images of the SEEN classes (early stopping; the unseen classes select nothing). Draws the
//! loss curves and a PCA view of the unseen classes into OUTPUT_DIR (default
//! `target/digits`).
//!
//! The SupCon run reads `SUPCON_TAU`, `SUPCON_DIM` (embedding width), `SUPCON_HIDDEN`,
//! `SUPCON_EPOCHS`, `SUPCON_LR` and `SUPCON_SEED` from the environment (defaults 0.2, 16,
//! 64, 30, 0.05, 7), to repeat the sweep of the README.

#[cfg(feature = "plots")]
mod plot;

use contrastive::{BatchHardTripletLoss, ContrastiveLoss, Distance, SupConLoss};
use digits::net::{PIXELS, Rng};
use digits::{Accuracy, Config, Digits, Objective, SHAPE};
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

const EPISODES: usize = 1000;
const SHOTS: usize = 5;
const QUERIES: usize = 15;
const EPISODE_SEED: u64 = 2026;

struct Row {
    name: String,
    few_shot: Accuracy,
    one_nn: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let wall = Instant::now();
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/digits".into()),
    );
    let all = Digits::load()?;
    let seen = all.select(|c| c < 5);
    let unseen = all.select(|c| c >= 5);
    let (train, held_out) = seen.split(0.2, &mut Rng::new(1));
    let groups = unseen.groups();
    let held_out_groups = held_out.groups();
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    println!(
        "UCI optical digits: {} images; training on classes 0-4 ({} images, {} held out), \
         few-shot on classes 5-9 ({} images)",
        all.len(),
        train.len(),
        held_out.len(),
        unseen.len()
    );
    println!(
        "network {}->{}->{} (ReLU), contrastive backend {:?}",
        SHAPE.input,
        SHAPE.hidden,
        SHAPE.output,
        contrastive::Backend::best()
    );

    let objectives = [
        Objective::Contrastive(ContrastiveLoss::new(0.5).with_distance(Distance::Cosine)),
        Objective::TripletBatchHard(BatchHardTripletLoss::new(0.5)),
        Objective::SupCon(SupConLoss::new(env("SUPCON_TAU", 0.2) as f32)),
    ];
    let mut runs: Vec<Run> = Vec::new();
    for objective in objectives {
        let mut config = Config::example(objective);
        if matches!(objective, Objective::SupCon(_)) {
            config.shape.output = env("SUPCON_DIM", 16.0) as usize;
            config.shape.hidden = env("SUPCON_HIDDEN", 64.0) as usize;
            config.seed = env("SUPCON_SEED", 7.0) as u64;
            config.epochs = env("SUPCON_EPOCHS", 30.0) as usize;
            config.sgd.learning_rate = env("SUPCON_LR", 0.05) as f32;
        }
        let shape = config.shape;
        let normalise = matches!(objective, Objective::SupCon(_));
        println!();
        println!(
            "training with the {} loss: {} epochs, batches of {} classes x {} images",
            objective.name(),
            config.epochs,
            config.classes_per_batch,
            config.per_class
        );
        // A diagnostic only (nothing is selected on it): 5-shot accuracy on the unseen
        // classes after each epoch, 200 episodes.
        let mut unseen_accuracy = Vec::new();
        let mut best: (f64, usize, Vec<f32>) = (f64::NEG_INFINITY, 0, Vec::new());
        let trained = digits::train(&config, &train, |epoch, loss, time, params| {
            let embed = |d: &Digits| {
                let e = digits::embed(&shape, params, d);
                if normalise {
                    digits::normalize_rows(e, shape.output)
                } else {
                    e
                }
            };
            let acc = digits::few_shot(
                &embed(&unseen),
                shape.output,
                &groups,
                SHOTS,
                QUERIES,
                200,
                1,
            )
            .map_or(f64::NAN, |a| a.mean);
            let seen = digits::few_shot(
                &embed(&held_out),
                shape.output,
                &held_out_groups,
                SHOTS,
                QUERIES,
                200,
                3,
            )
            .map_or(f64::NAN, |a| a.mean);
            if seen > best.0 {
                best = (seen, epoch, params.to_vec());
            }
            unseen_accuracy.push(acc as f32);
            println!(
                "  epoch {epoch:>3}  loss {loss:.5}  {:>7.1} ms   held-out seen 5-shot {:.1} %   (unseen 5-shot {:.1} %)",
                time.as_secs_f64() * 1e3,
                100.0 * seen,
                100.0 * acc
            );
        })?;
        println!(
            "  best held-out seen epoch: {} ({:.1} %)",
            best.1,
            100.0 * best.0
        );
        println!("  trained in {:.2} s", trained.time.as_secs_f64());
        let early = if best.2.is_empty() {
            trained.params.clone() // no epoch (SUPCON_EPOCHS=0): the initial network
        } else {
            best.2
        };
        runs.push((config, trained, unseen_accuracy, early));
    }

    let evaluate = |name: &str, dim: usize, embed: &dyn Fn(&Digits) -> Vec<f32>| {
        let few_shot = digits::few_shot(
            &embed(&unseen),
            dim,
            &groups,
            SHOTS,
            QUERIES,
            EPISODES,
            EPISODE_SEED,
        )?;
        let one_nn = digits::nearest_neighbour_accuracy(
            &embed(&train),
            &train.classes,
            &embed(&held_out),
            &held_out.classes,
            dim,
        )?;
        Ok::<_, contrastive::Error>(Row {
            name: name.into(),
            few_shot,
            one_nn,
        })
    };
    let untrained = digits::initial_params(&SHAPE, runs[0].0.seed);
    let mut rows = vec![
        evaluate("raw pixels (64-d)", PIXELS, &|d| d.feature_matrix())?,
        evaluate("untrained network (16-d)", SHAPE.output, &|d| {
            digits::embed(&SHAPE, &untrained, d)
        })?,
        evaluate("untrained network hidden (64-d)", SHAPE.hidden, &|d| {
            digits::embed_hidden(&SHAPE, &untrained, d)
        })?,
    ];
    for (config, trained, _, early) in &runs {
        let shape = config.shape;
        let normalise = matches!(config.objective, Objective::SupCon(_));
        for (when, params) in [("", &trained.params), (", early-stopped", early)] {
            rows.push(evaluate(
                &format!("{} ({}-d{when})", config.objective.name(), shape.output),
                shape.output,
                &|d| {
                    let e = digits::embed(&shape, params, d);
                    if normalise {
                        digits::normalize_rows(e, shape.output)
                    } else {
                        e
                    }
                },
            )?);
            rows.push(evaluate(
                &format!(
                    "{} hidden ({}-d{when})",
                    config.objective.name(),
                    shape.hidden
                ),
                shape.hidden,
                &|d| digits::embed_hidden(&shape, params, d),
            )?);
        }
    }

    println!();
    println!(
        "{:<50} {:>34} {:>22}",
        "embedding", "unseen 5-9: 5-way 5-shot (95% CI)", "seen 0-4: 1-NN"
    );
    for r in &rows {
        println!(
            "{:<50} {:>26.2} % ± {:>4.2} {:>20.2} %",
            r.name,
            100.0 * r.few_shot.mean,
            100.0 * r.few_shot.ci95,
            100.0 * r.one_nn
        );
    }
    println!(
        "({EPISODES} episodes of {SHOTS} support and {QUERIES} query images per class, the same \
         episodes for every row; 1-NN: {} held-out images against {} training images)",
        held_out.len(),
        train.len()
    );

    #[cfg(feature = "plots")]
    draw(&out_dir, &runs, &rows, &unseen)?;
    #[cfg(not(feature = "plots"))]
    println!("\nno pictures in {out_dir:?}: built without the `plots` feature");
    let training: f64 = runs.iter().map(|(_, t, _, _)| t.time.as_secs_f64()).sum();
    println!(
        "\ntraining {training:.2} s in total, wall time {:.2} s",
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A training run: its settings, its result, and the unseen classes' accuracy per epoch.
type Run = (Config, digits::Trained, Vec<f32>, Vec<f32>);

/// The pictures: loss curves and PCA views, into `out_dir`.
#[cfg(feature = "plots")]
fn draw(
    out_dir: &std::path::Path,
    runs: &[Run],
    rows: &[Row],
    unseen: &Digits,
) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(out_dir)?;
    let curves: Vec<plot::Curves> = runs
        .iter()
        .map(|(c, t, a, _)| plot::Curves {
            name: c.objective.name(),
            loss: &t.epoch_loss,
            unseen_accuracy: a,
            raw_accuracy: rows[0].few_shot.mean as f32,
        })
        .collect();
    let mut views = vec![(
        "raw pixels".to_string(),
        digits::pca2(&unseen.feature_matrix(), PIXELS),
    )];
    for (config, trained, _, _) in runs {
        views.push((
            format!("{} embedding", config.objective.name()),
            digits::pca2(
                &{
                    let e = digits::embed(&config.shape, &trained.params, unseen);
                    if matches!(config.objective, Objective::SupCon(_)) {
                        digits::normalize_rows(e, config.shape.output)
                    } else {
                        e
                    }
                },
                config.shape.output,
            ),
        ));
    }
    match plot::draw(out_dir, &curves, &views, &unseen.classes) {
        Ok(files) => {
            println!();
            for f in files {
                println!("wrote {}", f.display());
            }
        }
        Err(e) => println!("\nno pictures: {e}"),
    }
    Ok(())
}
