use std::fmt;

/// A filter or pipeline that cannot be parsed.
///
/// `path` locates the problem inside the filter (or pipeline) JSON: object keys
/// and array indices joined by `.`, e.g. `$and.1.age` or, in a pipeline,
/// `0.$match.status`. It is empty when the problem is the whole value.
/// Errors about a key (unknown operator, bad field path) point at the object
/// that holds the key; errors about a value point at the value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// Location of the offending value inside the filter.
    pub path: String,
    /// What is wrong with it.
    pub kind: FilterErrorKind,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid filter: {}", self.kind)
        } else {
            write!(f, "invalid filter at `{}`: {}", self.path, self.kind)
        }
    }
}

impl std::error::Error for FilterError {}

/// The kinds of [`FilterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// A `$`-prefixed key that is not an operator valid in that position.
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),
    /// `$and`, `$or`, `$in`, `$nin` or a pipeline was not an array.
    #[error("expected an array")]
    ExpectedArray,
    /// A filter, `$not` filter or pipeline stage was not an object.
    #[error("expected an object")]
    ExpectedObject,
    /// `$and` or `$or` with no elements.
    #[error("expected a non-empty array")]
    EmptyArray,
    /// An operator's argument has the wrong type or form.
    #[error("invalid operand for `{operator}`: expected {expected}")]
    InvalidOperand {
        /// The operator, e.g. `$exists`.
        operator: String,
        /// What the operator accepts, as a noun phrase.
        expected: &'static str,
    },
    /// A field's object value has both `$` operator keys and plain keys.
    #[error("object mixes operators with field names")]
    MixedOperatorObject,
    /// A field path with an empty segment (`""`, `a..b`, `.a`, `a.`).
    #[error("invalid field path `{0}`: empty segment")]
    InvalidPath(String),
    /// A pipeline stage other than `$match`.
    #[error("unknown pipeline stage `{0}`")]
    UnknownStage(String),
    /// A pipeline stage object without exactly one key.
    #[error("a pipeline stage must have exactly one key, found {0}")]
    StageKeyCount(usize),
    /// More than [`MAX_DEPTH`](crate::MAX_DEPTH) nested `$and`/`$or`/`$not`.
    #[error("nesting exceeds the maximum depth of {0}")]
    TooDeep(usize),
    /// A part of the filter is larger than its bound (see [`Bounds`](crate::Bounds)).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What is too large, as a noun phrase, e.g. "`$or` branches".
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}
