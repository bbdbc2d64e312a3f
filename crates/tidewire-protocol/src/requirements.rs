//! The requirement list of the specification, extracted from `spec/PROTOCOL.md`.
//!
//! Every sentence of the specification that uses an RFC 2119 key word carries a
//! requirement id at its start, written `**[TW-CORE-3]**`, either as a list item
//! (`- **[TW-CORE-3]** The server MUST ...`) or as a paragraph. [`extract`]
//! collects them in document order, and `spec/requirements.json` is exactly its
//! output (a test keeps the two equal), so fixtures and reports can cite ids
//! that are known to exist.
//!
//! Extraction is strict so that the specification stays honest: it fails on a
//! duplicate id, an unknown prefix, a requirement without a key word or with
//! more than one, a requirement in an informative section, and an upper-case
//! key word in a normative section that is not inside a requirement. Key words
//! inside code spans, fenced code blocks and double quotes (as in the BCP 14
//! boilerplate) do not count. A section is informative when its heading
//! contains `(informative)`; its subsections are informative too.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Profile;

/// The id prefixes and the profile each belongs to. `FILTER` names the filter
/// language, which applies wherever a profile accepts a filter; `PATH` the paths
/// that can never match a change event, which apply with `watch`; `ENDPOINT` the
/// endpoints that bind a database or collection, which apply with the profiles
/// whose requests name one; `VIEW` names the live views of section 8.3, an option
/// of `watch`; `END` the ends of section 5.9, which concern every connection;
/// `IDEM` the idempotent writes of section 7.5, an option of the profiles that write.
pub const PREFIXES: [(&str, &str); 31] = [
    ("CORE", "core"),
    ("AUTH", "auth"),
    ("REC", "records"),
    ("WATCH", "watch"),
    ("RESUME", "resume"),
    ("TOPIC", "topics"),
    ("ROOM", "rooms"),
    ("COLLAB", "collab"),
    ("LIMIT", "limits"),
    ("STATS", "stats"),
    ("FILTER", "filter"),
    ("PRESENCE", "rooms"),
    ("QUOTA", "limits"),
    ("METRICS", "stats"),
    ("TIME", "core"),
    ("XERR", "core"),
    ("AUTHZ", "records"),
    ("DECODE", "core"),
    ("EXT", "core"),
    ("COMPRESS", "core"),
    ("VECTOR", "vector"),
    ("ENDPOINT", "endpoint"),
    ("PATH", "path"),
    ("VIEW", "view"),
    ("END", "end"),
    ("IDEM", "idempotency"),
    ("SESSION", "core"),
    ("LIVE", "core"),
    ("CLOSE", "core"),
    ("POS", "resume"),
    ("RECOVER", "resume"),
];

/// Profiles whose presence brings another profile's requirements into scope.
/// No server lists `filter` among its profiles: it implements the filter
/// language by implementing a profile that accepts filters, so a coverage
/// report counts the filter requirements whenever one of these is tested.
pub const APPLIES_WITH: [(&str, &[Profile]); 6] = [
    (
        "filter",
        &[Profile::Records, Profile::Watch, Profile::Topics],
    ),
    ("path", &[Profile::Watch]),
    (
        "endpoint",
        &[Profile::Records, Profile::Watch, Profile::Vector],
    ),
    ("view", &[Profile::Watch]),
    ("end", &[Profile::Core]),
    (
        "idempotency",
        &[
            Profile::Records,
            Profile::Topics,
            Profile::Rooms,
            Profile::Collab,
        ],
    ),
];

/// The requirement level, from the RFC 2119 key word of the sentence.
/// `SHALL`, `SHALL NOT`, `REQUIRED`, `RECOMMENDED`, `NOT RECOMMENDED` and
/// `OPTIONAL` map onto the five levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "MUST NOT")]
    MustNot,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "SHOULD NOT")]
    ShouldNot,
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::MustNot => "MUST NOT",
            Level::Should => "SHOULD",
            Level::ShouldNot => "SHOULD NOT",
            Level::May => "MAY",
        }
    }
}

/// Who a requirement constrains. Client requirements begin with "A client";
/// the conformance runner tests only server requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Server,
    Client,
}

/// One requirement of the specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// The stable id, e.g. `TW-CORE-3`.
    pub id: String,
    /// The profile the id's prefix names (see [`PREFIXES`]).
    pub profile: String,
    pub level: Level,
    pub subject: Subject,
    /// The sentence, without its id and without markdown markup.
    pub text: String,
    /// Profiles that bring this requirement into scope besides its own
    /// (see [`APPLIES_WITH`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_with: Vec<String>,
}

/// The specification directory, `spec/` at the workspace root.
pub fn default_spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec")
}

/// Reads and extracts the requirements of a specification file.
pub fn extract_file(path: &Path) -> Result<Vec<Requirement>, String> {
    let markdown = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    extract(&markdown).map_err(|err| format!("{}: {err}", path.display()))
}

/// The contents of `requirements.json` for a list of requirements: a pretty
/// JSON array, one object per requirement, ending in a newline.
pub fn to_json(requirements: &[Requirement]) -> String {
    let mut text = serde_json::to_string_pretty(requirements).expect("requirements serialize");
    text.push('\n');
    text
}

/// Extracts every requirement of a specification in document order.
///
/// Errors name the 1-based line of the problem.
pub fn extract(markdown: &str) -> Result<Vec<Requirement>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut requirements = Vec::new();
    let mut seen = HashSet::new();
    let mut fence: Option<String> = None;
    // The level of the informative heading we are under, if any.
    let mut informative_level: Option<usize> = None;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let number = index + 1;
        index += 1;

        let trimmed = line.trim_start();
        if let Some(open) = &fence {
            if trimmed.starts_with(open.as_str()) && trimmed.trim_end() == open.as_str() {
                fence = None;
            }
            continue;
        }
        if let Some(marker) = fence_marker(trimmed) {
            fence = Some(marker);
            continue;
        }
        if let Some(level) = heading_level(line) {
            if informative_level.is_some_and(|open| level <= open) {
                informative_level = None;
            }
            if informative_level.is_none() && line.contains("(informative)") {
                informative_level = Some(level);
            }
            continue;
        }

        let Some((id, first)) = requirement_start(line) else {
            if informative_level.is_none() {
                if let Some(keyword) = keywords(line).first() {
                    return Err(format!(
                        "line {number}: RFC 2119 key word {keyword} outside a requirement; \
                         give the sentence an id like **[TW-CORE-1]** or rephrase it"
                    ));
                }
            }
            continue;
        };
        if informative_level.is_some() {
            return Err(format!(
                "line {number}: requirement {id} in an informative section"
            ));
        }

        // The requirement runs to the end of its paragraph or list item.
        let mut raw = first.to_string();
        while index < lines.len() && continues_item(lines[index]) {
            raw.push(' ');
            raw.push_str(lines[index].trim());
            index += 1;
        }

        let profile =
            profile_of(&id).ok_or_else(|| format!("line {number}: {id} has an unknown prefix"))?;
        if !seen.insert(id.clone()) {
            return Err(format!("line {number}: duplicate requirement id {id}"));
        }
        let text = strip_markdown(&raw);
        let found = keywords(&raw);
        let level = match found.as_slice() {
            [] => {
                return Err(format!(
                    "line {number}: requirement {id} has no RFC 2119 key word: {text}"
                ))
            }
            [one] => level_of(one),
            several => {
                return Err(format!(
                    "line {number}: requirement {id} has {} key words ({}); \
                     split it into one requirement per statement",
                    several.len(),
                    several.join(", ")
                ))
            }
        };
        let subject = if text.starts_with("A client") {
            Subject::Client
        } else {
            Subject::Server
        };
        let applies_with = APPLIES_WITH
            .iter()
            .find(|(p, _)| *p == profile)
            .map(|(_, with)| with.iter().map(|w| w.as_str().to_string()).collect())
            .unwrap_or_default();
        requirements.push(Requirement {
            id,
            profile: profile.to_string(),
            level,
            subject,
            text,
            applies_with,
        });
    }
    if let Some(open) = fence {
        return Err(format!("unclosed code fence {open}"));
    }
    Ok(requirements)
}

fn fence_marker(trimmed: &str) -> Option<String> {
    for c in ['`', '~'] {
        let run = trimmed.chars().take_while(|&x| x == c).count();
        if run >= 3 {
            return Some(std::iter::repeat_n(c, run).collect());
        }
    }
    None
}

fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    (1..=6)
        .contains(&hashes)
        .then(|| line[hashes..].starts_with(' ').then_some(hashes))
        .flatten()
}

/// Strips a list marker (`-`, `*`, `+`, `1.`) and leading spaces.
fn strip_list_marker(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed
        .strip_prefix("- ")
        .or_else(|| trimmed.strip_prefix("* "))
        .or_else(|| trimmed.strip_prefix("+ "))
    {
        return Some(rest.trim_start());
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        if let Some(rest) = trimmed[digits..].strip_prefix(". ") {
            return Some(rest.trim_start());
        }
    }
    None
}

/// `Some((id, rest of the line))` when the line opens a requirement.
fn requirement_start(line: &str) -> Option<(String, &str)> {
    let body = strip_list_marker(line).unwrap_or_else(|| line.trim_start());
    let rest = body.strip_prefix("**[")?;
    let end = rest.find("]**")?;
    let id = &rest[..end];
    if !id.starts_with("TW-") {
        return None;
    }
    let (prefix, number) = id["TW-".len()..].rsplit_once('-')?;
    let well_formed = !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_uppercase())
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && !number.starts_with('0');
    well_formed.then(|| (id.to_string(), rest[end + "]**".len()..].trim()))
}

/// Whether a line continues the paragraph or list item before it.
fn continues_item(line: &str) -> bool {
    let trimmed = line.trim_start();
    !(trimmed.is_empty()
        || strip_list_marker(line).is_some()
        || heading_level(line).is_some()
        || trimmed.starts_with('|')
        || trimmed.starts_with('>')
        || fence_marker(trimmed).is_some())
}

fn profile_of(id: &str) -> Option<&'static str> {
    let prefix = id.strip_prefix("TW-")?.rsplit_once('-')?.0;
    PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, profile)| *profile)
}

fn level_of(keyword: &str) -> Level {
    match keyword {
        "MUST" | "SHALL" | "REQUIRED" => Level::Must,
        "MUST NOT" | "SHALL NOT" => Level::MustNot,
        "SHOULD" | "RECOMMENDED" => Level::Should,
        "SHOULD NOT" | "NOT RECOMMENDED" => Level::ShouldNot,
        _ => Level::May,
    }
}

/// Splits text into code spans (`true`) and the rest (`false`).
fn code_spans(text: &str) -> Vec<(bool, &str)> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[start..start + ticks];
        match rest[start + ticks..].find(fence) {
            Some(len) => {
                parts.push((false, &rest[..start]));
                parts.push((true, &rest[start + ticks..start + ticks + len]));
                rest = &rest[start + ticks + len + ticks..];
            }
            None => break,
        }
    }
    parts.push((false, rest));
    parts
}

/// The RFC 2119 key words in upper case in a piece of markdown, in order,
/// outside code spans and double-quoted strings.
fn keywords(markdown: &str) -> Vec<String> {
    let mut prose = String::new();
    for (code, part) in code_spans(markdown) {
        if !code {
            // Drop "quoted" runs, as in the BCP 14 boilerplate.
            let mut quoted = false;
            for c in part.chars() {
                if c == '"' {
                    quoted = !quoted;
                    prose.push(' ');
                } else if !quoted {
                    prose.push(c);
                }
            }
        }
        prose.push(' ');
    }
    let words: Vec<&str> = prose
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let next = words.get(i + 1).copied();
        let keyword = match (words[i], next) {
            ("MUST" | "SHALL" | "SHOULD", Some("NOT")) => {
                i += 1;
                format!("{} NOT", words[i - 1])
            }
            ("NOT", Some("RECOMMENDED")) => {
                i += 1;
                "NOT RECOMMENDED".to_string()
            }
            (
                w @ ("MUST" | "SHALL" | "SHOULD" | "REQUIRED" | "RECOMMENDED" | "MAY" | "OPTIONAL"),
                _,
            ) => w.to_string(),
            _ => {
                i += 1;
                continue;
            }
        };
        found.push(keyword);
        i += 1;
    }
    found
}

/// Removes emphasis markers and link targets outside code spans, and the
/// backticks of code spans, and collapses white space.
fn strip_markdown(markdown: &str) -> String {
    let mut out = String::new();
    for (code, part) in code_spans(markdown) {
        if code {
            out.push_str(part);
            continue;
        }
        let part = part.replace("**", "");
        // [text](target) -> text
        let mut rest = part.as_str();
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find("](").map(|i| open + i) else {
                break;
            };
            let Some(end) = rest[close..].find(')').map(|i| close + i) else {
                break;
            };
            out.push_str(&rest[..open]);
            out.push_str(&rest[open + 1..close]);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(markdown: &str) -> Requirement {
        let mut found = extract(markdown).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    #[test]
    fn extracts_list_items_and_paragraphs_in_order() {
        let markdown = "\
# Spec

- **[TW-CORE-1]** The server MUST send a `welcome`
  first, on every connection.
- **[TW-AUTH-2]** A client SHOULD NOT put tokens in [the query](#tokens).

**[TW-FILTER-1]** The server MUST NOT match across **type classes**.
Range operators never do.

Plain prose, lowercase must and should are not key words.
";
        let found = extract(markdown).unwrap();
        let ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["TW-CORE-1", "TW-AUTH-2", "TW-FILTER-1"]);
        assert_eq!(
            found[0].text,
            "The server MUST send a welcome first, on every connection."
        );
        assert_eq!(found[0].level, Level::Must);
        assert_eq!(found[0].subject, Subject::Server);
        assert_eq!(found[0].profile, "core");
        assert_eq!(
            found[1].text,
            "A client SHOULD NOT put tokens in the query."
        );
        assert_eq!(found[1].level, Level::ShouldNot);
        assert_eq!(found[1].subject, Subject::Client);
        assert_eq!(
            found[2].text,
            "The server MUST NOT match across type classes. Range operators never do."
        );
        assert_eq!(found[2].level, Level::MustNot);
        assert_eq!(found[2].profile, "filter");
        assert_eq!(found[2].applies_with, ["records", "watch", "topics"]);
        assert!(found[0].applies_with.is_empty());
    }

    #[test]
    fn maps_every_key_word_to_a_level() {
        for (word, level) in [
            ("MUST", Level::Must),
            ("SHALL", Level::Must),
            ("is REQUIRED to", Level::Must),
            ("MUST NOT", Level::MustNot),
            ("SHALL NOT", Level::MustNot),
            ("SHOULD", Level::Should),
            ("is RECOMMENDED to", Level::Should),
            ("SHOULD NOT", Level::ShouldNot),
            ("is NOT RECOMMENDED to", Level::ShouldNot),
            ("MAY", Level::May),
            ("is OPTIONAL to", Level::May),
        ] {
            let r = one(&format!("- **[TW-CORE-1]** The server {word} close.\n"));
            assert_eq!(r.level, level, "{word}");
        }
    }

    #[test]
    fn serializes_levels_and_subjects_as_the_file_spells_them() {
        let r = one("- **[TW-REC-4]** A client MUST NOT parse tokens.\n");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "TW-REC-4", "profile": "records", "level": "MUST NOT",
                "subject": "client", "text": "A client MUST NOT parse tokens."
            })
        );
        let back: Requirement = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn fails_on_a_duplicate_id() {
        let err =
            extract("- **[TW-CORE-1]** The server MUST a.\n- **[TW-CORE-1]** The server MUST b.\n")
                .unwrap_err();
        assert!(err.contains("duplicate requirement id TW-CORE-1"), "{err}");
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn fails_on_an_unknown_prefix() {
        let err = extract("- **[TW-SUB-4]** The server MUST a.\n").unwrap_err();
        assert!(err.contains("TW-SUB-4 has an unknown prefix"), "{err}");
    }

    #[test]
    fn fails_on_a_requirement_without_a_key_word() {
        let err = extract("- **[TW-CORE-1]** The server must close.\n").unwrap_err();
        assert!(err.contains("has no RFC 2119 key word"), "{err}");
    }

    #[test]
    fn fails_on_a_requirement_with_two_key_words() {
        let err =
            extract("- **[TW-CORE-1]** The server MUST close and MUST NOT send.\n").unwrap_err();
        assert!(err.contains("2 key words (MUST, MUST NOT)"), "{err}");
    }

    #[test]
    fn fails_on_a_key_word_without_an_id_in_a_normative_section() {
        let err = extract("# Spec\n\nOk.\n\nThe server MUST close.\n").unwrap_err();
        assert!(
            err.starts_with("line 5: RFC 2119 key word MUST outside a requirement"),
            "{err}"
        );
        let err = extract("| a | the server SHOULD |\n").unwrap_err();
        assert!(err.contains("key word SHOULD"), "{err}");
        let err = extract("- The server MAY close.\n").unwrap_err();
        assert!(err.contains("key word MAY"), "{err}");
    }

    #[test]
    fn ignores_key_words_in_code_quotes_and_informative_sections() {
        let markdown = "\
# Spec

The key words \"MUST\", \"MUST NOT\" and \"MAY\" are to be interpreted as in BCP 14.
An id looks like `**[TW-CORE-1]** MUST`.

```json
{\"note\": \"MUST\"}
```

## Appendix A. Notes (informative)

Servers MUST NOT be surprised.

### A.1. Still informative

They SHOULD be fine.

## 2. Back to normative

- **[TW-CORE-1]** The server MUST close.
";
        let found = extract(markdown).unwrap();
        assert_eq!(found.len(), 1);
        let err = extract(&markdown.replace("## 2. Back to normative\n", "")).unwrap_err();
        assert!(err.contains("in an informative section"), "{err}");
        let err = extract("# Spec\n\n## 2. Normative\n\nServers MUST NOT.\n").unwrap_err();
        assert!(err.starts_with("line 5:"), "{err}");
    }

    #[test]
    fn a_code_span_is_kept_verbatim_in_the_text() {
        let r = one("- **[TW-AUTH-1]** The server MUST accept `read:collection:*` and `**`.\n");
        assert_eq!(r.text, "The server MUST accept read:collection:* and **.");
    }

    #[test]
    fn applies_with_is_written_only_where_it_is_set() {
        let r = one("- **[TW-FILTER-2]** The server MUST compare numbers as numbers.\n");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["applies_with"],
            serde_json::json!(["records", "watch", "topics"])
        );
        let back: Requirement = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        for (profile, _) in APPLIES_WITH {
            assert!(PREFIXES.iter().any(|(_, p)| *p == profile), "{profile}");
        }
    }

    #[test]
    fn prefixes_are_distinct_and_cover_every_profile() {
        // A profile may have several prefixes (`core` has CORE, SESSION,
        // LIVE and CLOSE); a prefix names one profile, or a part of the
        // protocol that applies with the profiles `APPLIES_WITH` names.
        let prefixes: HashSet<&str> = PREFIXES.iter().map(|(p, _)| *p).collect();
        assert_eq!(prefixes.len(), PREFIXES.len());
        let profiles: HashSet<&str> = PREFIXES.iter().map(|(_, p)| *p).collect();
        for profile in Profile::ALL {
            assert!(profiles.contains(profile.as_str()), "{}", profile.as_str());
        }
        for profile in profiles {
            let applies_with = APPLIES_WITH.iter().any(|(part, _)| *part == profile);
            assert!(
                profile == "filter" || applies_with || Profile::parse(profile).is_some(),
                "{profile} is no profile"
            );
        }
    }
}
