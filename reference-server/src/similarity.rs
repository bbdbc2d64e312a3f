//! Exact k-nearest-neighbour search, the engine of the `vector` profile
//! (spec section 24).
//!
//! Every candidate is scored, and a bounded heap keeps the `k` best seen so
//! far, so a search costs one pass over the candidates and O(log k) per kept
//! one, instead of sorting every score. Scores are computed in `f64` with
//! several independent accumulators, which lets the compiler use SIMD lanes;
//! the result differs from a left-to-right sum only in rounding, far inside
//! the tolerance the specification allows.
//!
//! An approximate index (HNSW, IVF) would make a search sublinear, but it may
//! miss true neighbours, which section 24 does not allow; see its
//! implementation notes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

pub use tidewire_protocol::Metric;

/// Independent partial sums per score, a multiple of the SIMD widths in use.
const LANES: usize = 8;

/// The dot product of two vectors of one length.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    let tail: f64 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f64>() + tail
}

/// The squared Euclidean distance of two vectors of one length.
pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let d = x[lane] - y[lane];
            sums[lane] += d * d;
        }
    }
    let tail: f64 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    sums.iter().sum::<f64>() + tail
}

/// A query prepared once for scoring many candidates.
pub struct Query<'q> {
    pub metric: Metric,
    pub vector: &'q [f64],
    norm: f64,
}

impl<'q> Query<'q> {
    pub fn new(metric: Metric, vector: &'q [f64]) -> Query<'q> {
        Query {
            metric,
            vector,
            norm: dot(vector, vector).sqrt(),
        }
    }

    /// The score section 24 defines for `stored`, which has the query's length.
    pub fn score(&self, stored: &[f64]) -> f64 {
        match self.metric {
            Metric::Dot => dot(self.vector, stored),
            Metric::Euclidean => squared_distance(self.vector, stored).sqrt(),
            Metric::Cosine => self.cosine(stored),
        }
    }

    fn cosine(&self, stored: &[f64]) -> f64 {
        let norm = dot(stored, stored).sqrt();
        if norm == 0.0 || self.norm == 0.0 {
            // Section 24: a zero vector is as near to anything as an orthogonal one.
            return 0.0;
        }
        (dot(self.vector, stored) / (norm * self.norm)).clamp(-1.0, 1.0)
    }

    /// A number that orders candidates best first, cheaper than the score
    /// where it can be: the squared distance orders as the distance does.
    fn rank(&self, stored: &[f64]) -> f64 {
        match self.metric {
            Metric::Dot => -dot(self.vector, stored),
            Metric::Euclidean => squared_distance(self.vector, stored),
            Metric::Cosine => -self.cosine(stored),
        }
    }

    /// The score of a candidate from its rank.
    fn score_of_rank(&self, rank: f64) -> f64 {
        match self.metric {
            Metric::Dot | Metric::Cosine => -rank,
            Metric::Euclidean => rank.sqrt(),
        }
    }
}

/// A kept candidate; the heap's greatest is the worst kept so far.
struct Kept<K> {
    rank: f64,
    key: K,
}

impl<K: Ord> Ord for Kept<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .total_cmp(&other.rank)
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl<K: Ord> PartialOrd for Kept<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> PartialEq for Kept<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl<K: Ord> Eq for Kept<K> {}

/// The `k` best candidates with their scores, best first. Candidates of
/// equal score come in ascending `key` order; a caller that wants another
/// order among ties passes keys that sort that way.
pub fn nearest<'v, K: Ord>(
    query: &Query,
    k: usize,
    candidates: impl IntoIterator<Item = (K, &'v [f64])>,
) -> Vec<(K, f64)> {
    if k == 0 {
        return Vec::new();
    }
    let mut kept: BinaryHeap<Kept<K>> = BinaryHeap::with_capacity(k.min(1024) + 1);
    for (key, stored) in candidates {
        let rank = query.rank(stored);
        if kept.len() < k {
            kept.push(Kept { rank, key });
            continue;
        }
        let worst = kept.peek().expect("k > 0 candidates are kept");
        let better = rank
            .total_cmp(&worst.rank)
            .then_with(|| key.cmp(&worst.key))
            .is_lt();
        if better {
            kept.pop();
            kept.push(Kept { rank, key });
        }
    }
    kept.into_sorted_vec()
        .into_iter()
        .map(|Kept { rank, key }| (key, query.score_of_rank(rank)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain way: score everything, sort everything.
    fn sorted_scan(query: &Query, k: usize, candidates: &[(u32, &[f64])]) -> Vec<(u32, f64)> {
        let better_first = |a: &(u32, f64), b: &(u32, f64)| {
            let by_score = match query.metric {
                Metric::Euclidean => a.1.total_cmp(&b.1),
                Metric::Dot | Metric::Cosine => b.1.total_cmp(&a.1),
            };
            by_score.then(a.0.cmp(&b.0))
        };
        let mut all: Vec<(u32, f64)> = candidates
            .iter()
            .map(|(key, v)| (*key, query.score(v)))
            .collect();
        all.sort_by(better_first);
        all.truncate(k);
        all
    }

    fn vectors(n: u32, dims: usize) -> Vec<Vec<f64>> {
        // A fixed, spread-out sequence, with repeats so that ties occur.
        (0..n)
            .map(|i| {
                (0..dims)
                    .map(|d| f64::from((i * 7 + d as u32 * 13) % 11) - 5.0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn agrees_with_a_full_sort_for_every_metric_and_k() {
        let stored = vectors(60, 19);
        let candidates: Vec<(u32, &[f64])> = stored
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u32, v.as_slice()))
            .collect();
        let query_vector: Vec<f64> = (0..19).map(|d| f64::from(d % 5) - 2.0).collect();
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            let query = Query::new(metric, &query_vector);
            for k in [1, 3, 10, 60, 100] {
                let fast = nearest(&query, k, candidates.iter().copied());
                let plain = sorted_scan(&query, k, &candidates);
                assert_eq!(fast.len(), plain.len(), "{metric:?} k={k}");
                for (f, p) in fast.iter().zip(&plain) {
                    assert_eq!(f.0, p.0, "{metric:?} k={k}");
                    assert!((f.1 - p.1).abs() <= 1e-9 * (1.0 + p.1.abs()), "{f:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn scores_follow_their_definitions() {
        let q = [3.0, 4.0];
        assert_eq!(Query::new(Metric::Dot, &q).score(&[1.0, 2.0]), 11.0);
        assert_eq!(Query::new(Metric::Euclidean, &q).score(&[0.0, 0.0]), 5.0);
        let cosine = Query::new(Metric::Cosine, &q);
        assert!((cosine.score(&[6.0, 8.0]) - 1.0).abs() < 1e-12);
        assert!((cosine.score(&[-4.0, 3.0])).abs() < 1e-12);
        assert_eq!(cosine.score(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn no_candidates_or_k_zero_give_nothing() {
        let q = [1.0];
        let query = Query::new(Metric::Dot, &q);
        assert!(nearest::<u32>(&query, 5, []).is_empty());
        assert!(nearest(&query, 0, [(1u32, &q[..])]).is_empty());
    }
}
