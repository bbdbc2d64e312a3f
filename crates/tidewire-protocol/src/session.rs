//! Session parameters a client states at the handshake (section 5.7): the
//! largest message it accepts, the features it understands, its name; the
//! capability list of optional features; and the `part` messages that carry a
//! message longer than the client accepts.

use crate::profiles::Part;
use crate::ServerMessage;

/// The query parameter stating the largest message the client accepts.
pub const PARAM_MAX_MESSAGE_BYTES: &str = "max_message_bytes";
/// The query parameter listing, comma-separated, the features the client understands.
pub const PARAM_FEATURES: &str = "features";
/// The query parameter naming the client as `name/version`.
pub const PARAM_CLIENT: &str = "client";

/// The smallest `max_message_bytes` a client may state: room for any part
/// header and some data, and for the protocol's short messages whole.
pub const MIN_MAX_MESSAGE_BYTES: u64 = 1024;

/// Feature `parts`: messages longer than the client's `max_message_bytes`
/// arrive as `part` messages (section 5.7.2).
pub const FEATURE_PARTS: &str = "parts";

/// Every optional feature this revision defines, in the order of the
/// specification's table (section 5.7.3).
pub const FEATURES: [&str; 1] = [FEATURE_PARTS];

/// Whether `name` is spelled as a feature name may be: lowercase ASCII
/// letters, digits and `_`, starting with a letter, or `x-` followed by
/// such a name for features outside this specification.
pub fn is_feature_name(name: &str) -> bool {
    let core = name.strip_prefix("x-").unwrap_or(name);
    let mut chars = core.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && core.len() <= 64
}

/// The JSON text of a part holding `data`, as the server writes it.
fn part_text(index: u32, last: bool, data: String) -> String {
    ServerMessage::Part(Part { index, last, data }).to_json()
}

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Splits the JSON text of one message into the texts of `part` messages of
/// at most `max` bytes each, each carrying at most `budget` bytes of escaped
/// data (a smaller budget gives more, smaller parts). `None` when `max`
/// cannot hold a part with one character of data.
pub fn split_into_parts(text: &str, max: usize, budget: usize) -> Option<Vec<String>> {
    let overhead = part_text(u32::MAX, false, String::new()).len();
    let room = max.checked_sub(overhead)?.min(budget);
    // Six bytes hold any one character escaped.
    if room < 6 {
        return None;
    }
    let mut pieces: Vec<String> = Vec::new();
    let mut piece = String::new();
    let mut used = 0;
    for c in text.chars() {
        let len = escaped_len(c);
        if used + len > room {
            pieces.push(std::mem::take(&mut piece));
            used = 0;
        }
        piece.push(c);
        used += len;
    }
    pieces.push(piece);
    let count = pieces.len();
    Some(
        pieces
            .into_iter()
            .enumerate()
            .map(|(index, data)| {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                part_text(index, index as usize + 1 == count, data)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(parts: &[String]) -> String {
        let mut text = String::new();
        for (n, part) in parts.iter().enumerate() {
            let ServerMessage::Part(part) = serde_json::from_str(part).unwrap() else {
                panic!("not a part: {part}");
            };
            assert_eq!(part.index as usize, n);
            assert_eq!(part.last, n + 1 == parts.len());
            text.push_str(&part.data);
        }
        text
    }

    #[test]
    fn parts_fit_and_join_back_to_the_message() {
        let text = serde_json::json!({
            "type": "records",
            "quotes": "\"\\\"".repeat(300),
            "controls": "\u{1}\n\t".repeat(200),
            "wide": "é😀".repeat(300),
        })
        .to_string();
        for max in [1024, 1500, 4096] {
            for budget in [usize::MAX, 100] {
                let parts = split_into_parts(&text, max, budget).unwrap();
                assert!(parts.len() > 1);
                assert!(parts.iter().all(|p| p.len() <= max), "{max}");
                assert_eq!(joined(&parts), text);
            }
        }
    }

    #[test]
    fn a_bound_too_small_for_any_part_is_refused() {
        assert_eq!(split_into_parts("{}", 40, usize::MAX), None);
    }

    #[test]
    fn feature_names() {
        for name in FEATURES {
            assert!(is_feature_name(name));
        }
        assert!(is_feature_name("x-acme_trace"));
        for bad in ["", "Parts", "1a", "a-b", "x-", "parts!"] {
            assert!(!is_feature_name(bad), "{bad}");
        }
    }
}
