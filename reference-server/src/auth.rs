//! Tokens, identities and scopes.
//!
//! A token is either a static token from the tokens file or an HS256 JWT
//! (`sub` = principal, `scope` = space-separated scopes, optional `exp`/`nbf`).
//! Scopes are `*` or `<action>:<kind>:<glob>` where the glob's `*` matches any
//! run of characters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use tidewire_protocol::DisplayName;

use crate::outbound::Conn;

/// The principal of every connection that has not authenticated.
pub const ANONYMOUS: &str = "anonymous";

/// What a static token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticToken {
    pub principal: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The name room members of this token are shown with when their `join` gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A connection's identity: who it is and what it may do.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub principal: String,
    pub scopes: Scopes,
    pub expires_at: Option<SystemTime>,
    /// False for the anonymous identity.
    pub authenticated: bool,
    /// The token's display name (static token `display_name`, JWT claim `name`), when it
    /// names a valid one.
    pub display_name: Option<DisplayName>,
}

impl Identity {
    pub fn anonymous(scopes: &[String]) -> Identity {
        Identity {
            principal: ANONYMOUS.to_string(),
            scopes: Scopes::parse(scopes),
            expires_at: None,
            authenticated: false,
            display_name: None,
        }
    }
}

/// The actions a scope can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Read,
    Write,
    Publish,
    Subscribe,
    Join,
}

impl Action {
    fn scope_prefix(self) -> &'static str {
        match self {
            Action::Read => "read:collection:",
            Action::Write => "write:collection:",
            Action::Publish => "publish:topic:",
            Action::Subscribe => "subscribe:topic:",
            Action::Join => "join:room:",
        }
    }
}

/// A parsed scope list. The original strings are kept for `authenticated.scopes`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scopes {
    pub raw: Vec<String>,
    all: bool,
    grants: Vec<(Action, String)>,
}

impl Scopes {
    /// Unrecognised scope strings grant nothing; they are kept only for display.
    pub fn parse(raw: &[String]) -> Scopes {
        let mut scopes = Scopes {
            raw: raw.to_vec(),
            ..Scopes::default()
        };
        for scope in raw {
            if scope == "*" {
                scopes.all = true;
                continue;
            }
            for action in [
                Action::Read,
                Action::Write,
                Action::Publish,
                Action::Subscribe,
                Action::Join,
            ] {
                if let Some(glob) = scope.strip_prefix(action.scope_prefix()) {
                    if !glob.is_empty() {
                        scopes.grants.push((action, glob.to_string()));
                    }
                }
            }
        }
        scopes
    }

    /// Whether some scope for `action` has a glob matching `target`. A `*` in
    /// `target` is a literal character here, so only a glob that itself reaches
    /// that far (e.g. `app.*` or `*`) allows a wildcard target.
    pub fn allows(&self, action: Action, target: &str) -> bool {
        self.all
            || self
                .grants
                .iter()
                .any(|(a, glob)| *a == action && glob_match(glob, target))
    }
}

/// A subscription's permission to receive one fixed target (a topic, a
/// collection), decided from its connection's scopes and kept until `auth`
/// replaces the connection's identity: a fan-out asks for every subscriber
/// of every publication or change, and reading the scopes each time was a
/// lock, a cache miss and a pattern match per delivery. A narrowing
/// re-authentication still applies to the next delivery.
#[derive(Debug, Default)]
pub(crate) struct Permission {
    /// Zero before the first decision; then the identity version it was
    /// taken for, plus one, shifted left, with the answer in the low bit.
    decided: AtomicU64,
}

impl Permission {
    pub fn allows(&self, conn: &Conn, action: Action, target: &str) -> bool {
        let version = conn.identity_version();
        let decided = self.decided.load(Ordering::Relaxed);
        if decided != 0 && decided >> 1 == version + 1 {
            return decided & 1 == 1;
        }
        let allowed = conn.identity().scopes.allows(action, target);
        self.decided
            .store(((version + 1) << 1) | u64::from(allowed), Ordering::Relaxed);
        allowed
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
///
/// It compares bytes, which for UTF-8 is the same as comparing characters: a
/// literal of the glob starts with an ASCII or a leading byte, which never
/// equals the continuation byte in the middle of a character of `text`, so a
/// match only ever resumes at a character boundary. (It collected both into
/// `Vec<char>` first, two allocations for every scope check.)
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    matches_glob(glob.as_bytes(), text.as_bytes(), b'*')
}

/// Whether `text` matches `glob`, in which `star` matches any run of elements.
fn matches_glob<T: PartialEq + Copy>(glob: &[T], text: &[T], star: T) -> bool {
    // Iterative matcher with backtracking to the last star: linear in practice
    // and never recursive, so hostile globs from a tokens file cannot blow the stack.
    let (mut g, mut t) = (0usize, 0usize);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && glob[g] == star {
            last_star = Some((g, t));
            g += 1;
        } else if g < glob.len() && glob[g] == text[t] {
            g += 1;
            t += 1;
        } else if let Some((star_g, star_t)) = last_star {
            g = star_g + 1;
            t = star_t + 1;
            last_star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == star)
}

/// Why a token was refused. The message is for logs and error replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidToken(pub String);

/// Verifies tokens against the configured static tokens and JWT secret.
#[derive(Debug, Clone, Default)]
pub(crate) struct Authenticator {
    pub tokens: HashMap<String, StaticToken>,
    pub jwt_secret: Option<Vec<u8>>,
}

impl Authenticator {
    pub fn verify(&self, token: &str) -> Result<Identity, InvalidToken> {
        if let Some(grant) = self.tokens.get(token) {
            return Ok(Identity {
                principal: grant.principal.clone(),
                scopes: Scopes::parse(&grant.scopes),
                expires_at: None,
                authenticated: true,
                display_name: token_display_name(grant.display_name.as_deref()),
            });
        }
        match &self.jwt_secret {
            Some(secret) if token.split('.').count() == 3 => {
                let claims = verify_hs256(secret, token, SystemTime::now())?;
                Ok(Identity {
                    principal: claims.subject,
                    scopes: Scopes::parse(&claims.scopes),
                    expires_at: claims.expires_at,
                    authenticated: true,
                    display_name: token_display_name(claims.name.as_deref()),
                })
            }
            _ => Err(InvalidToken("unknown token".into())),
        }
    }
}

/// A token's name is a default only: one that is no valid display name is
/// ignored rather than making the whole token invalid (section 11.7).
fn token_display_name(name: Option<&str>) -> Option<DisplayName> {
    name.and_then(|name| DisplayName::new(name).ok())
}

/// The claims of a verified JWT that Tidewire uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JwtClaims {
    pub subject: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<SystemTime>,
    /// The `name` claim, when it is a string.
    pub name: Option<String>,
}

fn hs256(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length")
}

/// Signs `claims` as an HS256 JWT. Useful in tests that need a token the
/// server accepts: `{"sub": "alice", "scope": "read:collection:*", "exp": 1767225600}`.
pub fn encode_hs256(secret: &[u8], claims: &Value) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut mac = hs256(secret);
    mac.update(signing_input.as_bytes());
    let signature = BASE64URL_NOPAD.encode(&mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn verify_hs256(secret: &[u8], token: &str, now: SystemTime) -> Result<JwtClaims, InvalidToken> {
    let bad = |why: &str| InvalidToken(format!("invalid JWT: {why}"));
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected three parts"));
    };
    let signing_input = &token[..header_part.len() + 1 + payload.len()];
    let header: Value = BASE64URL_NOPAD
        .decode(header_part.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| bad("malformed header"))?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(bad("only HS256 is accepted"));
    }
    let signature = BASE64URL_NOPAD
        .decode(signature.as_bytes())
        .map_err(|_| bad("malformed signature"))?;
    let mut mac = hs256(secret);
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| bad("signature mismatch"))?;
    let claims: Value = BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| bad("malformed claims"))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("missing `sub`"))?
        .to_string();
    let scopes = match claims.get("scope") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(_) => return Err(bad("`scope` must be a string")),
    };
    let instant = |name: &str| -> Result<Option<SystemTime>, InvalidToken> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let seconds = value
                    .as_f64()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| bad(&format!("`{name}` must be a number of seconds")))?;
                Ok(Some(
                    UNIX_EPOCH + Duration::from_secs_f64(seconds.min(1e11)),
                ))
            }
        }
    };
    let expires_at = instant("exp")?;
    if expires_at.is_some_and(|exp| exp <= now) {
        return Err(bad("expired"));
    }
    if instant("nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(bad("not yet valid"));
    }
    let name = claims
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(JwtClaims {
        subject,
        scopes,
        expires_at,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_permission_follows_the_identity_that_replaces_another() {
        let bound = crate::outbound::QueueBound {
            messages: 1,
            bytes: 1,
        };
        let scopes = |raw: &str| Identity::anonymous(&[raw.to_string()]);
        let (conn, _rx) = Conn::new(1, "c1".into(), scopes("read:collection:app.*"), bound);
        let permission = Permission::default();
        let reads = |collection: &str| permission.allows(&conn, Action::Read, collection);
        assert!(reads("app.users"));
        assert!(reads("app.users"));
        for (raw, allowed) in [
            ("read:collection:other.*", false),
            ("*", true),
            ("write:collection:app.users", false),
        ] {
            *conn.identity_mut() = scopes(raw);
            assert_eq!(reads("app.users"), allowed, "{raw}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "app.users"));
        assert!(glob_match("app.*", "app.users"));
        assert!(glob_match("app.*", "app.*"));
        assert!(!glob_match("app.users", "app.*"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcdf"));
        assert!(glob_match("metrics.*.cpu", "metrics.host1.cpu"));
        assert!(!glob_match("chat", "chat2"));
        assert!(glob_match("é*ü", "éxü"));
        assert!(glob_match("*é", "aé"));
        assert!(glob_match("a*", "aé"));
        assert!(glob_match("a*é*", "aüéü"));
        assert!(!glob_match("é", "e"));
        assert!(!glob_match("*ü", "aé"));
    }

    #[test]
    fn watch_targets_take_their_star_literally() {
        let scopes = Scopes::parse(&["read:collection:app.*".to_string()]);
        assert!(scopes.allows(Action::Read, "app.users"));
        assert!(scopes.allows(Action::Read, "app.*"));
        assert!(!scopes.allows(Action::Read, "*"));
        assert!(!scopes.allows(Action::Write, "app.users"));
        assert!(!scopes.allows(Action::Read, "other.users"));
        let all = Scopes::parse(&["*".to_string()]);
        assert!(all.allows(Action::Join, "anything"));
    }

    #[test]
    fn jwt_round_trip_and_rejections() {
        let secret = b"s3cret";
        let now = SystemTime::now();
        let exp = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 60;
        let token = encode_hs256(
            secret,
            &json!({"sub": "alice", "scope": "read:collection:* join:room:x", "exp": exp}),
        );
        let claims = verify_hs256(secret, &token, now).unwrap();
        assert_eq!(claims.subject, "alice");
        assert_eq!(claims.scopes, vec!["read:collection:*", "join:room:x"]);
        assert!(claims.expires_at.is_some());
        assert!(verify_hs256(b"other", &token, now).is_err());
        let later = now + Duration::from_secs(120);
        assert_eq!(
            verify_hs256(secret, &token, later).unwrap_err().0,
            "invalid JWT: expired"
        );
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(verify_hs256(secret, &tampered, now).is_err());
        let no_sub = encode_hs256(secret, &json!({"scope": "*"}));
        assert!(verify_hs256(secret, &no_sub, now).is_err());
        assert!(verify_hs256(secret, "a.b", now).is_err());
    }
}

#[cfg(test)]
mod glob_properties {
    use proptest::prelude::*;

    use super::{glob_match, matches_glob};

    /// The same matcher over characters, as `glob_match` once ran it.
    fn by_chars(glob: &str, text: &str) -> bool {
        let glob: Vec<char> = glob.chars().collect();
        let text: Vec<char> = text.chars().collect();
        matches_glob(&glob, &text, '*')
    }

    proptest! {
        #[test]
        fn bytes_match_as_characters_do(glob in "[a.é€😀*]{0,8}", text in "[a.é€😀]{0,8}") {
            prop_assert_eq!(glob_match(&glob, &text), by_chars(&glob, &text));
        }
    }
}
