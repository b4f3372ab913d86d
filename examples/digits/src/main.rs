//! Learns an embedding of hand-written digits on classes 0–4 and recognises the unseen
//! classes 5–9 from five examples each:
//!
//!     cargo run --release -p digits [-- OUTPUT_DIR]
//!
//! Trains a 64 → 64 → 16 network twice, with the contrastive loss over every pair of each
//! mini-batch and with a batch-hard triplet loss, then prints 5-way 5-shot accuracy on the
//! unseen classes (1,000 episodes, mean and 95 % interval) and 1-NN accuracy on held-out
//! images of the seen classes, for raw pixels, the untrained network and both trained
//! networks. Draws the loss curves and a PCA view of the unseen classes into OUTPUT_DIR
//! (default `target/digits`).

#[cfg(feature = "plots")]
mod plot;

use contrastive::{BatchHardTripletLoss, ContrastiveLoss, Distance};
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
    ];
    let mut runs: Vec<Run> = Vec::new();
    for objective in objectives {
        let config = Config::example(objective);
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
        let trained = digits::train(&config, &train, |epoch, loss, time, params| {
            let emb = digits::embed(&SHAPE, params, &unseen);
            let acc = digits::few_shot(&emb, SHAPE.output, &groups, SHOTS, QUERIES, 200, 1)
                .map_or(f64::NAN, |a| a.mean);
            unseen_accuracy.push(acc as f32);
            println!(
                "  epoch {epoch:>3}  loss {loss:.5}  {:>7.1} ms   (unseen 5-shot {:.1} %)",
                time.as_secs_f64() * 1e3,
                100.0 * acc
            );
        })?;
        println!("  trained in {:.2} s", trained.time.as_secs_f64());
        runs.push((config, trained, unseen_accuracy));
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
    ];
    for (config, trained, _) in &runs {
        rows.push(evaluate(
            &format!("{} (16-d)", config.objective.name()),
            SHAPE.output,
            &|d| digits::embed(&SHAPE, &trained.params, d),
        )?);
    }

    println!();
    println!(
        "{:<28} {:>34} {:>22}",
        "embedding", "unseen 5-9: 5-way 5-shot (95% CI)", "seen 0-4: 1-NN"
    );
    for r in &rows {
        println!(
            "{:<28} {:>26.2} % ± {:>4.2} {:>20.2} %",
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
    let training: f64 = runs.iter().map(|(_, t, _)| t.time.as_secs_f64()).sum();
    println!(
        "\ntraining {training:.2} s in total, wall time {:.2} s",
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A training run: its settings, its result, and the unseen classes' accuracy per epoch.
type Run = (Config, digits::Trained, Vec<f32>);

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
        .map(|(c, t, a)| plot::Curves {
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
    for (config, trained, _) in runs {
        views.push((
            format!("{} embedding", config.objective.name()),
            digits::pca2(
                &digits::embed(&SHAPE, &trained.params, unseen),
                SHAPE.output,
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
