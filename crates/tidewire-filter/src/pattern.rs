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
    Tokens(Box<[Token]>),
}

/// A compiled SQL `LIKE` pattern.
#[derive(Clone, Debug)]
pub(crate) struct LikePattern {
    compiled: Compiled,
    case_insensitive: bool,
}

/// Why a pattern was rejected; the only failure is a dangling escape.
#[derive(Debug)]
pub(crate) struct TrailingEscape;

impl LikePattern {
    pub(crate) fn parse(pattern: &str, case_insensitive: bool) -> Result<Self, TrailingEscape> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    // Adjacent `%` are equivalent to one; collapsing them keeps
                    // the backtracking matcher from doing redundant work.
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                }
                '_' => tokens.push(Token::AnyChar),
                '\\' => tokens.push(Token::Literal(chars.next().ok_or(TrailingEscape)?)),
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
            Compiled::Tokens(tokens.into())
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
            Compiled::Tokens(tokens) => match_tokens(tokens, &subject),
        }
    }
}

/// Greedy wildcard matching with single-point backtracking: on a mismatch,
/// retry from the most recent `%` with it absorbing one more character. This
/// is correct for `%`/`_` patterns and bounded by O(pattern × subject), so a
/// hostile pattern cannot trigger exponential backtracking.
fn match_tokens(tokens: &[Token], s: &str) -> bool {
    let mut p = 0;
    let mut i = 0;
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if let Some(token) = tokens.get(p) {
            let next = s[i..].chars().next();
            match (*token, next) {
                (Token::AnyRun, _) => {
                    p += 1;
                    resume = Some((p, i));
                    continue;
                }
                (Token::AnyChar, Some(c)) => {
                    p += 1;
                    i += c.len_utf8();
                    continue;
                }
                (Token::Literal(l), Some(c)) if l == c => {
                    p += 1;
                    i += c.len_utf8();
                    continue;
                }
                _ => {}
            }
        } else if i == s.len() {
            return true;
        }
        let Some((rp, ri)) = resume else {
            return false;
        };
        let Some(c) = s[ri..].chars().next() else {
            return false;
        };
        let ri = ri + c.len_utf8();
        resume = Some((rp, ri));
        p = rp;
        i = ri;
    }
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
