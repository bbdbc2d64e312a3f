//! JSON values drawn from fuzzer bytes. Keys and strings come mostly from
//! small vocabularies, so that generated filters and records name the same
//! fields and compare equal often enough for evaluation to be exercised.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// How deep generated values nest; deeper values add nothing the parsers do
/// not already see at this depth, and keep each input cheap.
pub const MAX_VALUE_DEPTH: u32 = 4;

/// The most members or elements one generated object or array has.
pub const MAX_WIDTH: usize = 4;

/// Words shared by generated keys and strings.
pub const WORDS: &[&str] = &[
    "a", "b", "c", "0", "1", "name", "age", "tags", "Ada", "ada", "ADA", "x", "", "é", "É", "ß",
    "SS", "σ", "Σ", "$a", "a.b", "%", "_", "\\", "ǅ", "İ",
];

/// A string: usually a word, sometimes two joined, sometimes anything.
pub fn string(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0..=5 => u.choose(WORDS)?.to_string(),
        6 | 7 => format!(
            "{}{}{}",
            u.choose(WORDS)?,
            u.choose(&[" ", "-", "", ".", "%"])?,
            u.choose(WORDS)?
        ),
        _ => {
            let len = u.int_in_range(0..=12)?;
            (0..len)
                .map(|_| u.arbitrary::<char>())
                .collect::<Result<String>>()?
        }
    })
}

/// A number from a set that sits on the interesting boundaries: integers and
/// floats that are equal, values just past f64 precision, the ends of i64 and u64.
pub fn number(u: &mut Unstructured) -> Result<Number> {
    Ok(match u.int_in_range(0..=11)? {
        0 => Number::from(u.int_in_range(-3i64..=3)?),
        1 => Number::from_f64(f64::from(u.int_in_range(-3i8..=3)?)).expect("finite"),
        2 => Number::from_f64(f64::from(u.int_in_range(-3i8..=3)?) + 0.5).expect("finite"),
        3 => Number::from(
            u.choose(&[i64::MIN, i64::MAX, i64::MIN + 1, -(1 << 53) - 1])?
                .to_owned(),
        ),
        4 => Number::from(
            u.choose(&[u64::MAX, 1 << 63, (1 << 53) + 1, 1 << 53])?
                .to_owned(),
        ),
        5 => Number::from_f64(*u.choose(&[
            9.223372036854776e18,
            1.8446744073709552e19,
            9007199254740992.0,
            -9.223372036854776e18,
        ])?)
        .expect("finite"),
        6 => Number::from_f64(*u.choose(&[1e300, -1e300, 5e-324, -0.0, 0.1])?).expect("finite"),
        7 => Number::from(u.arbitrary::<i64>()?),
        8 => Number::from(u.arbitrary::<u64>()?),
        9 => match Number::from_f64(u.arbitrary::<f64>()?) {
            Some(n) => n,
            None => Number::from(0),
        },
        _ => Number::from(u.int_in_range(0i64..=2)?),
    })
}

/// Any JSON value up to `depth` further levels of nesting.
pub fn value(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 5 } else { 7 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 | 3 => Value::Number(number(u)?),
        4 | 5 => Value::String(string(u)?),
        6 => Value::Array(
            (0..u.int_in_range(0..=MAX_WIDTH)?)
                .map(|_| value(u, depth - 1))
                .collect::<Result<_>>()?,
        ),
        _ => Value::Object(object(u, depth - 1)?),
    })
}

/// An object whose keys are words and whose values nest up to `depth` levels.
pub fn object(u: &mut Unstructured, depth: u32) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=MAX_WIDTH)? {
        map.insert(u.choose(WORDS)?.to_string(), value(u, depth)?);
    }
    Ok(map)
}
