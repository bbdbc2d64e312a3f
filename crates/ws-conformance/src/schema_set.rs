//! Schema sets: a manifest naming, per direction, a union schema and one
//! schema per discriminator tag. Every received JSON frame is validated
//! against the schema of its tag.

use serde::Deserialize;
use serde_json::Value;

use crate::pattern;
use crate::runner::FirstFrameError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The on-disk manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    discriminator: Option<String>,
    inbound: DirectionManifest,
    #[serde(default)]
    outbound: Option<DirectionManifest>,
    #[serde(default)]
    claims: Option<Claims>,
}

/// Where a server says which profiles it implements: the first frame it
/// sends on a new connection, if it matches `pattern`, lists them at
/// `pointer`. Lets a run skip, as not claimed, the cases of other profiles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    #[serde(rename = "match")]
    pub pattern: Value,
    /// JSON pointer to an array of profile names in that frame.
    pub pointer: String,
}

impl Claims {
    /// The profiles `frame` claims; the error says why it claims none.
    pub fn profiles(&self, frame: &Value) -> Result<Vec<String>, ClaimsError> {
        if !pattern::matches(&self.pattern, frame).is_match() {
            return Err(ClaimsError::NoMatch {
                pattern: self.pattern.to_string(),
                frame: pattern::compact(frame, 200),
            });
        }
        frame
            .pointer(&self.pointer)
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .map(|p| p.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| ClaimsError::NotStrings {
                pointer: self.pointer.clone(),
            })
    }
}

/// Why a server's first frame tells no profiles.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClaimsError {
    #[error(transparent)]
    FirstFrame(#[from] FirstFrameError),
    #[error("the first frame does not match {pattern}: {frame}")]
    NoMatch { pattern: String, frame: String },
    #[error("{pointer} in the first frame is not an array of strings")]
    NotStrings { pointer: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectionManifest {
    #[serde(default)]
    union: Option<String>,
    #[serde(default)]
    by_tag: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaSetError {
    #[error("cannot read schema set {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("schema set {path} is not a valid manifest")]
    NotManifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("schema set {path} is not a valid manifest: {problem}")]
    Manifest { path: PathBuf, problem: String },
    #[error("schema {schema} (from {manifest}) cannot be used")]
    Schema {
        manifest: PathBuf,
        schema: String,
        #[source]
        source: SchemaFileError,
    },
}

/// Why one schema file of a set cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("not a valid JSON Schema")]
    Invalid(#[source] jsonschema::ValidationError<'static>),
}

struct Compiled {
    /// The path as written in the manifest, for messages.
    name: String,
    validator: jsonschema::Validator,
}

struct Direction {
    union: Option<Compiled>,
    by_tag: BTreeMap<String, Compiled>,
}

/// A loaded, compiled schema set.
pub struct SchemaSet {
    path: PathBuf,
    discriminator: Option<String>,
    inbound: Direction,
    outbound: Option<Direction>,
    claims: Option<Claims>,
}

impl std::fmt::Debug for SchemaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaSet")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A frame that does not conform to its schema.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SchemaViolation {
    /// Which schema file (as named in the manifest) rejected the frame.
    pub schema: String,
    /// JSON pointer into the frame.
    pub instance_path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.instance_path.is_empty() {
            "(root)"
        } else {
            &self.instance_path
        };
        write!(f, "{} at {at}: {}", self.schema, self.message)
    }
}

impl SchemaSet {
    pub fn load(path: &Path) -> Result<SchemaSet, SchemaSetError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaSetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| SchemaSetError::NotManifest {
                path: path.to_path_buf(),
                source,
            })?;
        let abs = std::path::absolute(path).map_err(|source| SchemaSetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let root = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let compile_dir = |d: DirectionManifest| -> Result<Direction, SchemaSetError> {
            let union = d.union.map(|name| compile(path, &root, name)).transpose()?;
            let mut by_tag = BTreeMap::new();
            for (tag, name) in d.by_tag {
                by_tag.insert(tag, compile(path, &root, name)?);
            }
            if union.is_none() && by_tag.is_empty() {
                return Err(SchemaSetError::Manifest {
                    path: path.to_path_buf(),
                    problem: "a direction needs a `union` schema, `by_tag` schemas, or both".into(),
                });
            }
            Ok(Direction { union, by_tag })
        };
        if let Some(claims) = &manifest.claims {
            if let Some((pointer, message)) = crate::pattern::validate(&claims.pattern).first() {
                return Err(SchemaSetError::Manifest {
                    path: path.to_path_buf(),
                    problem: format!("claims.match{pointer}: {message}"),
                });
            }
        }
        Ok(SchemaSet {
            path: path.to_path_buf(),
            discriminator: manifest.discriminator,
            inbound: compile_dir(manifest.inbound)?,
            outbound: manifest.outbound.map(compile_dir).transpose()?,
            claims: manifest.claims,
        })
    }

    /// How a server announces its profiles, if the manifest says.
    pub fn claims(&self) -> Option<&Claims> {
        self.claims.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates a frame the server sent.
    pub fn check_inbound(&self, frame: &Value) -> Result<(), SchemaViolation> {
        self.check(&self.inbound, frame)
    }

    /// Validates a frame the runner is about to send; `Ok` when the set
    /// declares no outbound schemas.
    pub fn check_outbound(&self, frame: &Value) -> Result<(), SchemaViolation> {
        match &self.outbound {
            Some(d) => self.check(d, frame),
            None => Ok(()),
        }
    }

    fn check(&self, direction: &Direction, frame: &Value) -> Result<(), SchemaViolation> {
        let tag = self
            .discriminator
            .as_deref()
            .and_then(|d| frame.get(d))
            .and_then(Value::as_str);
        let compiled = match tag.and_then(|t| direction.by_tag.get(t)) {
            Some(c) => c,
            None => match &direction.union {
                Some(c) => c,
                None => {
                    let known: Vec<&str> = direction.by_tag.keys().map(String::as_str).collect();
                    let message = match (&self.discriminator, tag) {
                        (Some(d), Some(t)) => format!(
                            "no schema for {d} {t:?} (known: {}) and the set has no union schema",
                            known.join(", ")
                        ),
                        (Some(d), None) => format!(
                            "the frame has no string `{d}` field and the set has no union schema"
                        ),
                        (None, _) => {
                            "the set has neither a discriminator nor a union schema".into()
                        }
                    };
                    return Err(SchemaViolation {
                        schema: self.path.display().to_string(),
                        instance_path: String::new(),
                        message,
                    });
                }
            },
        };
        match compiled.validator.iter_errors(frame).next() {
            None => Ok(()),
            Some(error) => {
                let (instance_path, message) = explain(&error);
                Err(SchemaViolation {
                    schema: compiled.name.clone(),
                    instance_path,
                    message,
                })
            }
        }
    }
}

/// "Not valid under any of the schemas listed in oneOf" names neither the
/// field nor the rule; union schemas fail that way for any mistake. Descend
/// into the alternative with the fewest errors and report its first one.
fn explain(error: &jsonschema::ValidationError<'_>) -> (String, String) {
    use jsonschema::error::ValidationErrorKind;
    let context = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            context
        }
        _ => return (error.instance_path().to_string(), error.to_string()),
    };
    let closest = context
        .iter()
        .filter(|branch| !branch.is_empty())
        .min_by_key(|branch| branch.len())
        .and_then(|branch| branch.first());
    match closest {
        Some(inner) => {
            let (path, message) = explain(inner);
            (
                path,
                format!("{message} (in the closest alternative of the union)"),
            )
        }
        None => (error.instance_path().to_string(), error.to_string()),
    }
}

fn compile(manifest: &Path, root: &Path, name: String) -> Result<Compiled, SchemaSetError> {
    let err = |source: SchemaFileError| SchemaSetError::Schema {
        manifest: manifest.to_path_buf(),
        schema: name.clone(),
        source,
    };
    let file = root.join(&name);
    let text = std::fs::read_to_string(&file).map_err(|source| {
        err(SchemaFileError::Read {
            path: file.clone(),
            source,
        })
    })?;
    let schema: Value =
        serde_json::from_str(&text).map_err(|e| err(SchemaFileError::NotJson(e)))?;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_base_uri(file_uri(&file))
        .with_retriever(DirRetriever {
            root: root.to_path_buf(),
        })
        .build(&schema)
        .map_err(|e| err(SchemaFileError::Invalid(e)))?;
    Ok(Compiled { name, validator })
}

/// Serves `$ref`s from files under the manifest's directory and nothing
/// else, so validation never touches the network or unrelated files.
struct DirRetriever {
    root: PathBuf,
}

impl jsonschema::Retrieve for DirRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.scheme().as_str() != "file" {
            return Err(format!(
                "refusing to fetch {uri}: only files next to the schema set are loaded"
            )
            .into());
        }
        let path = PathBuf::from(percent_decode(uri.path().as_str()));
        let normalized = normalize(&path);
        if !normalized.starts_with(normalize(&self.root)) {
            return Err(format!(
                "refusing to load {}: outside the schema set directory {}",
                path.display(),
                self.root.display()
            )
            .into());
        }
        let text = std::fs::read_to_string(&normalized)?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Resolves `.` and `..` lexically; `$ref` targets may not exist yet as
/// canonical paths and symlinks inside a schema directory are not expected.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_round_trip() {
        let p = Path::new("/tmp/a dir/x%.json");
        let uri = file_uri(p);
        assert_eq!(uri, "file:///tmp/a%20dir/x%25.json");
        assert_eq!(
            percent_decode(&uri["file://".len()..]),
            "/tmp/a dir/x%.json"
        );
    }
}
