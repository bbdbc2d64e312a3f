//! Maps a JSON pointer back to a line and column in the source text.
//!
//! serde_json reports positions only for syntax errors; fixture schema errors
//! and semantic errors are found on a parsed `Value` and carry a JSON pointer.
//! Authors fix files in an editor, so both are turned into `line:column`.

/// A 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Position of the value a JSON pointer names, or of its deepest existing
/// ancestor when the pointer names something absent (e.g. a missing field).
pub fn locate(text: &str, pointer: &str) -> Position {
    let tokens: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    scanner.skip_ws();
    let offset = scanner.descend(&tokens).unwrap_or(0);
    position_of(text, offset)
}

/// Byte offsets of the elements of the array a JSON pointer names, relative to
/// `text`, found in one pass over it. Empty when the pointer names no array.
pub fn element_offsets(text: &str, pointer: &str) -> Vec<usize> {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    scanner.skip_ws();
    let mut offsets = Vec::new();
    // `descend` stops at the deepest value reached: only an array at the end of the
    // whole pointer is the one asked for.
    if scanner.reaches(&tokens) && scanner.peek() == Some(b'[') {
        scanner.at += 1;
        loop {
            scanner.skip_ws();
            match scanner.peek() {
                None | Some(b']') => break,
                Some(_) => {}
            }
            offsets.push(scanner.at);
            if scanner.skip_value().is_none() {
                break;
            }
            scanner.skip_ws();
            if scanner.peek() == Some(b',') {
                scanner.at += 1;
            }
        }
    }
    offsets
}

/// Where each line of a text starts, so that many offsets become positions
/// without rescanning the text before each one.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let line_start = self.starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        Position { line, column }
    }
}

fn position_of(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Position { line, column }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Walks down `tokens` from the value at the cursor and tells whether every
    /// token was found; the cursor is then at the named value.
    fn reaches(&mut self, tokens: &[String]) -> bool {
        let Some((token, rest)) = tokens.split_first() else {
            return true;
        };
        let before = self.at;
        match self.descend(std::slice::from_ref(token)) {
            Some(at) if at != before => {
                self.at = at;
                self.reaches(rest)
            }
            _ => false,
        }
    }

    /// Walks down `tokens` from the value at the cursor; returns the byte
    /// offset of the deepest value reached.
    fn descend(&mut self, tokens: &[String]) -> Option<usize> {
        let start = self.at;
        let Some((token, rest)) = tokens.split_first() else {
            return Some(start);
        };
        match self.peek()? {
            b'{' => {
                self.at += 1;
                loop {
                    self.skip_ws();
                    if self.peek()? == b'}' {
                        return Some(start);
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return Some(start);
                    }
                    self.at += 1;
                    self.skip_ws();
                    if key == *token {
                        return self.descend(rest).or(Some(start));
                    }
                    self.skip_value()?;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.at += 1;
                    }
                }
            }
            b'[' => {
                let wanted: usize = token.parse().ok()?;
                self.at += 1;
                let mut index = 0;
                loop {
                    self.skip_ws();
                    if self.peek()? == b']' {
                        return Some(start);
                    }
                    if index == wanted {
                        return self.descend(rest).or(Some(start));
                    }
                    self.skip_value()?;
                    index += 1;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.at += 1;
                    }
                }
            }
            _ => Some(start),
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.skip_string()?;
        let raw = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        serde_json::from_str(raw).ok()
    }

    /// Moves past a string without decoding it: skipped values are most of a
    /// suite file, and only keys on the way down need their text.
    fn skip_string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                _ => self.at += 1,
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string()?,
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.at += 1;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        c if c == close => {
                            self.at += 1;
                            break;
                        }
                        b',' | b':' => self.at += 1,
                        _ => self.skip_value()?,
                    }
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.at += 1;
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"c/d\": true\n}";
        assert_eq!(locate(text, ""), Position { line: 1, column: 1 });
        assert_eq!(locate(text, "/a"), Position { line: 2, column: 8 });
        assert_eq!(
            locate(text, "/a/1/b"),
            Position {
                line: 2,
                column: 18
            }
        );
        assert_eq!(
            locate(text, "/c~1d"),
            Position {
                line: 3,
                column: 10
            }
        );
    }

    #[test]
    fn element_offsets_name_each_element_of_the_array_only() {
        let text = "{\"cases\": [ {\"a\": \"],[\"}, [1, 2],\n 3 ], \"other\": [9]}";
        let offsets = element_offsets(text, "/cases");
        let starts: Vec<&str> = offsets.iter().map(|&o| &text[o..o + 2]).collect();
        assert_eq!(starts, ["{\"", "[1", "3 "]);
        assert_eq!(
            LineIndex::new(text).position(offsets[2]),
            Position { line: 2, column: 2 }
        );
        assert!(element_offsets(text, "/missing").is_empty());
        assert!(element_offsets(text, "/cases/0").is_empty());
        assert!(element_offsets(text, "/cases/0/a").is_empty());
    }

    #[test]
    fn absent_target_falls_back_to_parent() {
        let text = "{\"a\": {\"b\": 1}}";
        assert_eq!(locate(text, "/a/zzz"), Position { line: 1, column: 7 });
        assert_eq!(
            locate(text, "/a/b/0"),
            Position {
                line: 1,
                column: 13
            }
        );
    }
}
