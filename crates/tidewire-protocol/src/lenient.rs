//! How the members of client messages are read where JSON allows more than one
//! spelling of the same value (spec section 1.4, TW-DECODE).
//!
//! JSON has one number type: `10`, `10.0`, `1E1` and `-0` are integers to the
//! schemas (JSON Schema's `integer` is any number with a zero fractional part),
//! but serde reads only the first into a `u64`. And an optional member may be
//! written `null` by serializers that do not omit unset fields (TW-CORE-7),
//! which serde reads as absent only for `Option` fields. These deserializers
//! read every such spelling, so that a message valid by its schema decodes.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The largest integer any Tidewire message carries: 2^53 - 1, the largest
/// integer that every JSON parser represents exactly (RFC 7493, section 2.2),
/// so a schema validator working in doubles and the server agree on every
/// bound. The schemas state it as the `maximum` of every 64-bit integer.
pub const MAX_INTEGER: u64 = (1 << 53) - 1;

/// An integer from 0 to [`MAX_INTEGER`], in any JSON spelling.
struct Integer(u64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Integer, D::Error> {
        deserializer.deserialize_any(IntegerVisitor).map(Integer)
    }
}

struct IntegerVisitor;

const EXPECTED: &str = "an integer from 0 to 9007199254740991";

impl Visitor<'_> for IntegerVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        if value <= MAX_INTEGER {
            Ok(value)
        } else {
            Err(E::invalid_value(de::Unexpected::Unsigned(value), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<u64, E> {
        // `-0` and `-0.0` compare equal to 0 and are the integer 0.
        let integral = value.fract() == 0.0 && value >= 0.0 && value <= MAX_INTEGER as f64;
        if integral {
            Ok(value as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(value), &self))
        }
    }
}

/// A required integer member.
pub(crate) fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Integer::deserialize(deserializer).map(|integer| integer.0)
}

/// A required integer member whose type is narrower than 64 bits; its schema
/// bounds it well within that type, so a larger value is refused as out of range.
pub(crate) fn small_integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = integer(deserializer)?;
    T::try_from(value).map_err(|_| {
        de::Error::invalid_value(de::Unexpected::Unsigned(value), &"a smaller integer")
    })
}

/// An optional integer member; `null` is absent.
pub(crate) fn optional_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Option::<Integer>::deserialize(deserializer).map(|integer| integer.map(|i| i.0))
}

/// An optional member whose absence means its default value; `null` is absent.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A required array that the schema says holds at least one item.
pub(crate) fn non_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<T>::deserialize(deserializer)?;
    if items.is_empty() {
        return Err(de::Error::invalid_length(0, &"at least one item"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<u64, String> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        integer(&mut deserializer).map_err(|err| err.to_string())
    }

    #[test]
    fn every_spelling_of_an_integer_reads_as_it() {
        for (text, value) in [
            ("10", 10),
            ("10.0", 10),
            ("1E1", 10),
            ("1e1", 10),
            ("100E-1", 10),
            ("-0", 0),
            ("-0.0", 0),
            ("0E5", 0),
            ("9007199254740991", MAX_INTEGER),
            ("9007199254740991.0", MAX_INTEGER),
        ] {
            assert_eq!(read(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn fractions_negatives_and_values_past_the_bound_are_refused() {
        for text in [
            "10.5",
            "-1",
            "-1.0",
            "9007199254740992",
            "18446744073709551615",
            "18446744073709551616",
            "1E300",
            "\"10\"",
        ] {
            let err = read(text).expect_err(text);
            assert!(
                err.contains(EXPECTED) || err.contains("invalid type"),
                "{text}: {err}"
            );
        }
    }
}
