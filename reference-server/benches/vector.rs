//! Cost of an exact similarity search (spec section 24): 100,000 vectors of
//! 384 dimensions, k = 10, for each metric.
//!
//! `vector/nearest/<metric>` is the server's search (`similarity::nearest`:
//! one pass, a bounded heap, lane-wise sums). `vector/sorted-scan/<metric>`
//! is the plain way, written here: score every vector with a left-to-right
//! sum, sort every score, keep the first k. Both return the same records.
//! Absolute times depend on the machine and its load; read the ratios
//! printed at the end, which come from this run alone.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tidewire_server::similarity::{nearest, Metric, Query};

const VECTORS: usize = 100_000;
const DIMENSIONS: usize = 384;
const K: usize = 10;
const METRICS: [(Metric, &str); 3] = [
    (Metric::Cosine, "cosine"),
    (Metric::Dot, "dot"),
    (Metric::Euclidean, "euclidean"),
];

/// Reproducible vectors with components in [-1, 1), as embeddings have.
fn vectors(seed: u64, count: usize) -> Vec<Vec<f64>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|_| (0..DIMENSIONS).map(|_| rng.f64() * 2.0 - 1.0).collect())
        .collect()
}

fn plain_score(metric: Metric, q: &[f64], v: &[f64]) -> f64 {
    let dot: f64 = q.iter().zip(v).map(|(a, b)| a * b).sum();
    match metric {
        Metric::Dot => dot,
        Metric::Cosine => {
            let nq: f64 = q.iter().map(|a| a * a).sum::<f64>().sqrt();
            let nv: f64 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            dot / (nq * nv)
        }
        Metric::Euclidean => q
            .iter()
            .zip(v)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt(),
    }
}

/// The baseline: every score, one full sort, the first k.
fn sorted_scan(metric: Metric, q: &[f64], stored: &[Vec<f64>], k: usize) -> Vec<(usize, f64)> {
    let mut scored: Vec<(usize, f64)> = stored
        .iter()
        .enumerate()
        .map(|(i, v)| (i, plain_score(metric, q, v)))
        .collect();
    scored.sort_by(|a, b| {
        let by_score = match metric {
            Metric::Euclidean => a.1.total_cmp(&b.1),
            Metric::Cosine | Metric::Dot => b.1.total_cmp(&a.1),
        };
        by_score.then(a.0.cmp(&b.0))
    });
    scored.truncate(k);
    scored
}

fn search(metric: Metric, q: &[f64], stored: &[Vec<f64>], k: usize) -> Vec<(usize, f64)> {
    let query = Query::new(metric, q);
    nearest(
        &query,
        k,
        stored.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
    )
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let stored = vectors(7, VECTORS);
    let queries = vectors(11, 8);
    for (metric, name) in METRICS {
        for q in &queries {
            let ours: Vec<usize> = search(metric, q, &stored, K).iter().map(|r| r.0).collect();
            let plain: Vec<usize> = sorted_scan(metric, q, &stored, K)
                .iter()
                .map(|r| r.0)
                .collect();
            assert_eq!(ours, plain, "{name}: both searches return the same records");
        }
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut times: BTreeMap<(&str, &str), Vec<Duration>> = BTreeMap::new();
    let mut group = criterion.benchmark_group("vector");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(VECTORS as u64));
    for (metric, name) in METRICS {
        for (way, run) in [
            (
                "nearest",
                search as fn(Metric, &[f64], &[Vec<f64>], usize) -> _,
            ),
            ("sorted-scan", sorted_scan),
        ] {
            let mut next = 0;
            let samples = times.entry((name, way)).or_default();
            group.bench_function(BenchmarkId::new(way, name), |b| {
                b.iter_custom(|iters| {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let q = &queries[next % queries.len()];
                        next += 1;
                        black_box(run(metric, black_box(q), &stored, K));
                    }
                    let elapsed = started.elapsed();
                    samples.push(elapsed / iters.max(1) as u32);
                    elapsed
                })
            });
        }
    }
    group.finish();
    criterion.final_summary();

    println!(
        "\nsearch of {VECTORS} vectors of {DIMENSIONS} dimensions, k = {K} (medians of this run):"
    );
    for (_, name) in METRICS {
        let ours = median(times.get_mut(&(name, "nearest")).expect("measured"));
        let plain = median(times.get_mut(&(name, "sorted-scan")).expect("measured"));
        println!(
            "  {name:<9} nearest {:>8.2} ms, sorted scan {:>8.2} ms: {:.2}x the baseline's time",
            ours.as_secs_f64() * 1e3,
            plain.as_secs_f64() * 1e3,
            ours.as_secs_f64() / plain.as_secs_f64()
        );
    }
}
