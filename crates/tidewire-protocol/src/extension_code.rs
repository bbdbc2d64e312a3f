//! Error codes an application defines for itself (section 17.1): a code of
//! the registry, or a name in the reserved namespace `x-`, which no revision of
//! the registry will ever use. Every error also states its recovery class in
//! `retry`, so that a client can act on a code it does not know.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ErrorCode;

/// An application's error code: `x-` then 1 to 62 of `a`-`z`, `0`-`9`, `_`, `.` and `-`,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
// A boxed str, not a String: every `ErrorBody` carries a code, and replies travel as `Result`s.
pub struct ExtensionCode(Box<str>);

impl ExtensionCode {
    pub const PREFIX: &'static str = "x-";
    /// The pattern of an extension code, as the JSON Schema states it.
    pub const PATTERN: &'static str = "^x-[a-z0-9][a-z0-9_.-]{0,61}$";

    pub fn new(code: impl Into<String>) -> Result<ExtensionCode, String> {
        let code = code.into();
        let valid = code.strip_prefix(Self::PREFIX).is_some_and(|name| {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && name.len() <= 62
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
                })
        });
        if valid {
            Ok(ExtensionCode(code.into_boxed_str()))
        } else {
            let shown: String = code.chars().take(64).collect();
            Err(format!(
                "{shown:?} is neither a registry code nor an application code (`x-` and 1 to 62 of a-z 0-9 _ . -)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `code` of an error: one of the registry, or an application's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyErrorCode {
    Registry(ErrorCode),
    Extension(ExtensionCode),
}

impl AnyErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            AnyErrorCode::Registry(code) => code.as_str(),
            AnyErrorCode::Extension(code) => code.as_str(),
        }
    }

    /// The registry code, when it is one.
    pub fn registry(&self) -> Option<ErrorCode> {
        match self {
            AnyErrorCode::Registry(code) => Some(*code),
            AnyErrorCode::Extension(_) => None,
        }
    }
}

impl From<ErrorCode> for AnyErrorCode {
    fn from(code: ErrorCode) -> AnyErrorCode {
        AnyErrorCode::Registry(code)
    }
}

impl From<ExtensionCode> for AnyErrorCode {
    fn from(code: ExtensionCode) -> AnyErrorCode {
        AnyErrorCode::Extension(code)
    }
}

impl PartialEq<ErrorCode> for AnyErrorCode {
    fn eq(&self, other: &ErrorCode) -> bool {
        self.registry() == Some(*other)
    }
}

impl fmt::Display for AnyErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AnyErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AnyErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AnyErrorCode, D::Error> {
        let text = String::deserialize(deserializer)?;
        if let Some(code) = ErrorCode::ALL.into_iter().find(|c| c.as_str() == text) {
            return Ok(AnyErrorCode::Registry(code));
        }
        ExtensionCode::new(text)
            .map(AnyErrorCode::Extension)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for AnyErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "AnyErrorCode".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let registry = generator.subschema_for::<ErrorCode>();
        json_schema!({
            "description": "A code of the error registry (section 17), or an application's own code in the reserved namespace `x-` (section 17.1).",
            "anyOf": [
                registry,
                {"type": "string", "pattern": ExtensionCode::PATTERN},
            ],
        })
    }
}

#[cfg(any(test, feature = "arbitrary"))]
mod strategies {
    use proptest::prelude::*;

    use super::*;

    impl Arbitrary for AnyErrorCode {
        type Parameters = ();
        type Strategy = BoxedStrategy<AnyErrorCode>;
        fn arbitrary_with((): ()) -> Self::Strategy {
            prop_oneof![
                4 => any::<ErrorCode>().prop_map(AnyErrorCode::Registry),
                1 => "x-[a-z][a-z0-9_.-]{0,12}".prop_map(|code| AnyErrorCode::Extension(
                    ExtensionCode::new(code).expect("strategy yields valid codes")
                )),
            ]
            .boxed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_and_the_reserved_namespace_read_back() {
        for code in ErrorCode::ALL {
            let text = serde_json::to_string(&AnyErrorCode::from(code)).unwrap();
            let back: AnyErrorCode = serde_json::from_str(&text).unwrap();
            assert_eq!(back, code);
        }
        let own: AnyErrorCode = serde_json::from_str("\"x-validation_error\"").unwrap();
        assert_eq!(own.registry(), None);
        assert_eq!(own.as_str(), "x-validation_error");
        for bad in [
            "\"validation_error\"",
            "\"x-\"",
            "\"x-Upper\"",
            "\"app.thing\"",
        ] {
            assert!(serde_json::from_str::<AnyErrorCode>(bad).is_err(), "{bad}");
        }
        let pattern = regex::Regex::new(ExtensionCode::PATTERN).unwrap();
        for sample in [
            "x-a",
            "x-hook_error",
            "x-",
            "x-_a",
            &format!("x-{}", "a".repeat(63)),
        ] {
            assert_eq!(
                pattern.is_match(sample),
                ExtensionCode::new(sample).is_ok(),
                "{sample}"
            );
        }
    }
}
