//! What a room member says about itself besides its principal: a display name
//! and a small map of application metadata. Both are bounded by the
//! specification (section 11.7), so that a member list stays small enough to
//! send to every joiner; the bound is checked once, here, when a message is
//! decoded, and stated in the schema by the same constants.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// A member's display name: 1 to [`DisplayName::MAX_CHARS`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

/// A display name or metadata map over its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMemberInfo(String);

impl fmt::Display for InvalidMemberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidMemberInfo {}

fn is_control(c: char) -> bool {
    c.is_control()
}

impl DisplayName {
    /// Characters are Unicode scalar values, as JSON Schema's `maxLength` counts them.
    pub const MAX_CHARS: usize = 64;
    /// The regular expression (ECMA-262 flavour) the JSON Schema states.
    pub const PATTERN: &'static str = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,64}$";

    pub fn new(value: impl Into<String>) -> Result<DisplayName, InvalidMemberInfo> {
        let value = value.into();
        let chars = value.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(InvalidMemberInfo(format!(
                "a display name has 1 to {} characters, not {chars}",
                Self::MAX_CHARS
            )));
        }
        if value.chars().any(is_control) {
            return Err(InvalidMemberInfo(
                "a display name has no control characters".into(),
            ));
        }
        Ok(DisplayName(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = InvalidMemberInfo;
    fn try_from(value: String) -> Result<Self, InvalidMemberInfo> {
        DisplayName::new(value)
    }
}

impl From<DisplayName> for String {
    fn from(value: DisplayName) -> String {
        value.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for DisplayName {
    fn schema_name() -> Cow<'static, str> {
        "DisplayName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": DisplayName::MAX_CHARS,
            "pattern": DisplayName::PATTERN,
            "description": "A member's display name: 1 to 64 characters, no control characters.",
        })
    }
}

/// Application metadata of a member: at most [`MemberMetadata::MAX_MEMBERS`]
/// members, each named like a collection (1 to 64 of `A-Z a-z 0-9 _ -`) with a
/// string value of at most [`MemberMetadata::MAX_VALUE_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct MemberMetadata(BTreeMap<String, String>);

impl MemberMetadata {
    pub const MAX_MEMBERS: usize = 16;
    pub const MAX_NAME_CHARS: usize = 64;
    pub const MAX_VALUE_CHARS: usize = 256;
    /// The pattern of a member name, as the JSON Schema states it.
    pub const NAME_PATTERN: &'static str = "^[A-Za-z0-9_-]{1,64}$";

    pub fn new(members: BTreeMap<String, String>) -> Result<MemberMetadata, InvalidMemberInfo> {
        if members.len() > Self::MAX_MEMBERS {
            return Err(InvalidMemberInfo(format!(
                "metadata has at most {} members, not {}",
                Self::MAX_MEMBERS,
                members.len()
            )));
        }
        for (name, value) in &members {
            let name_ok = !name.is_empty()
                && name.len() <= Self::MAX_NAME_CHARS
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                let shown: String = name.chars().take(64).collect();
                return Err(InvalidMemberInfo(format!(
                    "metadata member name {shown:?} is not 1 to {} of A-Z a-z 0-9 _ -",
                    Self::MAX_NAME_CHARS
                )));
            }
            let chars = value.chars().count();
            if chars > Self::MAX_VALUE_CHARS {
                return Err(InvalidMemberInfo(format!(
                    "metadata member {name:?} has {chars} characters, more than {}",
                    Self::MAX_VALUE_CHARS
                )));
            }
        }
        Ok(MemberMetadata(members))
    }

    pub fn members(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for MemberMetadata {
    type Error = InvalidMemberInfo;
    fn try_from(value: BTreeMap<String, String>) -> Result<Self, InvalidMemberInfo> {
        MemberMetadata::new(value)
    }
}

impl From<MemberMetadata> for BTreeMap<String, String> {
    fn from(value: MemberMetadata) -> BTreeMap<String, String> {
        value.0
    }
}

impl JsonSchema for MemberMetadata {
    fn schema_name() -> Cow<'static, str> {
        "MemberMetadata".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "maxProperties": MemberMetadata::MAX_MEMBERS,
            "propertyNames": {"pattern": MemberMetadata::NAME_PATTERN},
            "additionalProperties": {"type": "string", "maxLength": MemberMetadata::MAX_VALUE_CHARS},
            "description": "Application metadata of a room member: at most 16 members, named by 1 to 64 of A-Z a-z 0-9 _ -, each a string of at most 256 characters.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_bounded_in_characters_not_bytes() {
        assert!(DisplayName::new("é".repeat(64)).is_ok());
        assert!(DisplayName::new("é".repeat(65)).is_err());
        assert!(DisplayName::new("").is_err());
        assert!(DisplayName::new("a\nb").is_err());
        let pattern = regex::Regex::new(DisplayName::PATTERN).unwrap();
        for sample in ["Ada", "", "a\u{7}b", &"x".repeat(65), &"ü".repeat(64)] {
            assert_eq!(
                pattern.is_match(sample),
                DisplayName::new(sample).is_ok(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn metadata_is_bounded_in_members_names_and_values() {
        let map = |n: usize, value: &str| -> BTreeMap<String, String> {
            (0..n)
                .map(|i| (format!("k{i}"), value.to_string()))
                .collect()
        };
        assert!(MemberMetadata::new(map(16, &"v".repeat(256))).is_ok());
        assert!(MemberMetadata::new(map(17, "v")).is_err());
        assert!(MemberMetadata::new(map(1, &"v".repeat(257))).is_err());
        let dotted = BTreeMap::from([("a.b".to_string(), "v".to_string())]);
        assert!(MemberMetadata::new(dotted).is_err());
        let err = serde_json::from_str::<MemberMetadata>(r#"{"a b": "v"}"#).unwrap_err();
        assert!(err.to_string().contains("A-Z a-z 0-9"), "{err}");
    }
}

#[cfg(any(test, feature = "arbitrary"))]
mod strategies {
    use proptest::prelude::*;

    use super::*;

    impl Arbitrary for DisplayName {
        type Parameters = ();
        type Strategy = BoxedStrategy<DisplayName>;
        fn arbitrary_with((): ()) -> Self::Strategy {
            "[A-Za-z][A-Za-z0-9 ._-]{0,20}"
                .prop_map(|s| DisplayName::new(s).expect("strategy yields valid names"))
                .boxed()
        }
    }

    impl Arbitrary for MemberMetadata {
        type Parameters = ();
        type Strategy = BoxedStrategy<MemberMetadata>;
        fn arbitrary_with((): ()) -> Self::Strategy {
            prop::collection::btree_map("[a-z][a-z0-9_]{0,8}", "[A-Za-z0-9 ]{0,12}", 0..4)
                .prop_map(|m| MemberMetadata::new(m).expect("strategy yields valid metadata"))
                .boxed()
        }
    }
}
