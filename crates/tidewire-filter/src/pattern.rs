//! `$like` / `$ilike` patterns and `$text` word matching.

use std::borrow::Cow;

use serde_json::Value;

fn lower_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    // Per-char lowercasing (not `str::to_lowercase`) so that pattern, subject
    // and search terms are folded identically; `str::to_lowercase` special-cases
    // a word-final sigma, which would make the result depend on context.
    s.chars().flat_map(char::to_lowercase)
}

fn fold_case(s: &str) -> Cow<'_, str> {
    let unchanged = s.chars().all(|c| {
        let mut l = c.to_lowercase();
        l.next() == Some(c) && l.next().is_none()
    });
    if unchanged {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(lower_chars(s).collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
}

#[derive(Clone, Debug)]
enum Compiled {
    /// No wildcards: plain string equality, the common case for prefix-free
    /// patterns.
    Exact(Box<str>),
    /// An anchored automaton: the `regex` crate matches in time linear in the
    /// subject (times the pattern's size, which the filter bounds), where
    /// backtracking over `%` took time proportional to pattern × subject.
    Automaton(regex::Regex),
}

/// A compiled SQL `LIKE` pattern.
#[derive(Clone, Debug)]
pub(crate) struct LikePattern {
    compiled: Compiled,
    case_insensitive: bool,
}

/// Why a pattern was rejected, as what the operator expects instead.
#[derive(Debug)]
pub(crate) struct InvalidPattern(pub &'static str);

impl LikePattern {
    pub(crate) fn parse(pattern: &str, case_insensitive: bool) -> Result<Self, InvalidPattern> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                // Adjacent `%` are equivalent to one.
                '%' if tokens.last() == Some(&Token::AnyRun) => {}
                '%' => tokens.push(Token::AnyRun),
                '_' => tokens.push(Token::AnyChar),
                '\\' => tokens.push(Token::Literal(chars.next().ok_or(InvalidPattern(
                    "a pattern that does not end with an escaping `\\`",
                ))?)),
                other => tokens.push(Token::Literal(other)),
            }
        }
        if case_insensitive {
            tokens = tokens
                .into_iter()
                .flat_map(|t| -> Box<dyn Iterator<Item = Token>> {
                    match t {
                        Token::Literal(c) => Box::new(c.to_lowercase().map(Token::Literal)),
                        other => Box::new(std::iter::once(other)),
                    }
                })
                .collect();
        }
        let compiled = if tokens.iter().all(|t| matches!(t, Token::Literal(_))) {
            Compiled::Exact(
                tokens
                    .iter()
                    .filter_map(|t| match t {
                        Token::Literal(c) => Some(*c),
                        _ => None,
                    })
                    .collect::<String>()
                    .into(),
            )
        } else {
            Compiled::Automaton(automaton(&tokens)?)
        };
        Ok(LikePattern {
            compiled,
            case_insensitive,
        })
    }

    pub(crate) fn matches(&self, subject: &str) -> bool {
        let subject = if self.case_insensitive {
            fold_case(subject)
        } else {
            Cow::Borrowed(subject)
        };
        match &self.compiled {
            Compiled::Exact(s) => **s == *subject,
            Compiled::Automaton(regex) => regex.is_match(&subject),
        }
    }
}

/// The pattern as an anchored regular expression over characters; case
/// folding is done on both sides beforehand, so the expression is
/// case-sensitive.
fn automaton(tokens: &[Token]) -> Result<regex::Regex, InvalidPattern> {
    let mut expression = String::from("(?s)\\A");
    let mut buf = [0u8; 4];
    for token in tokens {
        match token {
            Token::Literal(c) => expression.push_str(&regex::escape(c.encode_utf8(&mut buf))),
            Token::AnyChar => expression.push('.'),
            Token::AnyRun => expression.push_str(".*"),
        }
    }
    expression.push_str("\\z");
    regex::Regex::new(&expression).map_err(|_| InvalidPattern("a shorter pattern"))
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// A set of `$text` search terms, each a case-folded word.
#[derive(Clone, Debug)]
pub(crate) struct TextTerms {
    terms: Box<[Box<str>]>,
}

impl TextTerms {
    /// Splits the query with the same word rule used on documents, so a term
    /// such as `e-mail` becomes the two words `e` and `mail`. Returns `None`
    /// when the query holds no words at all.
    pub(crate) fn parse(query: &str) -> Option<TextTerms> {
        let mut terms: Vec<Box<str>> = words(query)
            .map(|w| lower_chars(w).collect::<String>().into())
            .collect();
        terms.sort_unstable();
        terms.dedup();
        (!terms.is_empty()).then(|| TextTerms {
            terms: terms.into(),
        })
    }

    fn has_word(s: &str, term: &str) -> bool {
        words(s).any(|w| lower_chars(w).eq(term.chars()))
    }

    /// Field-level `$text`: every term is a word of this one string.
    pub(crate) fn matches_str(&self, s: &str) -> bool {
        self.terms.iter().all(|t| Self::has_word(s, t))
    }

    /// Top-level `$text`: every term is a word of some string value anywhere
    /// in the document (object keys are not searched).
    pub(crate) fn matches_document(&self, doc: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| any_string(doc, &|s| Self::has_word(s, t)))
    }
}

fn any_string(v: &Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => pred(s),
        Value::Array(items) => items.iter().any(|x| any_string(x, pred)),
        Value::Object(map) => map.values().any(|x| any_string(x, pred)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn like(p: &str, s: &str) -> bool {
        LikePattern::parse(p, false).unwrap().matches(s)
    }

    fn ilike(p: &str, s: &str) -> bool {
        LikePattern::parse(p, true).unwrap().matches(s)
    }

    #[test]
    fn like_wildcards() {
        assert!(like("abc", "abc"));
        assert!(!like("abc", "abcd"));
        assert!(like("a%", "a"));
        assert!(like("a%", "abc"));
        assert!(!like("a%", "ba"));
        assert!(like("%c", "abc"));
        assert!(like("%b%", "abc"));
        assert!(!like("%x%", "abc"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "ac"));
        assert!(like("_", "é"));
        assert!(!like("_", ""));
        assert!(like("%", ""));
        assert!(like("%%", ""));
        assert!(like("", ""));
        assert!(!like("", "a"));
        assert!(like("%a%b%c%", "xxaxxbxxcxx"));
        assert!(!like("%a%b%c%", "xxcxxbxxaxx"));
        assert!(like("a%a%a", "aaaa"));
        assert!(like("%ab", "aab"));
        assert!(like("_%_", "ab"));
        assert!(!like("_%_", "a"));
    }

    #[test]
    fn like_escapes() {
        assert!(like(r"100\%", "100%"));
        assert!(!like(r"100\%", "1000"));
        assert!(like(r"a\_b", "a_b"));
        assert!(!like(r"a\_b", "axb"));
        assert!(like(r"a\\b", r"a\b"));
        assert!(like(r"\a", "a"));
        assert!(LikePattern::parse(r"abc\", false).is_err());
        assert!(like(r"a.c", "a.c"));
        assert!(!like(r"a.c", "abc"));
        assert!(like(r"(%)", "(x)"));
    }

    #[test]
    fn ilike_folds_unicode_case() {
        assert!(ilike("HELLO%", "hello world"));
        assert!(ilike("straße", "STRAßE"));
        assert!(ilike("ÉCOLE", "école"));
        assert!(ilike("σ%", "Σίσυφος"));
        assert!(!like("HELLO%", "hello world"));
    }

    #[test]
    fn the_worst_case_pattern_matches_a_long_subject() {
        // Backtracking over `%` took pattern × subject steps here.
        let pattern = format!("{}b", "%a".repeat(127));
        assert!(!like(&pattern, &"a".repeat(100_000)));
        assert!(like(&pattern, &format!("{}b", "a".repeat(100_000))));
    }

    #[test]
    fn text_terms() {
        let t = TextTerms::parse("Quick  FOX").unwrap();
        assert!(t.matches_str("the quick brown fox"));
        assert!(t.matches_str("Fox, quick!"));
        assert!(!t.matches_str("the quickest fox"));
        assert!(!t.matches_str("quick"));
        assert!(TextTerms::parse("  -- ").is_none());
        let split = TextTerms::parse("e-mail").unwrap();
        assert!(split.matches_str("mail e"));
        let doc = json!({"title": "Quick", "tags": ["x", {"k": "fox"}], "fox": 1});
        assert!(t.matches_document(&doc));
        assert!(!TextTerms::parse("title").unwrap().matches_document(&doc));
    }
}
