//! Predictions of the vector profile: rankings of `search`, with the
//! freedoms section 24 gives (scores within a tolerance, ties in any order).

use tidewire_protocol::{Metric, Search};

use super::*;

/// A candidate with its exact score and tolerance (section 24.2).
struct Scored {
    record: Map<String, Value>,
    score: f64,
    tolerance: f64,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn score(metric: Metric, q: &[f64], v: &[f64]) -> (f64, f64) {
    let dot: f64 = q.iter().zip(v).map(|(a, b)| a * b).sum();
    match metric {
        Metric::Dot => (dot, 1e-3 * norm(q) * norm(v)),
        Metric::Cosine => {
            let cosine = if norm(v) == 0.0 {
                0.0
            } else {
                dot / (norm(q) * norm(v))
            };
            (cosine, 1e-3)
        }
        Metric::Euclidean => {
            let difference: Vec<f64> = q.iter().zip(v).map(|(a, b)| a - b).collect();
            (norm(&difference), 1e-3 * (norm(q) + norm(v)))
        }
    }
}

/// Whether `a` is a better score than `b` by `metric`.
fn better(metric: Metric, a: f64, b: f64) -> std::cmp::Ordering {
    match metric {
        Metric::Euclidean => a.total_cmp(&b),
        Metric::Cosine | Metric::Dot => b.total_cmp(&a),
    }
}

impl Model {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_search(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        vector: [i8; 2],
        k: u8,
        metric: Metric,
        tag: Option<Tag>,
    ) {
        let query: Vec<f64> = vector.iter().map(|x| f64::from(*x)).collect();
        let filter_json = tag.map(|t| json!({"tag": t.as_str()}));
        self.send(
            conn,
            typed(Search {
                id: request_id(id.to_string()),
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                field: "vec".into(),
                vector: query.clone(),
                k: u32::from(k),
                metric,
                filter: wire_filter(&filter_json),
                fields: None,
            }),
            false,
        );
        if metric == Metric::Cosine && query.iter().all(|x| *x == 0.0) {
            self.expect(
                conn,
                error_with(id, ErrorCode::InvalidMessage, json!({"path": "vector"})),
            );
            return;
        }
        // TW-VECTOR-6: the dimension is the collection's, whatever the filter.
        let other_dimension = self.records.entry(coll).or_default().values().any(|r| {
            r.get("vec").and_then(Value::as_array).is_some_and(|v| {
                !v.is_empty() && v.iter().all(Value::is_number) && v.len() != query.len()
            })
        });
        if other_dimension {
            self.expect(
                conn,
                error_with(id, ErrorCode::InvalidMessage, json!({"path": "vector"})),
            );
            return;
        }
        let evaluator = evaluator(&filter_json);
        let mut candidates: Vec<Scored> = self
            .records
            .entry(coll)
            .or_default()
            .values()
            .filter(|r| evaluator.matches(&Value::Object((*r).clone())))
            .filter_map(|r| {
                let stored: Vec<f64> = r
                    .get("vec")?
                    .as_array()?
                    .iter()
                    .map(|x| x.as_f64())
                    .collect::<Option<_>>()?;
                let (score, tolerance) = score(metric, &query, &stored);
                Some(Scored {
                    record: r.clone(),
                    score,
                    tolerance,
                })
            })
            .collect();
        candidates.sort_by(|a, b| better(metric, a.score, b.score));
        // Tie groups along the ranking: neighbours whose scores lie within
        // their summed tolerances may come in either order (TW-VECTOR-3).
        let mut group_of = Vec::with_capacity(candidates.len());
        for (i, c) in candidates.iter().enumerate() {
            let group = match i {
                0 => 0,
                _ => {
                    let previous = &candidates[i - 1];
                    let tied = (c.score - previous.score).abs() <= c.tolerance + previous.tolerance;
                    group_of[i - 1] + usize::from(!tied)
                }
            };
            group_of.push(group);
        }
        let shown = candidates.len().min(usize::from(k));
        let results: Vec<Value> = (0..shown)
            .map(|at| {
                let members: Vec<&Scored> = candidates
                    .iter()
                    .zip(&group_of)
                    .filter(|(_, g)| **g == group_of[at])
                    .map(|(c, _)| c)
                    .collect();
                let low = members
                    .iter()
                    .map(|c| c.score - c.tolerance)
                    .fold(f64::INFINITY, f64::min);
                let high = members
                    .iter()
                    .map(|c| c.score + c.tolerance)
                    .fold(f64::NEG_INFINITY, f64::max);
                let record = match members.as_slice() {
                    [only] => json!({"$literal": Value::Object(only.record.clone())}),
                    tied => {
                        let ids: Vec<String> = tied
                            .iter()
                            .map(|c| c.record["_id"].as_str().unwrap_or_default().to_string())
                            .collect();
                        json!({"_id": {"$regex": format!("^({})$", ids.join("|"))}})
                    }
                };
                json!({"record": record, "score": {"$gte": low, "$lte": high}})
            })
            .collect();
        self.expect(
            conn,
            json!({"type": "search_results", "id": id, "results": results}),
        );
    }
}
