//! Endpoints whose path binds a database, or a database and a collection
//! (spec section 2.7), and how a request's names resolve against them.

use tidewire_protocol::{BoundScope, CollectionName, ErrorBody};

use crate::config::Faults;
use crate::util::invalid_at;

/// A path template such as `/v1/libraries/{collection}`: literal segments,
/// and `{database}` and `{collection}` for the names it binds. A template
/// without `{database}` binds `database`, fixed by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundEndpoint {
    pub path: String,
    pub database: Option<String>,
}

impl BoundEndpoint {
    /// Parses `TEMPLATE` or `TEMPLATE=DATABASE`, as `--bound-endpoint` takes it.
    pub fn parse(spec: &str) -> Result<BoundEndpoint, String> {
        let (path, database) = match spec.split_once('=') {
            Some((path, database)) => (path, Some(database.to_string())),
            None => (spec, None),
        };
        let endpoint = BoundEndpoint {
            path: path.to_string(),
            database,
        };
        endpoint.validate()?;
        Ok(endpoint)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!(
                "bound endpoint {:?} must start with `/`",
                self.path
            ));
        }
        let placeholders = |name: &str| self.path.split('/').filter(|s| *s == name).count();
        let (databases, collections) = (placeholders("{database}"), placeholders("{collection}"));
        if databases > 1 || collections > 1 {
            return Err(format!(
                "bound endpoint {:?} names a placeholder twice",
                self.path
            ));
        }
        match (databases, &self.database) {
            (0, None) => Err(format!(
                "bound endpoint {:?} binds no database: add {{database}} or `=DATABASE`",
                self.path
            )),
            (1, Some(_)) => Err(format!(
                "bound endpoint {:?} takes its database from the path and from `=`",
                self.path
            )),
            (_, Some(database)) if CollectionName::new(database.clone()).is_err() => {
                Err(format!("{database:?} is not a database name"))
            }
            _ => Ok(()),
        }
    }

    /// The names `path` binds, when it is an instance of this template.
    pub(crate) fn matches(&self, path: &str) -> Option<BoundScope> {
        let template: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if template.len() != actual.len() {
            return None;
        }
        let mut database = self.database.clone();
        let mut collection = None;
        for (want, got) in template.iter().zip(&actual) {
            match *want {
                "{database}" => database = Some(got.to_string()),
                "{collection}" => collection = Some(got.to_string()),
                literal if literal == *got => {}
                _ => return None,
            }
        }
        // A segment that is no valid name is not an instance: 404, as any unknown path.
        let database = CollectionName::new(database?).ok()?;
        let collection = match collection {
            Some(name) => Some(CollectionName::new(name).ok()?),
            None => None,
        };
        Some(BoundScope {
            database,
            collection,
        })
    }
}

/// Resolves the `database` and `collection` of a records or vector request
/// on a connection bound to `bound` (none on the main endpoint): omitted
/// names are the bound ones (TW-ENDPOINT-2), other names are refused
/// (TW-ENDPOINT-3), and without a binding both are required (TW-ENDPOINT-4).
pub(crate) fn resolve(
    bound: Option<&BoundScope>,
    faults: &Faults,
    database: Option<&CollectionName>,
    collection: Option<&CollectionName>,
) -> Result<(CollectionName, CollectionName), ErrorBody> {
    let database = resolve_one(
        "database",
        bound.map(|b| &b.database),
        bound.is_some(),
        faults,
        database,
    )?;
    let collection = resolve_one(
        "collection",
        bound.and_then(|b| b.collection.as_ref()),
        bound.is_some(),
        faults,
        collection,
    )?;
    Ok((database, collection))
}

/// The watch target on a bound connection: omitted names narrow to the bound
/// ones, and other names are refused. Without a binding the watch's own
/// (optional) names stand.
pub(crate) fn resolve_watch(
    bound: Option<&BoundScope>,
    faults: &Faults,
    database: Option<&CollectionName>,
    collection: Option<&CollectionName>,
) -> Result<(Option<CollectionName>, Option<CollectionName>), ErrorBody> {
    let Some(bound) = bound else {
        return Ok((database.cloned(), collection.cloned()));
    };
    let database = resolve_one("database", Some(&bound.database), true, faults, database)?;
    let collection = match (&bound.collection, collection) {
        (None, given) => given.cloned(),
        (Some(_), given) => Some(resolve_one(
            "collection",
            bound.collection.as_ref(),
            true,
            faults,
            given,
        )?),
    };
    Ok((Some(database), collection))
}

fn resolve_one(
    member: &str,
    bound_name: Option<&CollectionName>,
    on_bound_endpoint: bool,
    faults: &Faults,
    given: Option<&CollectionName>,
) -> Result<CollectionName, ErrorBody> {
    match (bound_name, given) {
        (Some(bound), Some(given)) if given != bound && !faults.bound_names_unchecked => {
            Err(invalid_at(
                member,
                format!("this endpoint serves {member} {bound}, not {given}"),
            ))
        }
        (_, Some(given)) => Ok(given.clone()),
        (Some(_), None) if faults.bound_names_required => {
            Err(invalid_at(member, format!("`{member}` is required")))
        }
        (Some(bound), None) => Ok(bound.clone()),
        (None, None) if faults.unbound_names_defaulted => {
            Ok(CollectionName::new("default".to_string()).expect("a valid name"))
        }
        (None, None) => Err(invalid_at(
            member,
            if on_bound_endpoint {
                format!("`{member}` is required: this endpoint binds none")
            } else {
                format!("`{member}` is required on an endpoint that binds none")
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> CollectionName {
        CollectionName::new(n.to_string()).unwrap()
    }

    #[test]
    fn templates_bind_from_the_path_or_the_configuration() {
        let libraries = BoundEndpoint::parse("/v1/libraries/{collection}=libs").unwrap();
        let bound = libraries.matches("/v1/libraries/docs").unwrap();
        assert_eq!(bound.database, name("libs"));
        assert_eq!(bound.collection, Some(name("docs")));
        assert_eq!(libraries.matches("/v1/libraries/a.b"), None);
        assert_eq!(libraries.matches("/v1/libraries"), None);
        assert_eq!(libraries.matches("/v1/other/docs"), None);
        let databases = BoundEndpoint::parse("/v1/db/{database}").unwrap();
        let bound = databases.matches("/v1/db/shop").unwrap();
        assert_eq!((bound.database, bound.collection), (name("shop"), None));
        assert!(BoundEndpoint::parse("/v1/x/{collection}").is_err());
        assert!(BoundEndpoint::parse("/v1/{database}=libs").is_err());
        assert!(BoundEndpoint::parse("v1/{database}").is_err());
    }

    #[test]
    fn names_resolve_against_the_binding() {
        let faults = Faults::default();
        let bound = BoundScope {
            database: name("libs"),
            collection: Some(name("docs")),
        };
        let (db, coll) = resolve(Some(&bound), &faults, None, None).unwrap();
        assert_eq!((db, coll), (name("libs"), name("docs")));
        let other = resolve(Some(&bound), &faults, None, Some(&name("x"))).unwrap_err();
        assert_eq!(other.details.unwrap()["path"], "collection");
        let missing = resolve(None, &faults, None, Some(&name("x"))).unwrap_err();
        assert_eq!(missing.details.unwrap()["path"], "database");
        let (db, coll) = resolve_watch(Some(&bound), &faults, None, None).unwrap();
        assert_eq!((db, coll), (Some(name("libs")), Some(name("docs"))));
        assert_eq!(
            resolve_watch(None, &faults, None, None).unwrap(),
            (None, None)
        );
    }
}
