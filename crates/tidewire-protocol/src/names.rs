//! Validated string types. Each carries its rule once: the same function
//! validates on deserialize and describes the rule in the JSON Schema, so
//! the Rust types and the schemas cannot disagree.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

macro_rules! validated_string {
    (
        $doc:literal
        $name:ident, pattern = $pattern:literal, max = $max:literal, allowed = $allowed:expr
    ) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The regular expression (ECMA-262 flavour) the JSON Schema states.
            pub const PATTERN: &'static str = $pattern;
            pub const MAX_LEN: usize = $max;

            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                let allowed: fn(usize, char) -> bool = $allowed;
                let valid = !value.is_empty()
                    && value.len() <= $max
                    && value.chars().enumerate().all(|(index, c)| allowed(index, c));
                if valid {
                    Ok(Self(value))
                } else {
                    Err(InvalidName { kind: stringify!($name), value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidName;
            fn try_from(value: &str) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": $doc,
                    "pattern": $pattern,
                })
            }
        }
    };
}

/// A string did not satisfy the rule of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    kind: &'static str,
    value: String,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.value.chars().take(64).collect();
        write!(f, "{shown:?} is not a valid {}", self.kind)
    }
}

impl std::error::Error for InvalidName {}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_dotted_name_char(index: usize, c: char) -> bool {
    is_word_char(c) || (index > 0 && (c == '.' || c == ':'))
}

validated_string! {
    "A client-chosen request id, echoed in the terminal reply. 1 to 128 printable ASCII characters."
    RequestId, pattern = "^[\\x21-\\x7e]{1,128}$", max = 128, allowed = |_, c| c.is_ascii_graphic()
}

validated_string! {
    "A database or collection name: 1 to 64 of A-Z a-z 0-9 _ -. No dots, so that `database.collection` is unambiguous in scopes."
    CollectionName, pattern = "^[A-Za-z0-9_-]{1,64}$", max = 64, allowed = |_, c| is_word_char(c)
}

validated_string! {
    "A topic, room or document name: 1 to 128 of A-Z a-z 0-9 _ - and, after the first character, . and :."
    Name, pattern = "^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,127}$", max = 128, allowed = is_dotted_name_char
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agrees_with_pattern(pattern: &str, valid: bool, sample: &str) {
        let re = regex::Regex::new(pattern).unwrap();
        assert_eq!(
            re.is_match(sample),
            valid,
            "pattern {pattern} and validator disagree on {sample:?}"
        );
    }

    #[test]
    fn validators_agree_with_their_schema_patterns() {
        let samples = [
            "",
            "a",
            "users",
            "app.users",
            ".hidden",
            "a:b",
            "-x",
            "x y",
            "ünï",
            "a/b",
            "_",
            "topic:metrics.cpu",
            "0",
            "~",
        ];
        for sample in samples {
            agrees_with_pattern(RequestId::PATTERN, RequestId::new(sample).is_ok(), sample);
            agrees_with_pattern(
                CollectionName::PATTERN,
                CollectionName::new(sample).is_ok(),
                sample,
            );
            agrees_with_pattern(Name::PATTERN, Name::new(sample).is_ok(), sample);
        }
        let long = "a".repeat(129);
        assert!(Name::new(&long[..128]).is_ok());
        assert!(Name::new(long.as_str()).is_err());
        assert!(CollectionName::new(&long[..65]).is_err());
        assert!(RequestId::new(&long[..128]).is_ok());
    }

    #[test]
    fn deserialize_rejects_invalid_names() {
        let err = serde_json::from_str::<CollectionName>("\"app.users\"").unwrap_err();
        assert!(
            err.to_string().contains("not a valid CollectionName"),
            "{err}"
        );
    }
}
