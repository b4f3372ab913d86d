//! A short training run with a fixed seed: the loss falls, the embedding is finite, and the
//! few-shot evaluation scores a separable embedding perfectly.

use contrastive::{BatchHardTripletLoss, ContrastiveLoss, Distance};
use digits::net::{self, Rng};
use digits::{Config, Digits, Objective};

/// `epochs` epochs on 200 images of the digits 0–4 (5 batches of 40 per epoch).
fn short_run(objective: Objective, epochs: usize) -> Vec<f32> {
    let seen = Digits::load().unwrap().select(|c| c < 5);
    let (_, data) = seen.split(200.0 / seen.len() as f64, &mut Rng::new(3));
    assert!((195..=205).contains(&data.len()));
    let mut config = Config::example(objective);
    config.epochs = epochs;
    let mut epochs_seen = 0;
    let trained = digits::train(&config, &data, |epoch, loss, _, params| {
        epochs_seen = epoch;
        assert!(loss.is_finite());
        assert!(params.iter().all(|p| p.is_finite()));
    })
    .unwrap();
    assert_eq!(epochs_seen, epochs);
    trained.epoch_loss
}

#[test]
fn contrastive_training_loss_falls() {
    let loss = short_run(
        Objective::Contrastive(ContrastiveLoss::new(0.5).with_distance(Distance::Cosine)),
        8,
    );
    assert!(loss[7] < 0.9 * loss[0], "{loss:?}");
}

#[test]
fn triplet_training_loss_falls() {
    let loss = short_run(
        Objective::TripletBatchHard(BatchHardTripletLoss::new(0.5)),
        8,
    );
    assert!(loss[7] < 0.5 * loss[0], "{loss:?}");
}

#[test]
fn training_is_deterministic() {
    let objective = Objective::Contrastive(ContrastiveLoss::new(1.0));
    assert_eq!(short_run(objective, 2), short_run(objective, 2));
}

#[test]
fn few_shot_scores_separable_classes_perfectly_and_random_ones_near_chance() {
    // Five classes of 20 points: class c sits around 10·e_c (separable), and the same
    // points with the classes shuffled (chance is 20 %).
    let dim = 5;
    let mut rng = Rng::new(9);
    let mut emb = Vec::new();
    let mut groups = vec![Vec::new(); 5];
    for (c, group) in groups.iter_mut().enumerate() {
        for _ in 0..20 {
            group.push((emb.len() / dim) as u16);
            emb.extend((0..dim).map(|k| if k == c { 10.0 } else { 0.0 } + rng.symmetric()));
        }
    }
    let acc = digits::few_shot(&emb, dim, &groups, 5, 10, 50, 1).unwrap();
    assert_eq!(acc.mean, 1.0);
    let mut all: Vec<u16> = groups.concat();
    digits::shuffle(&mut all, &mut rng);
    let shuffled: Vec<Vec<u16>> = all.chunks(20).map(|c| c.to_vec()).collect();
    let acc = digits::few_shot(&emb, dim, &shuffled, 5, 10, 200, 1).unwrap();
    assert!((0.1..0.35).contains(&acc.mean), "{acc:?}");
    // Too few images for 5 shots and 16 queries, too many per class, too many ways: errors.
    assert!(digits::few_shot(&emb, dim, &groups, 5, 16, 1, 1).is_err());
    assert!(digits::few_shot(&emb, dim, &groups, 20, 20, 1, 1).is_err());
    let eleven = vec![groups[0].clone(); 11];
    assert!(digits::few_shot(&emb, dim, &eleven, 1, 1, 1, 1).is_err());
    let mut protos = [0.0f32; 4];
    let g: Vec<&[u16]> = groups.iter().map(|g| g.as_slice()).collect();
    assert!(net::prototype_episode(&mut rng, &emb, dim, &g, 1, 1, &mut protos).is_err());
}

#[test]
fn nearest_neighbour_and_pca_on_known_points() {
    let reference = [0.0f32, 0.0, 10.0, 10.0];
    let acc = digits::nearest_neighbour_accuracy(
        &reference,
        &[3, 4],
        &[1.0, 1.0, 9.0, 8.0, 0.0, 9.0],
        &[3, 4, 4],
        2,
    )
    .unwrap();
    assert!((acc - 2.0 / 3.0).abs() < 1e-12);
    // A 5×5 grid stretched 3× along the first axis: the components are the axes, and the
    // projections the centred coordinates (up to sign).
    let x: Vec<f32> = (0..25)
        .flat_map(|i| [3.0 * (i % 5) as f32, (i / 5) as f32, 0.5])
        .collect();
    let p = digits::pca2(&x, 3);
    for (i, q) in p.iter().enumerate() {
        let (u, v) = (3.0 * ((i % 5) as f64 - 2.0), (i / 5) as f64 - 2.0);
        assert!((q[0].abs() - u.abs()).abs() < 1e-9, "{q:?}");
        assert!((q[1].abs() - v.abs()).abs() < 1e-9, "{q:?}");
    }
}

#[test]
fn supcon_training_loss_falls() {
    // 40 rows, 8 per class: the loss starts near ln 39 ≈ 3.66 (all similarities alike)
    // and its floor is ln 7 ≈ 1.95 (the positives alone share the softmax).
    let loss = short_run(Objective::SupCon(contrastive::SupConLoss::new(0.2)), 16);
    assert!(loss[15] < loss[0] - 0.4, "{loss:?}");
}

#[test]
fn normalised_rows_have_unit_length_and_zero_rows_stay_zero() {
    let x = digits::normalize_rows(vec![3.0, 4.0, 0.0, 0.0, -1.0, 0.0], 2);
    assert_eq!(x, [0.6, 0.8, 0.0, 0.0, -1.0, 0.0]);
}
