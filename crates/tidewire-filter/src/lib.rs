//! The Tidewire filter language: Mongo-style filters and `$match` pipelines
//! evaluated over JSON documents.
//!
//! ```
//! use serde_json::json;
//! use tidewire_filter::{Filter, Pipeline};
//!
//! let filter = Filter::parse(&json!({
//!     "operationType": {"$in": ["insert", "update"]},
//!     "fullDocument.age": {"$gte": 18},
//!     "fullDocument.tags.0": {"$ilike": "vip%"},
//! }))?;
//! let event = json!({
//!     "operationType": "update",
//!     "fullDocument": {"name": "Ada", "age": 36, "tags": ["VIP-gold"]},
//! });
//! assert!(filter.matches(&event));
//!
//! let pipeline = Pipeline::parse(&json!([
//!     {"$match": {"operationType": "insert"}},
//!     {"$match": {"fullDocument.country": "USA"}},
//! ]))?;
//! assert!(!pipeline.matches(&event));
//! # Ok::<(), tidewire_filter::FilterError>(())
//! ```
//!
//! # Filters
//!
//! A filter is a JSON object. Each key is a field path or a logical operator,
//! and all keys must hold (implicit AND); `{}` matches every document.
//!
//! | key | argument | meaning |
//! |---|---|---|
//! | `$and` / `$or` | non-empty array of filters | all / any of them match |
//! | `$not` | filter | it does not match |
//! | `$text` | string of terms | every term is a word of some string anywhere in the document |
//! | field path | value or operator object | the field satisfies it |
//!
//! A field path is dotted (`fullDocument.address.city`); see [`lookup`]. Its
//! segments must not be empty ([`check_path`]): `a..b`, `.a`, `a.` and `""`
//! are parse errors. A segment that is a canonical decimal integer indexes
//! into an array (`items.0.sku`). Arrays are never traversed implicitly:
//! `items.sku` is missing on `{"items": [{"sku": "A"}]}`. A path that does not
//! resolve is *missing*.
//!
//! A field's value is either an operator object (a non-empty object whose keys
//! all start with `$`; all operators must hold) or a bare value meaning
//! `$eq`. An object with no `$` keys, and `{}`, are bare values; mixing `$`
//! and plain keys is an error.
//!
//! | operator | argument | matches when the field… |
//! |---|---|---|
//! | `$eq` / `$ne` | any value | equals / does not equal it |
//! | `$gt` `$gte` `$lt` `$lte` | number, string or boolean | is of the same type class and compares accordingly |
//! | `$in` / `$nin` | array (may be empty) | equals one / none of the elements |
//! | `$exists` | boolean | is present (even if `null`) / is missing |
//! | `$not` | operator object or bare value | does not satisfy it |
//! | `$like` / `$ilike` | SQL pattern | is a string matching the whole pattern (`$ilike`: case-insensitive) |
//! | `$text` | string of terms | is a string containing every term as a word, case-insensitively |
//!
//! **Equality** is deep JSON equality in which numbers compare by value
//! (`1 == 1.0`, exactly even beyond f64 precision) and object key order is
//! irrelevant. There is no array "contains" shortcut: `{"tags": "a"}` does not
//! match `{"tags": ["a"]}`. Operands of `$eq`, `$ne`, `$in` and `$nin` are
//! literal values, so `{"f": {"$eq": {"$gt": 1}}}` matches the object `{"$gt": 1}`.
//!
//! **Missing fields.** Equality with `null` matches a missing field as well as
//! an explicit `null`, as in MongoDB: `{"f": null}`, `{"f": {"$eq": null}}` and
//! `{"f": {"$in": [null]}}` all match a document without `f`. Equality with
//! anything else never matches a missing field, so `$ne` and `$nin` match it
//! unless their operand contains `null`. `$exists: false` matches only missing
//! fields. Range, `$like`, `$ilike` and `$text` never match a missing field.
//!
//! **Ranges** compare only within one type class: numbers numerically,
//! strings by Unicode code point, booleans with `false < true`. A value of
//! another class never matches (and is not an error). A `null`, array or
//! object operand is a parse error.
//!
//! **Patterns.** In `$like`/`$ilike`, `%` matches any run of characters, `_`
//! exactly one character, and `\` makes the next character literal; a pattern
//! may not end with a lone `\`. `$ilike` lowercases pattern and subject
//! character by character (Unicode lowercase mapping) before matching, so `_`
//! stands for one character of the lowercased subject.
//!
//! **Text.** Words are maximal runs of alphanumeric characters; terms are
//! split by the same rule (so `e-mail` is the two terms `e` and `mail`) and
//! compared after the same lowercasing as `$ilike`. A query without any word
//! is a parse error. Top-level `$text` searches every string value in the
//! document, nested ones included, but not object keys; each term may be found
//! in a different string.
//!
//! # Pipelines
//!
//! A pipeline is an array of stages; v1 knows only `{"$match": filter}`. A
//! document passes when it matches every stage; `[]` passes everything.
//!
//! # Errors and limits
//!
//! Parsing reports the first problem (in document order) as a [`FilterError`]
//! whose `path` locates it, e.g. ``invalid filter at `$and.1.age`: unknown
//! operator `$foo` ``. Nesting of `$and`/`$or`/`$not` is limited to
//! [`MAX_DEPTH`] levels, and the size of a filter to [`BOUNDS`]; within them,
//! evaluating a filter against a document takes time linear in the document.
//!
//! # Sorting
//!
//! [`compare`] is a total order over JSON values (missing first) that agrees
//! with filter equality and range operators, so servers can sort query results
//! consistently with how they filter them.

mod error;
mod filter;
mod path;
mod pattern;
mod value;

pub use error::{FilterError, FilterErrorKind};
pub use filter::{Bounds, Filter, Pipeline, BOUNDS, MAX_DEPTH};
pub use path::{check_path, lookup};
pub use value::compare;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_forms_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug + Default>() {}
        assert_send_sync::<Filter>();
        assert_send_sync::<Pipeline>();
        fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<FilterError>();
    }
}
