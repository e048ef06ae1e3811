//! Bounded top-k selection: the `k` best-scored items of a stream of any length.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// One ranked row: its index in the matrix and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub index: usize,
    pub score: f32,
}

/// Heap entry ordered so that "greater" means "ranks better": higher score, then lower index.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    /// The score used for ordering: NaN mapped to -inf so it never outranks a real score.
    key: f32,
    scored: Scored,
}

impl Ranked {
    #[inline]
    fn new(index: usize, score: f32) -> Self {
        Ranked {
            key: sort_key(score),
            scored: Scored { index, score },
        }
    }
}

#[inline(always)]
fn sort_key(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else {
        score
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then_with(|| other.scored.index.cmp(&self.scored.index))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// How many heap slots are reserved up front at most. A caller asking for the top 2^40 of a
/// small stream must get the whole stream back, not an allocation failure: beyond this the
/// heap grows only as items actually arrive.
const MAX_PREALLOCATED: usize = 4096;

/// Keeps the `k` best-scored items seen so far in a bounded min-heap (the worst kept item on
/// top), so a stream of any length is ranked in O(n · log k) time and O(min(k, n)) memory.
#[derive(Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
    /// Sort key of the worst kept item once `k` are kept (-inf before): an item scoring
    /// below it is rejected with one comparison, the common case in a long scan.
    floor: f32,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(MAX_PREALLOCATED)),
            floor: f32::NEG_INFINITY,
        }
    }

    /// Offers an item; it is kept if it ranks among the best `k` so far.
    #[inline(always)]
    pub fn push(&mut self, index: usize, score: f32) {
        // The common case of a long scan, inlined into the kernels: below the floor.
        if sort_key(score) >= self.floor {
            self.offer(index, score);
        }
    }

    #[inline(never)]
    fn offer(&mut self, index: usize, score: f32) {
        if self.k == 0 {
            return;
        }
        let candidate = Ranked::new(index, score);
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate > worst.0
        {
            *worst = Reverse(candidate);
        } else {
            return;
        }
        if self.heap.len() == self.k
            && let Some(worst) = self.heap.peek()
        {
            self.floor = worst.0.key;
        }
    }

    /// The kept items, best first.
    pub fn into_sorted_vec(self) -> Vec<Scored> {
        // Ascending order of `Reverse<Ranked>` is best-ranked first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(r)| r.scored)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_and_breaks_ties_by_lower_index() {
        let mut top = TopK::new(3);
        for (index, score) in [0.1, 0.9, 0.5, 0.9, -1.0, 0.7].into_iter().enumerate() {
            top.push(index, score);
        }
        let got: Vec<(usize, f32)> = top
            .into_sorted_vec()
            .iter()
            .map(|s| (s.index, s.score))
            .collect();
        assert_eq!(got, vec![(1, 0.9), (3, 0.9), (5, 0.7)]);
    }

    #[test]
    fn ties_at_the_floor_go_to_the_lower_index_whatever_the_arrival_order() {
        // Store ids arrive in hash order, not ascending: an equal score with a lower index
        // must still replace the kept one.
        let mut top = TopK::new(2);
        for (index, score) in [(9, 0.5), (8, 0.5), (1, 0.5), (7, 0.9)] {
            top.push(index, score);
        }
        let got: Vec<usize> = top.into_sorted_vec().iter().map(|s| s.index).collect();
        assert_eq!(got, vec![7, 1]);
    }

    #[test]
    fn nan_ranks_below_every_number_and_k_zero_keeps_nothing() {
        let mut top = TopK::new(2);
        top.push(0, f32::NAN);
        top.push(1, f32::NEG_INFINITY);
        top.push(2, -1.0);
        let got: Vec<usize> = top.into_sorted_vec().iter().map(|s| s.index).collect();
        assert_eq!(
            got,
            vec![2, 0],
            "NaN ties with -inf and wins by its lower index"
        );
        let mut none = TopK::new(0);
        none.push(0, 1.0);
        assert!(none.into_sorted_vec().is_empty());
    }

    #[test]
    fn a_huge_k_reserves_only_a_bounded_heap() {
        let mut top = TopK::new(1 << 40);
        for index in 0..10 {
            top.push(index, index as f32);
        }
        assert_eq!(top.into_sorted_vec().len(), 10);
    }
}
