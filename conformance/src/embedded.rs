//! `run --embedded`: the reference server, started in this process in the
//! configurations the Tidewire suites need, with the variables that tell the
//! suites where each configuration listens and which credentials it accepts.
//!
//! This is the only part of the runner that knows Tidewire: the engine gets
//! a URL and `--var` values exactly as it would for any other server.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tidewire_protocol::{ClientMessage, ErrorBody, ExtensionCode, Object, Recovery};
use tidewire_server::{
    encode_hs256, AuthMode, BoundEndpoint, Config, ConnectRate, InjectedFault, RateLimit, Server,
    ServerError, ServerHandle, StaticToken, Variant,
};
use ws_conformance::{FreshVars, RunOptions};

/// The origin the `limits_url` server allows.
const ALLOWED_ORIGIN: &str = "https://app.tidewire.test";
const JWT_SECRET: &[u8] = b"tidewire-conformance-secret";
/// The display name the `token_named` token gives its connections.
const NAMED_DISPLAY_NAME: &str = "Ada Lovelace";

/// The reference servers of one embedded run.
pub struct Embedded {
    servers: Vec<ServerHandle>,
    /// Owns the `shutdown_url` server until it has shut itself down.
    shutting_down: tokio::task::JoinHandle<()>,
    /// The run URL: the server every case uses unless it names another.
    pub url: String,
    /// `--var` values for the suites.
    pub vars: BTreeMap<String, String>,
    faults: Vec<InjectedFault>,
    variant: Variant,
}

fn tokens() -> HashMap<String, StaticToken> {
    let token = |principal: &str, scopes: &[&str]| StaticToken {
        principal: principal.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        display_name: None,
    };
    HashMap::from([
        ("tw-admin".to_string(), token("admin", &["*"])),
        // A token that names a display name, for the cases of section 11.7.
        (
            "tw-named".to_string(),
            StaticToken {
                display_name: Some(NAMED_DISPLAY_NAME.into()),
                ..token("named", &["*"])
            },
        ),
        // The scopes the `token_narrow` cases of fixtures/auth.json describe:
        // one glob or exact target per scope kind, so each is tested on both
        // sides of its boundary.
        (
            "tw-narrow".to_string(),
            token(
                "narrow",
                &[
                    "read:collection:twauth-narrow.*",
                    "write:collection:twauth-narrow.notes",
                    "subscribe:topic:twauth-narrow.*",
                    "publish:topic:twauth-narrow.news",
                    "join:room:twauth-narrow-*",
                ],
            ),
        ),
        (
            "tw-reader".to_string(),
            token(
                "reader",
                &[
                    "read:collection:*",
                    "subscribe:topic:*",
                    "join:room:public-*",
                ],
            ),
        ),
    ])
}

/// What every configuration shares; the variant's defaults fill the rest.
fn base(variant: Variant) -> Config {
    Config {
        auth_mode: AuthMode::Optional,
        heartbeat_interval: Duration::from_millis(1000),
        tokens: tokens(),
        jwt_secret: Some(JWT_SECRET.to_vec()),
        ..Config::for_variant(variant)
    }
}

/// How long after a case starts its `jwt_expiring` expires: the expiry cases
/// wait for it, and it leaves ample time to open their connections first.
const EXPIRING_TOKEN_TTL: Duration = Duration::from_millis(1500);

/// The collection whose records the `xerr_url` application validates.
const VALIDATED_COLLECTION: &str = "xerr-validated";

/// `config` with a hook that refuses a `create` in [`VALIDATED_COLLECTION`]
/// of a record without a string `name`, with an application's error code.
fn with_application_codes(config: Config, variant: Variant) -> Config {
    let (code, retry) = match variant {
        Variant::Usual => ("x-validation_error", Recovery::Terminal),
        Variant::Alternate => ("x-app.schema-check", Recovery::Retryable),
    };
    let code = ExtensionCode::new(code).expect("a valid application code");
    config.before_operation(move |ctx| match ctx.request {
        ClientMessage::Create(create)
            if create
                .collection
                .as_ref()
                .is_some_and(|c| c.as_str() == VALIDATED_COLLECTION)
                && !create.record.get("name").is_some_and(|n| n.is_string()) =>
        {
            let mut details = Object::new();
            details.insert("path".into(), "record.name".into());
            Err(ErrorBody {
                code: code.clone().into(),
                message: "the record does not validate: name is required".into(),
                details: Some(details),
                retry: Some(retry),
            })
        }
        _ => Ok(()),
    })
}

/// `config` narrowed by an application's row-level rule (section 8.5): a
/// record whose `private` is `true` is seen only by the principal its string
/// `owner` names, and a record without `private` by everyone. What the rule
/// says of other records is the application's: the alternate application
/// also hides a record whose `private` is any value but `false`.
fn with_private_records(config: Config, variant: Variant) -> Config {
    config.with_record_visibility(
        move |principal: &str, _database: &str, _collection: &str, record: &Object| {
            let private = match (variant, record.get("private")) {
                (_, None) => false,
                (Variant::Usual, Some(value)) => *value == json!(true),
                (Variant::Alternate, Some(value)) => *value != json!(false),
            };
            !private || record.get("owner").and_then(|o| o.as_str()) == Some(principal)
        },
    )
}

fn jwt(secret: &[u8], subject: &str, expires_in_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    encode_hs256(
        secret,
        &json!({ "sub": subject, "scope": "*", "exp": now + expires_in_secs }),
    )
}

/// A JWT that expires `ttl` from now to the millisecond: a NumericDate may
/// have a fraction (RFC 7519, section 2), and a whole second's rounding would
/// leave anywhere from no time to a whole second more.
fn jwt_expiring_in(secret: &[u8], subject: &str, ttl: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let exp = (now + ttl).as_millis() as f64 / 1000.0;
    encode_hs256(secret, &json!({ "sub": subject, "scope": "*", "exp": exp }))
}

impl Embedded {
    /// Starts every configuration as `variant`, each with `faults` injected.
    pub async fn start(
        faults: &[InjectedFault],
        variant: Variant,
    ) -> Result<Embedded, ServerError> {
        let base = || base(variant);
        // The main server also serves one library per collection
        // (`${libraries_url}/<collection>`, section 2.7), in a database whose
        // name the suites learn from `welcome.bound`: the variants differ in it.
        let libraries_database = match variant {
            Variant::Usual => "libraries",
            Variant::Alternate => "libraries-of-the-alternate",
        };
        let main = Config {
            bound_endpoints: vec![BoundEndpoint {
                path: format!("{}/libraries/{{collection}}", base().path),
                database: Some(libraries_database.into()),
            }],
            ..base()
        };
        let configs = [
            ("url", main),
            (
                "auth_required_url",
                Config {
                    auth_mode: AuthMode::Required,
                    auth_timeout: Duration::from_millis(500),
                    ..base()
                },
            ),
            (
                "limits_url",
                Config {
                    rate_limit: Some(RateLimit {
                        messages: 10,
                        window_ms: 1000,
                    }),
                    max_subscriptions: 2,
                    max_message_bytes: 4096,
                    // The depth bad.nesting.boundary is written for.
                    max_nesting_depth: 32,
                    allowed_origins: vec![ALLOWED_ORIGIN.into()],
                    ..base()
                },
            ),
            (
                "capped_url",
                Config {
                    max_connections: 2,
                    ..base()
                },
            ),
            // Only a server in mode `off` can show that `auth` is then not a
            // profile it lists (TW-AUTH-1), and that requests of an unlisted
            // profile are `not_supported` (TW-CORE-22).
            (
                "auth_off_url",
                Config {
                    auth_mode: AuthMode::Off,
                    ..base()
                },
            ),
            // A journal of a few changes, so that a case can age a resume
            // token out of it with a handful of writes (TW-RESUME-4); the
            // main server keeps 10,000.
            (
                "retention_url",
                Config {
                    journal_retention: 3,
                    topic_history: 3,
                    ..base()
                },
            ),
            // Short heartbeats on a short journal, so that a case can see a
            // quiet watch's position advance past what the journal keeps
            // within a fraction of a second (TW-POS-8).
            (
                "quiet_url",
                Config {
                    journal_retention: 3,
                    heartbeat_interval: Duration::from_millis(100),
                    ..base()
                },
            ),
            // Another run of the server, so that a case can check that two
            // runs issue different epochs and ids (TW-POS-6).
            ("second_run_url", base()),
            // A small outbound queue, so that a client that stops reading
            // becomes a slow consumer (TW-LIMIT-8/9/11) as soon as the socket
            // buffers are full, and no rate limit, so that one case can
            // produce the pushes that fill them quickly.
            (
                "slow_url",
                Config {
                    outbound_queue: 4,
                    rate_limit: None,
                    ..base()
                },
            ),
            // Short liveness bounds, so that a case can show a client that
            // stops answering pings closed within them (TW-LIVE-3) in well
            // under a second; elsewhere a paused reader must meet the slow-
            // consumer rules, not these.
            (
                "liveness_url",
                Config {
                    ping_interval: Duration::from_millis(150),
                    ping_timeout: Duration::from_millis(150),
                    ..base()
                },
            ),
            // A server no other case uses, so that a case can check the
            // server-wide gauges of stats exactly (stats.get.gauges-fall).
            ("stats_url", base()),
            // Another server no other case uses, so that a case can tell the
            // total of connections from the gauge (stats.metrics.connections-total).
            ("metrics_url", base()),
            // A server no other case writes to, so that a read reflects its
            // case's own last write (resume.pos.read-then-watch).
            ("positions_url", base()),
            // A connection rate a case reaches with four handshakes, on a
            // server no other case uses: the rate counts every handshake
            // from the runner's address.
            (
                "connect_rate_url",
                Config {
                    connect_rate: Some(ConnectRate {
                        attempts: 3,
                        window_ms: 60_000,
                    }),
                    ..base()
                },
            ),
            // A connection rate whose window is short enough to wait out:
            // a generated case waits for it to pass and then reaches the
            // rate with four handshakes, on a server no other client uses.
            (
                "connect_burst_url",
                Config {
                    connect_rate: Some(ConnectRate {
                        attempts: 3,
                        window_ms: 1000,
                    }),
                    ..base()
                },
            ),
            // A room post rate a case reaches with four posts; per room, so
            // cases in rooms of their own may share the server.
            (
                "room_rate_url",
                Config {
                    room_post_rate: Some(RateLimit {
                        messages: 3,
                        window_ms: 60_000,
                    }),
                    ..base()
                },
            ),
            // An application that validates the records of one collection
            // with a hook and refuses others with a code of its own (section
            // 17.1); each variant names the code and its class differently.
            ("xerr_url", with_application_codes(base(), variant)),
            // An application that hides private records from every principal
            // but their owner (section 8.5).
            ("authz_url", with_private_records(base(), variant)),
        ];
        let mut servers = Vec::new();
        let mut vars = BTreeMap::new();
        for (name, config) in configs {
            let config = faults.iter().copied().fold(config, Config::with_fault);
            let server = match Server::start(config).await {
                Ok(server) => server,
                Err(e) => {
                    for started in servers {
                        ServerHandle::shutdown(started).await;
                    }
                    return Err(e);
                }
            };
            vars.insert(name.to_string(), server.ws_url());
            servers.push(server);
        }
        let url = vars.remove("url").expect("the main server is configured");
        vars.insert("libraries_url".to_string(), format!("{url}/libraries"));
        // Graceful shutdown (TW-CORE-33) can only be observed by ending a
        // server, so this one serves a single case: it shuts down once that
        // case's connections are open.
        let single_use = faults.iter().copied().fold(base(), Config::with_fault);
        let single_use = match Server::start(single_use).await {
            Ok(server) => server,
            Err(e) => {
                for started in servers {
                    ServerHandle::shutdown(started).await;
                }
                return Err(e);
            }
        };
        vars.insert("shutdown_url".to_string(), single_use.ws_url());
        let shutting_down = tokio::spawn(shut_down_once_used(single_use));
        vars.extend([
            ("allowed_origin".to_string(), ALLOWED_ORIGIN.to_string()),
            ("token_admin".to_string(), "tw-admin".to_string()),
            ("token_reader".to_string(), "tw-reader".to_string()),
            ("token_narrow".to_string(), "tw-narrow".to_string()),
            ("token_named".to_string(), "tw-named".to_string()),
            // The owner the cases on `authz_url` write private records for.
            ("authz_owner".to_string(), "named".to_string()),
            ("authz_owner_token".to_string(), "tw-named".to_string()),
            (
                "token_named_display_name".to_string(),
                NAMED_DISPLAY_NAME.to_string(),
            ),
            ("jwt_admin".to_string(), jwt(JWT_SECRET, "jwt-admin", 3600)),
            (
                "jwt_expired".to_string(),
                jwt(JWT_SECRET, "jwt-admin", -3600),
            ),
            (
                "jwt_bad_signature".to_string(),
                jwt(b"not-the-server-secret", "jwt-admin", 3600),
            ),
        ]);
        Ok(Embedded {
            servers,
            shutting_down,
            url,
            vars,
            faults: faults.to_vec(),
            variant,
        })
    }

    /// `jwt_expiring`, minted as each case starts to expire
    /// [`EXPIRING_TOKEN_TTL`] later: a run variable fixed at the start of the
    /// run would have expired before a late case used it.
    fn fresh_vars() -> FreshVars {
        FreshVars::new(vec!["jwt_expiring".to_string()], || {
            BTreeMap::from([(
                "jwt_expiring".to_string(),
                jwt_expiring_in(JWT_SECRET, "jwt-admin", EXPIRING_TOKEN_TTL),
            )])
        })
    }

    /// Gives a run the variables of these servers; a `--var` of the same
    /// name already in `options` wins.
    pub fn provide_vars(&self, options: &mut RunOptions) {
        for (name, value) in &self.vars {
            options
                .vars
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        options.fresh_vars = Some(Self::fresh_vars());
    }

    /// What the embedded servers are, for the report header.
    pub fn describe(&self) -> String {
        let mut out = format!("embedded reference server at {}", self.url);
        if self.variant != Variant::Usual {
            out.push_str(&format!(" (variant {})", self.variant));
        }
        if !self.faults.is_empty() {
            let names: Vec<&str> = self.faults.iter().map(|f| f.name()).collect();
            out.push_str(&format!(" with injected fault {}", names.join(", ")));
        }
        for (name, value) in &self.vars {
            if name.ends_with("_url") {
                out.push_str(&format!("\n  {name} = {value}"));
            }
        }
        out
    }

    pub async fn shutdown(self) {
        // Unused (its case was not selected), the server is still waiting
        // for a connection: aborting drops its handle, which stops it.
        if !self.shutting_down.is_finished() {
            self.shutting_down.abort();
        }
        let _ = self.shutting_down.await;
        for server in self.servers {
            server.shutdown().await;
        }
    }
}

/// Shuts `server` down gracefully shortly after its first connection gets
/// its `welcome`: as soon as a second one is open too, or five seconds after
/// the first, so a case can check the shutdown on two connections without
/// racing it even on a loaded machine, and a case with one connection is not
/// kept waiting for ever.
async fn shut_down_once_used(server: ServerHandle) {
    const POLL: Duration = Duration::from_millis(20);
    while server.stats().connections == 0 {
        tokio::time::sleep(POLL).await;
    }
    let first = tokio::time::Instant::now();
    while server.stats().connections < 2 && first.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(POLL).await;
    }
    server.shutdown().await;
}
