//! Whether a server's `Sec-WebSocket-Extensions` answer is one the client's
//! offer allows: RFC 6455 section 9.1 (only offered extensions) and, for
//! `permessage-deflate`, RFC 7692 section 7.1 (known parameters, once each,
//! window bits from 8 to 15, and the limits the offer set).
//!
//! The runner offers an extension only when a fixture's handshake sets the
//! header; it implements none of them, so a case that offers one ends before
//! a compressed frame could arrive.

use std::collections::BTreeMap;

/// One element of an extension list: its name and parameters (value `None` for a bare token).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Element {
    name: String,
    params: Vec<(String, Option<String>)>,
}

fn parse(header: &str) -> Result<Vec<Element>, String> {
    let mut elements = Vec::new();
    for raw in header.split(',') {
        let mut parts = raw.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(format!("{raw:?} names no extension"));
        }
        let mut params = Vec::new();
        for param in parts {
            let (key, value) = match param.split_once('=') {
                Some((key, value)) => {
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(value);
                    (key.trim(), Some(value.to_string()))
                }
                None => (param, None),
            };
            if key.is_empty() || !key.chars().all(is_token_char) {
                return Err(format!("{param:?} in {raw:?} is no extension parameter"));
            }
            params.push((key.to_ascii_lowercase(), value));
        }
        elements.push(Element {
            name: name.to_ascii_lowercase(),
            params,
        });
    }
    Ok(elements)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

const DEFLATE: &str = "permessage-deflate";

fn window_bits(value: Option<&str>) -> Option<u8> {
    let value = value?;
    // RFC 7692 section 7.1.2: 1*DIGIT without leading zeros, 8 to 15.
    if value.starts_with('0') {
        return None;
    }
    value
        .parse::<u8>()
        .ok()
        .filter(|bits| (8..=15).contains(bits))
}

/// Why `answer` is no valid answer to `offer` for the deflate parameters, if it is not.
fn deflate_mismatch(answer: &Element, offer: &Element) -> Option<String> {
    let mut seen: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for (key, value) in &answer.params {
        if seen.insert(key, value.as_deref()).is_some() {
            return Some(format!("parameter {key} appears twice"));
        }
        match key.as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" if value.is_some() => {
                return Some(format!("{key} takes no value"));
            }
            "server_no_context_takeover" | "client_no_context_takeover" => {}
            "server_max_window_bits" | "client_max_window_bits" => {
                if window_bits(value.as_deref()).is_none() {
                    return Some(format!("{key} needs a value from 8 to 15"));
                }
            }
            other => return Some(format!("{other} is no permessage-deflate parameter")),
        }
    }
    let offered = |key: &str| offer.params.iter().find(|(k, _)| k == key);
    if let Some(bits) = seen.get("client_max_window_bits") {
        match offered("client_max_window_bits") {
            None => return Some("client_max_window_bits was not offered".into()),
            Some((_, Some(limit))) if window_bits(*bits) > window_bits(Some(limit)) => {
                return Some(format!(
                    "client_max_window_bits exceeds the offered {limit}"
                ));
            }
            Some(_) => {}
        }
    }
    if let Some((_, limit)) = offered("server_max_window_bits") {
        match seen.get("server_max_window_bits") {
            None => return Some("the offered server_max_window_bits is not answered".into()),
            Some(bits) if window_bits(*bits) > window_bits(limit.as_deref()) => {
                return Some("server_max_window_bits exceeds the offered limit".into());
            }
            Some(_) => {}
        }
    }
    if offered("server_no_context_takeover").is_some()
        && !seen.contains_key("server_no_context_takeover")
    {
        return Some("the offered server_no_context_takeover is not answered".into());
    }
    None
}

/// Checks the server's answer against the client's offer (either may be absent).
pub fn check_answer(offer: Option<&str>, answer: Option<&str>) -> Result<(), String> {
    let Some(answer) = answer.filter(|a| !a.trim().is_empty()) else {
        return Ok(());
    };
    let offered = match offer {
        Some(offer) => parse(offer).map_err(|e| format!("the offer is malformed: {e}"))?,
        None => Vec::new(),
    };
    let answered =
        parse(answer).map_err(|e| format!("Sec-WebSocket-Extensions {answer:?}: {e}"))?;
    for element in &answered {
        if !offered.iter().any(|o| o.name == element.name) {
            return Err(format!(
                "Sec-WebSocket-Extensions {answer:?} names {:?}, which the client did not offer",
                element.name
            ));
        }
    }
    let deflates: Vec<&Element> = answered.iter().filter(|e| e.name == DEFLATE).collect();
    match deflates.as_slice() {
        [] => Ok(()),
        [deflate] => {
            let offers: Vec<&Element> = offered.iter().filter(|o| o.name == DEFLATE).collect();
            let reasons: Vec<String> = offers
                .iter()
                .filter_map(|offer| deflate_mismatch(deflate, offer))
                .collect();
            if reasons.len() < offers.len() {
                Ok(())
            } else {
                Err(format!(
                    "Sec-WebSocket-Extensions {answer:?} is no valid RFC 7692 answer to {:?}: {}",
                    offer.unwrap_or_default(),
                    reasons.join("; ")
                ))
            }
        }
        _ => Err(format!(
            "Sec-WebSocket-Extensions {answer:?} accepts permessage-deflate more than once"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answer_is_always_valid() {
        assert_eq!(check_answer(Some("permessage-deflate"), None), Ok(()));
        assert_eq!(check_answer(None, None), Ok(()));
    }

    #[test]
    fn valid_answers_pass() {
        for (offer, answer) in [
            ("permessage-deflate", "permessage-deflate"),
            (
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; client_max_window_bits=10",
            ),
            (
                "permessage-deflate; server_max_window_bits=12",
                "permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
            ),
            (
                "permessage-deflate; server_max_window_bits=10, permessage-deflate",
                "permessage-deflate; server_no_context_takeover",
            ),
        ] {
            assert_eq!(check_answer(Some(offer), Some(answer)), Ok(()), "{answer}");
        }
    }

    #[test]
    fn invalid_answers_are_named() {
        for (offer, answer, why) in [
            (None, "permessage-deflate", "did not offer"),
            (
                Some("permessage-deflate"),
                "permessage-deflate; client_max_window_bits=10",
                "client_max_window_bits was not offered",
            ),
            (
                Some("permessage-deflate"),
                "permessage-deflate; server_max_window_bits=16",
                "8 to 15",
            ),
            (
                Some("permessage-deflate"),
                "permessage-deflate; server_max_window_bits=09",
                "8 to 15",
            ),
            (
                Some("permessage-deflate"),
                "permessage-deflate; level=9",
                "no permessage-deflate parameter",
            ),
            (
                Some("permessage-deflate"),
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "twice",
            ),
            (
                Some("permessage-deflate; server_max_window_bits=10"),
                "permessage-deflate",
                "not answered",
            ),
            (
                Some("permessage-deflate"),
                "permessage-deflate, permessage-deflate",
                "more than once",
            ),
            (
                Some("permessage-deflate"),
                "x-webkit-deflate-frame",
                "did not offer",
            ),
        ] {
            let err = check_answer(offer, Some(answer)).expect_err(answer);
            assert!(err.contains(why), "{answer}: {err}");
        }
    }
}
