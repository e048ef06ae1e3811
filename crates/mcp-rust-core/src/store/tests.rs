//! Tests of the in-memory store: ranking, bad input, id allocation, the row-norm cache and
//! concurrency. The snapshot's own tests live in `snapshot.rs`.

use super::*;
use serde_json::json;

pub(super) fn store_with(texts: &[&str], dim: usize) -> MemoryStore {
    let store = MemoryStore::new(dim).unwrap();
    for (i, text) in texts.iter().enumerate() {
        store
            .add(*text, embed_text(text, dim), json!({ "n": i }))
            .unwrap();
    }
    store
}

#[test]
fn add_and_query_rank_by_cosine_similarity() {
    let store = store_with(
        &["ls -la /tmp", "git status", "git stash pop", "cargo build"],
        64,
    );
    assert_eq!(store.len(), 4);
    assert!(!store.is_empty());
    let hits = store.query(&embed_text("git status", 64), 2).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].text, "git status");
    assert_eq!(hits[0].metadata, json!({ "n": 1 }));
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(hits[1].text, "git stash pop");
    assert!(hits[0].score >= hits[1].score);
}

#[test]
fn query_with_k_above_len_returns_all_and_empty_store_returns_nothing() {
    let store = store_with(&["a", "b"], 8);
    assert_eq!(store.query(&embed_text("a", 8), 10).unwrap().len(), 2);
    let empty = MemoryStore::new(8).unwrap();
    assert!(empty.is_empty());
    assert!(empty.query(&[1.0; 8], 3).unwrap().is_empty());
}

#[test]
fn dimension_and_non_finite_values_are_rejected() {
    let store = MemoryStore::new(4).unwrap();
    assert!(matches!(
        store.add("x", vec![1.0; 3], json!(null)),
        Err(StoreError::DimensionMismatch {
            expected: 4,
            found: 3
        })
    ));
    assert!(matches!(
        store.add("x", vec![1.0, f32::NAN, 0.0, 0.0], json!(null)),
        Err(StoreError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        store.query(&[1.0; 5], 1),
        Err(StoreError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        MemoryStore::new(0),
        Err(StoreError::ZeroDimension)
    ));
    assert!(store.is_empty(), "rejected records are not stored");
}

#[test]
fn huge_k_and_huge_dimensions_are_answers_not_aborts() {
    let store = store_with(&["a", "b", "c"], 8);
    assert_eq!(store.query(&embed_text("a", 8), 1 << 40).unwrap().len(), 3);
    assert_eq!(
        store.query(&embed_text("a", 8), usize::MAX).unwrap().len(),
        3
    );
    for dim in [MAX_DIMENSION + 1, 1 << 40, usize::MAX] {
        let err = MemoryStore::new(dim).unwrap_err();
        assert!(matches!(err, StoreError::DimensionTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("limit"), "{err}");
    }
    assert!(MemoryStore::new(MAX_DIMENSION).is_ok());
    assert!(check_dimension(MAX_DIMENSION).is_ok());
    assert!(matches!(check_dimension(0), Err(StoreError::ZeroDimension)));
}

#[test]
fn the_id_counter_stops_at_the_end_instead_of_reusing_ids() {
    let store = MemoryStore::new(2).unwrap();
    store.next_id.store(u64::MAX - 1, Ordering::Relaxed);
    assert_eq!(
        store.add("last", vec![1.0, 0.0], json!(null)).unwrap(),
        u64::MAX - 1
    );
    assert!(matches!(
        store.add("one too many", vec![1.0, 0.0], json!(null)),
        Err(StoreError::IdsExhausted)
    ));
    assert_eq!(store.len(), 1);
}

/// Every cached norm equals the norm of the embedding stored next to it.
fn assert_norms_match(store: &MemoryStore) {
    for entry in store.records.iter() {
        let fresh = kernels::norm(&entry.record.embedding);
        assert_eq!(
            entry.norm.to_bits(),
            fresh.to_bits(),
            "record {}",
            entry.record.id
        );
    }
}

/// The exact cosine similarity, computed from scratch in f64.
fn exact_cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb)) as f32
}

#[test]
fn the_norm_cache_follows_add_update_remove_and_load() {
    let store = MemoryStore::new(3).unwrap();
    let a = store.add("a", vec![1.0, 0.0, 0.0], json!(null)).unwrap();
    let b = store
        .add("b", vec![0.0, 1.0, 0.0], json!({"k": 1}))
        .unwrap();
    assert_norms_match(&store);

    // Same direction, 100x the length: a stale norm would give a score of 100, not 1.
    assert!(store.update(a, vec![0.0, 100.0, 0.0], None, None).unwrap());
    assert_norms_match(&store);
    let hits = store.query(&[0.0, 1.0, 0.0], 2).unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter().all(|h| (h.score - 1.0).abs() < 1e-6),
        "{hits:?}"
    );
    // Text and metadata are kept unless replaced.
    assert_eq!(store.get(a).unwrap().text, "a");
    assert!(
        store
            .update(b, vec![3.0, 4.0, 0.0], Some("b2".into()), None)
            .unwrap()
    );
    let record = store.get(b).unwrap();
    assert_eq!(
        (record.text.as_str(), &record.metadata),
        ("b2", &json!({"k": 1}))
    );
    let query = [1.0, 1.0, 0.5];
    for hit in store.query(&query, 2).unwrap() {
        let expected = exact_cosine(&store.get(hit.id).unwrap().embedding, &query);
        assert!((hit.score - expected).abs() < 1e-5, "{hit:?} vs {expected}");
    }

    // Bad input changes nothing; a removed id is not re-created.
    assert!(store.update(a, vec![1.0], None, None).is_err());
    assert!(
        store
            .update(a, vec![f32::NAN, 0.0, 0.0], None, None)
            .is_err()
    );
    assert_eq!(store.get(a).unwrap().embedding, vec![0.0, 100.0, 0.0]);
    assert!(store.remove(a));
    assert!(!store.update(a, vec![1.0, 0.0, 0.0], None, None).unwrap());
    assert!(!store.update(999, vec![1.0, 0.0, 0.0], None, None).unwrap());
    assert_eq!(store.len(), 1);
    let hits = store.query(&[1.0, 0.0, 0.0], 5).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![b]);

    // Loading recomputes the norms from the stored embeddings.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.bin");
    store.save(&path).unwrap();
    let loaded = MemoryStore::load(&path).unwrap();
    assert_norms_match(&loaded);
    assert_eq!(
        loaded.query(&query, 1).unwrap(),
        store.query(&query, 1).unwrap()
    );
}

#[test]
fn concurrent_updates_never_pair_an_embedding_with_another_norm() {
    let store = std::sync::Arc::new(MemoryStore::new(4).unwrap());
    let id = store
        .add("x", vec![1.0, 0.0, 0.0, 0.0], json!(null))
        .unwrap();
    let writers: Vec<_> = (1..=4)
        .map(|scale| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let s = scale as f32;
                    store
                        .update(id, vec![s, 0.0, 0.0, 0.0], None, None)
                        .unwrap();
                }
            })
        })
        .collect();
    // Whatever length the embedding has at query time, a matching norm gives exactly 1.
    for _ in 0..500 {
        let hits = store.query(&[1.0, 0.0, 0.0, 0.0], 1).unwrap();
        assert!((hits[0].score - 1.0).abs() < 1e-6, "{hits:?}");
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert_norms_match(&store);
}

#[test]
fn ids_are_unique_and_get_remove_work() {
    let store = store_with(&["one", "two"], 8);
    let id = store
        .add("three", embed_text("three", 8), json!(null))
        .unwrap();
    assert_eq!(id, 3);
    assert_eq!(store.get(id).unwrap().text, "three");
    assert!(store.remove(1));
    assert!(!store.remove(1));
    let ids: Vec<u64> = store.records().iter().map(|r| r.id).collect();
    assert_eq!(ids, [2, 3]);
    assert_eq!(store.len(), 2);
    assert!(
        store
            .query(&embed_text("one", 8), 5)
            .unwrap()
            .iter()
            .all(|h| h.id != 1)
    );
}

#[test]
fn concurrent_adds_from_many_threads_are_all_kept() {
    let store = MemoryStore::new(16).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..250 {
                    let text = format!("thread {t} item {i}");
                    store
                        .add(text.clone(), embed_text(&text, 16), json!(null))
                        .unwrap();
                    store.query(&embed_text(&text, 16), 3).unwrap();
                }
            });
        }
    });
    assert_eq!(store.len(), 1000);
}
