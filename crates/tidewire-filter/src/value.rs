//! Equality and the total order over JSON values.
//!
//! Both are defined here, side by side, because filters and sorting must agree:
//! `values_equal(a, b)` holds exactly when `compare(Some(a), Some(b))` is `Equal`.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// A JSON number widened so that every integer serde_json can hold (`i64` and
/// `u64`) is represented exactly; only genuine floats go through `f64`.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else {
            match n.as_f64() {
                Some(f) => Num::Float(f),
                // Only reachable when another crate in the build enables
                // serde_json's `arbitrary_precision`: a literal too large for
                // f64 then reports None, and its sign is all that matters.
                None if n.to_string().starts_with('-') => Num::Float(f64::NEG_INFINITY),
                None => Num::Float(f64::INFINITY),
            }
        }
    }
}

/// Exact comparison of an integer with a float, without rounding the integer
/// into f64 (which would make e.g. `2^53 + 1` equal to `2^53 as f64`).
fn cmp_int_float(i: i128, f: f64) -> Ordering {
    // Every integer we hold lies in [-2^63, 2^64), so floats outside that range
    // are decided without looking at `i`. Inside it, truncation to i128 is exact.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const NEG_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;
    if f >= TWO_POW_64 {
        return Ordering::Less;
    }
    if f < NEG_TWO_POW_63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i.cmp(&(t as i128)) {
        Ordering::Equal => {
            if f > t {
                Ordering::Less
            } else if f < t {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

/// Numeric comparison of two JSON numbers (`1 == 1.0`, `-0.0 == 0`).
pub(crate) fn cmp_numbers(a: &Number, b: &Number) -> Ordering {
    match (Num::of(a), Num::of(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).reverse(),
        // serde_json values never hold NaN, so partial_cmp always succeeds.
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// Position of a value's type class in the sort order; missing sorts first.
fn class_rank(v: Option<&Value>) -> u8 {
    match v {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::Bool(_)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Object(_)) => 6,
    }
}

/// The total order used to sort query results, consistent with filter equality.
///
/// `None` stands for a missing field. Classes sort as
/// missing < null < booleans < numbers < strings < arrays < objects; within a class:
///
/// * booleans: `false < true`;
/// * numbers: by numeric value, exactly (integers are never rounded through f64,
///   so `9007199254740993 > 9007199254740992.0`), and `1 == 1.0`;
/// * strings: by Unicode code point (Rust's `str` ordering);
/// * arrays: lexicographically by element, a proper prefix sorting first;
/// * objects: first by their key lists, each sorted and compared
///   lexicographically, then by the values taken in sorted-key order. Key order
///   in the source document is therefore irrelevant.
///
/// Two values compare `Equal` exactly when the filter `$eq` considers them equal.
///
/// ```
/// use std::cmp::Ordering;
/// use serde_json::json;
/// use tidewire_filter::compare;
///
/// assert_eq!(compare(None, Some(&json!(null))), Ordering::Less);
/// assert_eq!(compare(Some(&json!(1)), Some(&json!(1.0))), Ordering::Equal);
/// assert_eq!(compare(Some(&json!(true)), Some(&json!(0))), Ordering::Less);
/// assert_eq!(compare(Some(&json!("b")), Some(&json!([]))), Ordering::Less);
/// ```
pub fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => compare_values(x, y),
        _ => class_rank(a).cmp(&class_rank(b)),
    }
}

pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y) {
                match compare_values(l, r) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => compare_objects(x, y),
        _ => class_rank(Some(a)).cmp(&class_rank(Some(b))),
    }
}

fn compare_objects(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    let mut xk: Vec<&String> = x.keys().collect();
    let mut yk: Vec<&String> = y.keys().collect();
    xk.sort_unstable();
    yk.sort_unstable();
    match xk.cmp(&yk) {
        Ordering::Equal => {}
        other => return other,
    }
    for k in xk {
        match compare_values(&x[k.as_str()], &y[k.as_str()]) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// Deep equality with numeric comparison of numbers and key-order-insensitive
/// objects. Kept separate from `compare_values` only because it can avoid
/// sorting object keys.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y) == Ordering::Equal,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| values_equal(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(a: Value, b: Value) -> Ordering {
        compare(Some(&a), Some(&b))
    }

    #[test]
    fn integers_beyond_f64_precision_compare_exactly() {
        // 2^53 + 1 rounds to 2^53 in f64; the comparison must not.
        let big = json!(9_007_199_254_740_993_u64);
        let as_float = json!(9_007_199_254_740_992.0_f64);
        assert_eq!(cmp(big.clone(), as_float.clone()), Ordering::Greater);
        assert!(!values_equal(&big, &as_float));
        assert_eq!(cmp(json!(u64::MAX), json!(u64::MAX - 1)), Ordering::Greater);
        assert_eq!(cmp(json!(i64::MIN), json!(u64::MAX)), Ordering::Less);
        // u64::MAX < 2^64 exactly, though `u64::MAX as f64` is 2^64.
        assert_eq!(
            cmp(json!(u64::MAX), json!(18_446_744_073_709_551_616.0_f64)),
            Ordering::Less
        );
        assert_eq!(
            cmp(json!(i64::MIN), json!(-9_223_372_036_854_775_808.0_f64)),
            Ordering::Equal
        );
    }

    #[test]
    fn mixed_int_float_fractions() {
        assert_eq!(cmp(json!(5), json!(5.5)), Ordering::Less);
        assert_eq!(cmp(json!(-5), json!(-5.5)), Ordering::Greater);
        assert_eq!(cmp(json!(-4), json!(-4.5)), Ordering::Greater);
        assert_eq!(cmp(json!(5), json!(4.5)), Ordering::Greater);
        assert_eq!(cmp(json!(0), json!(-0.0)), Ordering::Equal);
        assert_eq!(cmp(json!(1), json!(1.0)), Ordering::Equal);
        assert_eq!(cmp(json!(-1e300), json!(i64::MIN)), Ordering::Less);
        assert_eq!(cmp(json!(1e300), json!(u64::MAX)), Ordering::Greater);
    }

    #[test]
    fn class_order() {
        let ascending = [
            json!(null),
            json!(false),
            json!(true),
            json!(-3),
            json!(2.5),
            json!(""),
            json!("a"),
            json!([]),
            json!([1]),
            json!([1, 2]),
            json!([2]),
            json!({}),
            json!({"a": 2}),
            json!({"a": 1, "b": 0}),
            json!({"b": 0}),
        ];
        assert_eq!(compare(None, Some(&ascending[0])), Ordering::Less);
        for w in ascending.windows(2) {
            assert_eq!(cmp(w[0].clone(), w[1].clone()), Ordering::Less, "{w:?}");
            assert_eq!(cmp(w[1].clone(), w[0].clone()), Ordering::Greater, "{w:?}");
        }
        assert_eq!(compare(None, None), Ordering::Equal);
    }

    #[test]
    fn objects_ignore_key_order() {
        let a = json!({"x": 1, "y": [1, {"p": 2.0, "q": null}]});
        let b = json!({"y": [1.0, {"q": null, "p": 2}], "x": 1});
        assert!(values_equal(&a, &b));
        assert_eq!(cmp(a, b), Ordering::Equal);
    }
}
