//! Tokens (section 6.2): static tokens and HS256 JWTs. The invariant that
//! matters most: no token is accepted as a JWT unless its HMAC-SHA256
//! signature, recomputed here, verifies under the configured secret.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Unstructured;
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use tidewire_server::fuzzing::{glob_match, verify_token, Granted};
use tidewire_server::StaticToken;

use crate::gen;

const SECRET: &[u8] = b"fuzz-secret";
const STATIC_TOKEN: &str = "static-token";

/// Fuzz target `auth_token`: a raw token, or a JWT built and signed from the
/// bytes and then possibly damaged, verified by the server's authenticator;
/// and a scope glob matched against a target.
pub fn check_token(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(mode) = u.int_in_range(0u8..=3) else {
        return;
    };
    match mode {
        0 => check_verification(&String::from_utf8_lossy(u.take_rest())),
        1 => {
            if let Ok((glob, text)) = glob_case(&mut u) {
                assert_eq!(
                    glob_match(&glob, &text),
                    reference_glob(&glob, &text),
                    "glob {glob:?} on {text:?}"
                );
            }
        }
        _ => {
            if let Ok(token) = shaped_jwt(&mut u) {
                check_verification(&token);
            }
        }
    }
}

fn glob_case(u: &mut Unstructured) -> arbitrary::Result<(String, String)> {
    let part = |u: &mut Unstructured, max: usize| -> arbitrary::Result<String> {
        (0..u.int_in_range(0..=max)?)
            .map(|_| Ok(*u.choose(&['a', 'b', '*', '.', 'é'])?))
            .collect()
    };
    Ok((part(u, 8)?, part(u, 12)?))
}

/// `*` matches any run of characters; dynamic programming over both strings.
fn reference_glob(glob: &str, text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for g in glob.chars() {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = if g == '*' {
                reachable[..=j].iter().any(|r| *r)
            } else {
                j > 0 && reachable[j - 1] && text[j - 1] == g
            };
        }
        reachable = next;
    }
    reachable[text.len()]
}

fn shaped_jwt(u: &mut Unstructured) -> arbitrary::Result<String> {
    let mut header = Map::new();
    let alg = match u.int_in_range(0..=7)? {
        0 => gen::value(u, 0)?,
        1 => Value::String(
            u.choose(&["none", "HS512", "hs256", "RS256", ""])?
                .to_string(),
        ),
        _ => Value::String("HS256".into()),
    };
    if u.ratio(15, 16)? {
        header.insert("alg".into(), alg);
    }
    if u.ratio(1, 2)? {
        header.insert("typ".into(), Value::String("JWT".into()));
    }
    let mut claims = Map::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    for name in ["sub", "scope", "exp", "nbf"] {
        if u.ratio(1, 4)? {
            continue;
        }
        let value = match (name, u.int_in_range(0..=3)?) {
            (_, 0) => gen::value(u, 1)?,
            ("sub", _) => Value::String(u.choose(&["alice", "", "b o b"])?.to_string()),
            ("scope", _) => Value::String(
                u.choose(&["*", "read:collection:*", " a  b ", ""])?
                    .to_string(),
            ),
            (_, offset) => {
                let delta = [-3600.0, 3600.0, 0.5][offset as usize - 1];
                serde_json::Number::from_f64((now + delta).floor())
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        };
        claims.insert(name.into(), value);
    }
    let header = Value::Object(header).to_string();
    let claims = Value::Object(claims).to_string();
    let signing_input = format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(header.as_bytes()),
        BASE64URL_NOPAD.encode(claims.as_bytes())
    );
    let key: &[u8] = if u.ratio(7, 8)? {
        SECRET
    } else {
        b"another-secret"
    };
    let signature = BASE64URL_NOPAD.encode(&hmac(key, signing_input.as_bytes()));
    let mut token = format!("{signing_input}.{signature}").into_bytes();
    // Damage: flip bytes anywhere, or cut the token short.
    for _ in 0..u.int_in_range(0..=2)? {
        if token.is_empty() {
            break;
        }
        let at = u.choose_index(token.len())?;
        token[at] ^= u.int_in_range(1u8..=0x7f)?;
    }
    if u.ratio(1, 16)? {
        let keep = u.int_in_range(0..=token.len())?;
        token.truncate(keep);
    }
    Ok(String::from_utf8_lossy(&token).into_owned())
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The claims a valid, signed, unexpired JWT must yield, or `None`.
fn reference_jwt(token: &str, now: SystemTime) -> Option<Granted> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let signed = hmac(SECRET, format!("{header}.{payload}").as_bytes());
    if BASE64URL_NOPAD.decode(signature.as_bytes()).ok()? != signed {
        return None;
    }
    let header: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).ok()?).ok()?;
    if header.get("alg")? != "HS256" {
        return None;
    }
    let claims: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).ok()?).ok()?;
    let principal = claims
        .get("sub")?
        .as_str()
        .filter(|s| !s.is_empty())?
        .to_string();
    let scopes = match claims.get("scope") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(_) => return None,
    };
    let instant = |name: &str| -> Result<Option<SystemTime>, ()> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_f64() {
                Some(s) if s >= 0.0 => Ok(Some(UNIX_EPOCH + Duration::from_secs_f64(s.min(1e11)))),
                _ => Err(()),
            },
        }
    };
    let expires_at = instant("exp").ok()?;
    if expires_at.is_some_and(|exp| exp <= now) {
        return None;
    }
    if instant("nbf").ok()?.is_some_and(|nbf| nbf > now) {
        return None;
    }
    Some(Granted {
        principal,
        scopes,
        expires_at,
    })
}

fn check_verification(token: &str) {
    let statics = HashMap::from([(
        STATIC_TOKEN.to_string(),
        StaticToken {
            principal: "static".into(),
            scopes: vec!["*".into()],
            display_name: None,
        },
    )]);
    let before = SystemTime::now();
    let got = verify_token(&statics, Some(SECRET), token);
    let after = SystemTime::now();
    if token == STATIC_TOKEN {
        assert_eq!(got.map(|g| g.principal).as_deref(), Ok("static"));
        return;
    }
    // `exp` and `nbf` are judged at some instant between these two.
    let (early, late) = (reference_jwt(token, before), reference_jwt(token, after));
    match got {
        Ok(granted) => {
            assert!(
                early.as_ref() == Some(&granted) || late.as_ref() == Some(&granted),
                "accepted {token:?} as {granted:?}; the reference grants {early:?}"
            );
        }
        Err(why) => assert!(
            early.is_none() || late.is_none(),
            "refused {token:?} ({why}); the reference grants {early:?}"
        ),
    }
    // Without a secret no token but a static one is accepted.
    assert!(
        verify_token(&statics, None, token).is_err(),
        "{token:?} accepted without a secret"
    );
}
