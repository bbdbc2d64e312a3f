//! Predictions for requests whose shape a rule is about: integers in every
//! JSON spelling and at their bound, `null` as absence (section 4.5), watch
//! filters on paths no change event has (section 8.4) and searches out of
//! range (section 24.3).

use tidewire_protocol::{Metric, Search, MAX_INTEGER};

use super::*;
use crate::{ReadSpelling, SearchBound, INTEGER_FORMS, UNMATCHABLE_PATHS};

/// The most records a `read` without `limit` returns, more than the model writes.
const DEFAULT_LIMIT: usize = 100;

impl Model {
    pub(super) fn apply_spelled_read(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        spelling: ReadSpelling,
    ) {
        let mut request = read_by_id(id, collection(coll), &None);
        let all = self.literal_records(coll);
        let total = all.len();
        let page = |limit: usize, offset: usize| -> Vec<Value> {
            all.iter().skip(offset).take(limit).cloned().collect()
        };
        let mut unordered = false;
        let (text, records) = match spelling {
            ReadSpelling::NullMembers => {
                // Without `sort` the order is the server's.
                for member in ["filter", "sort", "limit", "offset", "fields"] {
                    request[member] = Value::Null;
                }
                unordered = true;
                // Valid once its `null`s are removed (TW-DECODE-1), not before.
                self.send(conn, request.clone(), true);
                (None, page(DEFAULT_LIMIT, 0))
            }
            ReadSpelling::Limit { limit, form } => {
                request["limit"] = json!(limit);
                let spelled = INTEGER_FORMS[usize::from(form) % INTEGER_FORMS.len()]
                    .replace("{}", &limit.to_string());
                let text = request.to_string().replace(
                    &format!("\"limit\":{limit}"),
                    &format!("\"limit\":{spelled}"),
                );
                (Some(text), page(usize::from(limit), 0))
            }
            ReadSpelling::NegativeZeroOffset => {
                request["offset"] = json!(0);
                let text = request.to_string().replace("\"offset\":0", "\"offset\":-0");
                (Some(text), page(DEFAULT_LIMIT, 0))
            }
            ReadSpelling::AtBound { offset } => {
                if offset {
                    // TW-DECODE-4: an offset past the last match is an empty page.
                    request["offset"] = json!(MAX_INTEGER);
                    (None, Vec::new())
                } else {
                    // Clamped to 1000, more than the collection holds.
                    request["limit"] = json!(MAX_INTEGER);
                    (None, page(usize::MAX, 0))
                }
            }
            ReadSpelling::BeyondBound { offset } => {
                let member = if offset { "offset" } else { "limit" };
                request[member] = json!(MAX_INTEGER + 1);
                self.send(conn, request, true);
                self.expect(
                    conn,
                    error_with(id, ErrorCode::InvalidMessage, json!({ "path": member })),
                );
                return;
            }
        };
        match (text, spelling) {
            (Some(text), _) => self.send_text(conn, json!({ "text": text })),
            (None, ReadSpelling::NullMembers) => {}
            (None, _) => self.send(conn, request, false),
        }
        let count = records.len();
        let records = if unordered {
            json!({"$contains": records, "$length": count})
        } else {
            Value::Array(records)
        };
        self.expect(
            conn,
            json!({
                "type": "records", "id": id,
                "records": records, "total": total, "count": count,
            }),
        );
    }

    pub(super) fn apply_unmatchable_watch(
        &mut self,
        conn: usize,
        id: &str,
        coll: Option<u8>,
        path: u8,
        pipeline: bool,
    ) {
        let path = UNMATCHABLE_PATHS[usize::from(path) % UNMATCHABLE_PATHS.len()];
        let mut request =
            watch_request(id.to_string(), DATABASE.into(), coll.map(collection), &None);
        let condition = json!({ path: {"$exists": true} });
        // TW-PATH-1 locates the key as section 15.9 locates filter problems.
        let location = if pipeline {
            request["pipeline"] = json!([
                {"$match": {"operation_type": {"$ne": "delete"}}},
                {"$match": condition},
            ]);
            format!("pipeline.1.$match.{path}")
        } else {
            request["filter"] = condition;
            format!("filter.{path}")
        };
        self.send(conn, request, false);
        self.expect(
            conn,
            error_with(id, ErrorCode::InvalidMessage, json!({ "path": location })),
        );
    }

    pub(super) fn apply_search_out_of_range(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        bound: SearchBound,
    ) {
        let mut vector = vec![1.0, 2.0];
        let mut k = 1;
        let location = match bound {
            SearchBound::KZero => {
                k = 0;
                "k".to_string()
            }
            SearchBound::KOverMax => {
                k = 1001;
                "k".to_string()
            }
            SearchBound::Component { at, negative } => {
                let at = usize::from(at) % vector.len();
                // Just over 10^15, and exactly representable.
                vector[at] = if negative {
                    -1.0e15 - 2.0
                } else {
                    1.0e15 + 2.0
                };
                format!("vector[{at}]")
            }
        };
        self.send(
            conn,
            typed(Search {
                id: request_id(id.to_string()),
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                field: "vec".into(),
                vector,
                k,
                metric: Metric::Dot,
                filter: None,
                fields: None,
            }),
            true,
        );
        self.expect(
            conn,
            error_with(id, ErrorCode::InvalidMessage, json!({ "path": location })),
        );
    }
}
