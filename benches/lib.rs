//! Nothing here: the benches are the `[[bench]]` targets of this package
//! (`cargo bench -p contrastive-benches --bench <name>`).
