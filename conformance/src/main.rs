mod embedded;
mod prop;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tidewire_server::{InjectedFault, ServerError, Variant};
use ws_conformance::fixture::LoadedCase;
use ws_conformance::render::{self, Style};
use ws_conformance::report::{Requirements, RequirementsError};
use ws_conformance::{
    load_suites, Auth, Baseline, BaselineError, CaseReport, Filter, LoadError, Observer, Partition,
    Report, RunOptions, Runner, SchemaSet, SchemaSetError, SetupError, Status, Suite, TlsConfig,
    TlsError,
};

/// The exit statuses of `tidewire-conform`, in one place.
mod exit_codes {
    /// Every selected case passed, or failed only as listed in `--baseline`.
    pub const SUCCESS: u8 = 0;
    /// A case failed (or, for `prop`, a generated sequence did).
    pub const CASES_FAILED: u8 = 1;
    /// A usage or setup error: nothing could be judged.
    pub const SETUP_ERROR: u8 = 2;
    /// Whoever read stdout stopped reading (`| head`): ended quietly, with
    /// the status of a process that SIGPIPE ended.
    pub const BROKEN_PIPE: i32 = 141;
}

/// Why a command could not judge anything (exit status 2).
#[derive(Debug, thiserror::Error)]
enum CliError {
    // clap's `requires` cannot see a bool flag left at its default.
    #[error("--inject-fault works only with --embedded")]
    FaultsNeedEmbedded,
    #[error("--variant works only with --embedded")]
    VariantNeedsEmbedded,
    #[error("no suites given: pass --suite PATH (a suite file or a directory of them)")]
    NoSuites,
    #[error("a URL is required (or --embedded)")]
    NoUrl,
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    SchemaSet(#[from] SchemaSetError),
    #[error(transparent)]
    Requirements(#[from] RequirementsError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Prop(#[from] prop::PropError),
    #[error("cannot read baseline {}", path.display())]
    Baseline {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid baseline {}", path.display())]
    BaselineContent {
        path: PathBuf,
        #[source]
        source: BaselineError,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot start the reference server")]
    Embedded(#[source] ServerError),
}

/// `error: ...`, then one `  caused by: ...` line per source, outermost first.
fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = format!("error: {error}");
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(&format!("\n  caused by: {source}"));
        cause = source.source();
    }
    text
}

/// Runs declarative conformance suites against a WebSocket endpoint.
///
/// Exit status: 0 when every selected case passed (or failed only as listed
/// in --baseline), 1 when a case failed, 2 on usage or setup errors.
#[derive(Debug, Parser)]
#[command(name = "tidewire-conform", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run suites against the endpoint at URL.
    Run(Box<RunArgs>),
    /// List the cases a run would select, without connecting.
    List(ListArgs),
    /// Generate request sequences, check every reply and push against the
    /// Tidewire model, and shrink a failing sequence to a suite file.
    Prop(Box<PropArgs>),
    /// Print the JSON Schema of suite files (checked in as
    /// conformance/fixture.schema.json).
    FixtureSchema,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    format: ListFormat,
    /// Print what each case needs to run instead of its title: the
    /// profiles the server must claim and the --var values to give.
    #[arg(long, conflicts_with = "format")]
    needs: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct SelectArgs {
    /// Suite file, or directory whose *.json files are suites (sorted;
    /// subdirectories are not searched). With --embedded, defaults to the
    /// Tidewire suites in fixtures/.
    #[arg(short = 's', long = "suite", value_name = "PATH")]
    suites: Vec<PathBuf>,
    /// Schema set manifest for every suite, instead of their `schemas` field.
    #[arg(long, value_name = "PATH")]
    schemas: Option<PathBuf>,
    /// Run only cases whose id matches this glob (repeatable).
    #[arg(short = 'c', long = "case", value_name = "GLOB")]
    cases: Vec<String>,
    /// Leave out cases whose id matches this glob (repeatable).
    #[arg(short = 'e', long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Run only cases with this tag (repeatable; any of them).
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Profile the server implements (repeatable); cases of other profiles
    /// are skipped. All profiles run when not given.
    #[arg(short = 'p', long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Only shard K of N of the selected cases (every N-th, starting at the
    /// K-th), to split a run across N CI jobs.
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
    /// Requirements file (a JSON array of {id, profile, level, subject?,
    /// applies_with?}): report the ids of the tested profiles that no case
    /// covers. With --embedded, defaults to spec/requirements.json.
    #[arg(long, value_name = "FILE")]
    requirements: Option<PathBuf>,
}

/// The reference server started in this process instead of a URL, as `run`
/// and `prop` both offer it.
#[derive(Debug, Args)]
struct EmbeddedArgs {
    /// Start the Tidewire reference server in this process (in every
    /// configuration the suites use) and test it instead of a URL.
    #[arg(id = "embedded", long = "embedded", conflicts_with = "url")]
    on: bool,
    /// With --embedded: make every embedded server misbehave in this named
    /// way, to see which cases catch it (repeatable).
    #[arg(
        long = "inject-fault",
        value_name = "NAME",
        value_parser = PossibleValuesParser::new(InjectedFault::names())
            .try_map(|name| name.parse::<InjectedFault>())
    )]
    inject_faults: Vec<InjectedFault>,
    /// With --embedded: start the embedded servers as this variant of the
    /// reference server; `alternate` takes the other side of every freedom
    /// the specification gives a server (see reference-server/README.md).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "usual",
        value_parser = PossibleValuesParser::new(["usual", "alternate"])
            .try_map(|name| name.parse::<Variant>())
    )]
    variant: Variant,
}

impl EmbeddedArgs {
    /// Faults and variants exist only in the embedded server. clap counts
    /// the flag's default `false` as present, so `requires` cannot say this.
    fn check(&self) -> Result<(), CliError> {
        if !self.inject_faults.is_empty() && !self.on {
            return Err(CliError::FaultsNeedEmbedded);
        }
        if self.variant != Variant::Usual && !self.on {
            return Err(CliError::VariantNeedsEmbedded);
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
struct PropArgs {
    /// WebSocket URL of the Tidewire server under test.
    #[arg(value_name = "URL", required_unless_present = "embedded")]
    url: Option<String>,
    #[command(flatten)]
    embedded: EmbeddedArgs,
    /// Seed of the generator; the same seed generates the same sequences.
    /// Printed with every run (random when not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of sequences to generate.
    #[arg(long, default_value_t = 200)]
    cases: u32,
    /// Most operations in one sequence.
    #[arg(long, value_name = "N", default_value_t = 30)]
    max_len: usize,
    /// Profile to generate requests of (repeatable); by default those the
    /// server claims in its welcome.
    #[arg(short = 'p', long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Schema set every frame is validated against.
    #[arg(long, value_name = "PATH")]
    schemas: Option<PathBuf>,
    /// Where the shrunk failing sequence is written (default
    /// prop-failure-SEED.json).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Timeout of each expected frame, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout: u64,
    /// Token added to every handshake as the query parameter `token`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CONFORM_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// When to use colors.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorChoice,
}

/// A file of this repository, for the Tidewire defaults of `--embedded` and
/// `prop`: relative to the working directory when it is there (a checkout),
/// else next to the sources this binary was built from.
fn repository_path(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative)
    }
}

fn prop_command(args: PropArgs) -> Result<ExitCode, CliError> {
    args.embedded.check()?;
    let code = prop::run(prop::PropSettings {
        url: args.url,
        faults: args.embedded.inject_faults,
        variant: args.embedded.variant,
        seed: args.seed,
        cases: args.cases,
        max_len: args.max_len,
        profiles: args.profiles,
        schemas: args
            .schemas
            .unwrap_or_else(|| repository_path("spec/schema/schema-set.json")),
        out: args.out,
        options: RunOptions {
            step_timeout: Duration::from_millis(args.timeout),
            auth: args.token.map(|token| Auth::Query {
                param: "token".into(),
                token,
            }),
            ..RunOptions::default()
        },
        color: use_color(args.color, false),
    })?;
    Ok(code)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// WebSocket URL of the server under test, e.g. ws://127.0.0.1:9000/ws
    #[arg(value_name = "URL", required_unless_present_any = ["list", "embedded"])]
    url: Option<String>,
    #[command(flatten)]
    embedded: EmbeddedArgs,
    /// A value cases can use as ${NAME}, e.g. a token or the URL of a
    /// differently configured endpoint (repeatable). Cases that need a
    /// variable not given are skipped.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    #[command(flatten)]
    select: SelectArgs,
    /// Print the selected cases and exit without connecting.
    #[arg(long)]
    list: bool,

    /// Default timeout of each waiting step and handshake, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5000,
        help_heading = "Limits"
    )]
    timeout: u64,
    /// Default deadline for a whole case, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 60_000,
        help_heading = "Limits"
    )]
    case_timeout: u64,
    /// Largest frame or message accepted from the server (e.g. 16MiB, 65536).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size, help_heading = "Limits")]
    max_frame: usize,
    /// Unconsumed frames held per connection before the case fails.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        help_heading = "Limits"
    )]
    max_buffered: usize,
    /// Bytes of unconsumed frames held per connection before the case fails
    /// as flooded (32 MiB across all connections of the run); one unread
    /// frame is always held, up to --max-frame.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size, help_heading = "Limits")]
    max_buffered_bytes: usize,
    /// Transcript kept per case: its first and last entries within this
    /// size, saying what was left out (4 MiB across the report).
    #[arg(long, value_name = "SIZE", default_value = "256KiB", value_parser = parse_size, help_heading = "Limits")]
    max_transcript_bytes: usize,

    /// Token added to every handshake (see --token-param, --token-bearer).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CONFORM_TOKEN",
        hide_env_values = true,
        help_heading = "Handshake"
    )]
    token: Option<String>,
    /// Query parameter that carries --token.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "token",
        help_heading = "Handshake"
    )]
    token_param: String,
    /// Send --token as `Authorization: Bearer TOKEN` instead of a query parameter.
    #[arg(long, help_heading = "Handshake")]
    token_bearer: bool,
    /// Header added to every handshake, as 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "'K: V'", value_parser = parse_header, help_heading = "Handshake")]
    headers: Vec<(String, String)>,
    /// PEM file of CA certificates trusted for wss:// besides the built-in
    /// roots, e.g. a private CA (repeatable).
    #[arg(long = "ca-cert", value_name = "FILE", help_heading = "Handshake")]
    ca_certs: Vec<PathBuf>,

    /// Number of cases to run at once. Cases mostly wait on the network, so
    /// the default is well above the number of cores.
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = DEFAULT_JOBS,
        help_heading = "Execution"
    )]
    jobs: usize,
    /// Stop starting cases after the first failure (same as --max-fail 1).
    #[arg(long, help_heading = "Execution")]
    fail_fast: bool,
    /// Stop starting cases after N failures.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Execution")]
    max_fail: Option<u64>,
    /// Run a failing case up to N more times; one that then passes is FLAKY.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Execution"
    )]
    retries: u32,
    /// Let FLAKY cases pass the run (exit 0).
    #[arg(long, help_heading = "Execution")]
    allow_flaky: bool,
    /// Accept baseline ids that match no loaded case.
    #[arg(long, help_heading = "Execution")]
    allow_stale: bool,
    /// Treat failures of SHOULD-level cases as failures instead of warnings.
    #[arg(long, help_heading = "Execution")]
    strict: bool,
    /// File of known failing case ids (one per line, # comments); only
    /// other failures fail the run.
    #[arg(long, value_name = "FILE", help_heading = "Execution")]
    baseline: Option<PathBuf>,

    /// Write a JSON report with full transcripts to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    html: Option<PathBuf>,
    /// When to use colors.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "auto",
        help_heading = "Output"
    )]
    color: ColorChoice,
    /// Same as --color never.
    #[arg(long, help_heading = "Output")]
    no_color: bool,
    /// Transcript entries shown for each failure.
    #[arg(long, value_name = "N", default_value_t = 12, help_heading = "Output")]
    transcript_lines: usize,
}

/// A command-line value that does not parse; clap prints it after the flag.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("{0:?} is not a size like 65536 or 16MiB")]
    NotASize(String),
    #[error("unknown unit in {0:?} (use KiB, MiB or GiB)")]
    UnknownUnit(String),
    #[error("{0:?} is out of range")]
    SizeOutOfRange(String),
    #[error("{0:?} is not a variable; write NAME=VALUE")]
    NotAVariable(String),
    #[error("{0:?} is not a variable name (letters, digits and _ only)")]
    NotAVariableName(String),
    #[error("{0:?} is not a header; write 'Name: value'")]
    NotAHeader(String),
    #[error("{0:?} has an empty header name")]
    EmptyHeaderName(String),
}

fn parse_size(s: &str) -> Result<usize, ArgError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| ArgError::NotASize(s.to_string()))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(ArgError::UnknownUnit(s.to_string())),
    };
    n.checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| ArgError::SizeOutOfRange(s.to_string()))
}

fn parse_var(s: &str) -> Result<(String, String), ArgError> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| ArgError::NotAVariable(s.to_string()))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ArgError::NotAVariableName(name.to_string()));
    }
    Ok((name.to_string(), value.to_string()))
}

fn parse_header(s: &str) -> Result<(String, String), ArgError> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| ArgError::NotAHeader(s.to_string()))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ArgError::EmptyHeaderName(s.to_string()));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// Cases at once by default: a run waits on the network far more than it
/// computes (at `-j 4` the main job used 7% of one core; at 32 its wall
/// time is bounded by its longest cases rather than by the slots).
const DEFAULT_JOBS: usize = 32;

/// Writes to stdout; when the reader has gone (`| head`), ends the process
/// quietly instead of failing every later line.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(exit_codes::BROKEN_PIPE);
        }
    }
}

/// `print!` panics on a closed stdout; a closed pipe is the reader's choice,
/// so it ends the process quietly wherever it happens.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(exit_codes::BROKEN_PIPE);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", error_text(&error));
            ExitCode::from(exit_codes::SETUP_ERROR)
        }
    }
}

fn run() -> Result<ExitCode, CliError> {
    match Cli::parse().command {
        Command::FixtureSchema => {
            print!("{}", ws_conformance::fixture_schema_text());
            Ok(ExitCode::from(exit_codes::SUCCESS))
        }
        Command::List(args) if args.needs => {
            let suites = load(&args.select)?;
            list_needs(&args.select, &suites)
        }
        Command::List(args) => {
            let suites = load(&args.select)?;
            list(&args.select, args.format, &suites, RunOptions::default())
        }
        Command::Run(args) => run_command(*args),
        Command::Prop(args) => prop_command(*args),
    }
}

fn load_requirements(select: &SelectArgs) -> Result<Option<Requirements>, RequirementsError> {
    select
        .requirements
        .as_deref()
        .map(Requirements::load)
        .transpose()
}

fn load(select: &SelectArgs) -> Result<Vec<Suite>, CliError> {
    if select.suites.is_empty() {
        return Err(CliError::NoSuites);
    }
    let schemas = match &select.schemas {
        Some(path) => Some(Arc::new(SchemaSet::load(path)?)),
        None => None,
    };
    Ok(load_suites(&select.suites, schemas)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Runtime::new().map_err(CliError::Runtime)
}

fn filter(select: &SelectArgs) -> Filter {
    Filter {
        cases: select.cases.clone(),
        exclude: select.exclude.clone(),
        tags: select.tags.clone(),
        profiles: select.profiles.clone(),
        partition: select.partition,
    }
}

/// `variables` holds what a run would have: a case listed as skipped for a
/// missing variable is one that the same `run` would skip. Selecting
/// nothing is the same setup error as for `run`.
fn list(
    select: &SelectArgs,
    format: ListFormat,
    suites: &[Suite],
    variables: RunOptions,
) -> Result<ExitCode, CliError> {
    let requirements = load_requirements(select)?;
    let runner = Runner::new(RunOptions {
        filter: filter(select),
        ..variables
    });
    let plan = runner.plan(suites)?;
    if plan.cases.is_empty() {
        return Err(SetupError::NothingSelected {
            total: plan.filtered_out,
        }
        .into());
    }
    let coverage = requirements
        .as_ref()
        .map(|r| plan.coverage(r, runner.requested_profiles().as_deref()));
    if format == ListFormat::Json {
        let cases: Vec<serde_json::Value> = plan
            .cases
            .iter()
            .map(|planned| {
                let c = &planned.case.case;
                serde_json::json!({
                    "id": c.id,
                    "title": c.title,
                    "profile": c.profile,
                    "requirements": c.requirements,
                    "tags": c.tags,
                    "location": format!("{}:{}", planned.case.file, planned.case.position),
                    "skip_reason": planned.skip.as_ref().map(ToString::to_string),
                })
            })
            .collect();
        let listing = serde_json::json!({
            "cases": cases,
            "selected": plan.cases.len(),
            "filtered_out": plan.filtered_out,
            "coverage": coverage,
        });
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&listing).expect("listings serialize")
        ));
        return Ok(ExitCode::from(exit_codes::SUCCESS));
    }
    let width = plan
        .cases
        .iter()
        .map(|p| p.case.case.id.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for planned in &plan.cases {
        let c = &planned.case.case;
        let skip = planned
            .skip
            .as_ref()
            .map(|s| format!("  (skipped: {s})"))
            .unwrap_or_default();
        out.push_str(&render::printable(&format!(
            "{:<width$}  [{}] {}  {}:{}{skip}",
            c.id,
            c.profile.as_deref().unwrap_or("-"),
            c.title,
            planned.case.file,
            planned.case.position
        )));
        out.push('\n');
    }
    out.push_str(&format!(
        "{} case(s) selected, {} filtered out\n",
        plan.cases.len(),
        plan.filtered_out
    ));
    if let Some(coverage) = &coverage {
        out.push_str(&render::coverage(coverage, Style { color: false }, 100));
    }
    emit(&out);
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

/// Prints case lines to stdout and, on a terminal, a progress line on stderr.
struct Terminal {
    style: Style,
    progress: bool,
    transcript_lines: usize,
    running: Vec<String>,
    passed: usize,
    failed: usize,
}

impl Terminal {
    fn clear_progress(&self) {
        if self.progress {
            eprint!("\r\x1b[2K");
        }
    }

    /// `[12/209] 4 running, 7 passed, 1 failed: case.id`, cut to fit a line.
    fn draw_progress(&self, done: usize, total: usize) {
        if self.progress && done < total {
            let current = self.running.last().map(String::as_str).unwrap_or("");
            let line = format!(
                "[{done}/{total}] {} running, {} passed, {} failed: {}",
                self.running.len(),
                self.passed,
                self.failed,
                render::printable(current)
            );
            let line: String = line.chars().take(99).collect();
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        }
    }
}

impl Observer for Terminal {
    fn started(&mut self, case: &LoadedCase, _running: usize, done: usize, total: usize) {
        self.running.push(case.case.id.clone());
        self.draw_progress(done, total);
    }

    fn finished(&mut self, report: &CaseReport, done: usize, total: usize) {
        self.running.retain(|id| *id != report.id);
        match report.status {
            Status::Pass => self.passed += 1,
            Status::Fail => self.failed += 1,
            _ => {}
        }
        self.clear_progress();
        let mut out = format!("{}\n", render::case_line(report, self.style));
        for w in &report.warnings {
            out.push_str(&render::warning_line(w, self.style));
            out.push('\n');
        }
        if report.status.found_fault() {
            out.push_str(&render::failure_block(
                report,
                self.style,
                self.transcript_lines,
            ));
            out.push('\n');
        }
        emit(&out);
        self.draw_progress(done, total);
    }
}

/// Whether to color stdout. `--color`/`--no-color` win; then the
/// conventions: `NO_COLOR` (non-empty) turns colors off, `CLICOLOR_FORCE`
/// (non-empty, not `0`) on, `TERM=dumb` off; else colors on a terminal.
fn use_color(choice: ColorChoice, no_color: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    match (no_color, choice) {
        (true, _) | (_, ColorChoice::Never) => false,
        (_, ColorChoice::Always) => true,
        (_, ColorChoice::Auto) if set("NO_COLOR") => false,
        (_, ColorChoice::Auto)
            if set("CLICOLOR_FORCE")
                && std::env::var_os("CLICOLOR_FORCE").as_deref() != Some("0".as_ref()) =>
        {
            true
        }
        (_, ColorChoice::Auto) => std::io::stdout().is_terminal() && !dumb_terminal(),
    }
}

/// `TERM=dumb`: a terminal that cannot take escape sequences.
fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// A report file, created before the run so that a path that cannot be
/// written is a setup error, not a lost report after a long run.
struct Output {
    path: PathBuf,
    file: std::fs::File,
}

impl Output {
    fn create(path: &Option<PathBuf>) -> Result<Option<Output>, CliError> {
        path.as_ref()
            .map(|path| {
                std::fs::File::create(path)
                    .map(|file| Output {
                        path: path.clone(),
                        file,
                    })
                    .map_err(|source| CliError::Write {
                        path: path.clone(),
                        source,
                    })
            })
            .transpose()
    }

    fn write(mut self, text: &str) -> Result<(), CliError> {
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| CliError::Write {
                path: self.path,
                source,
            })
    }
}

fn load_baseline(args: &RunArgs, suites: &[Suite]) -> Result<Baseline, CliError> {
    let Some(path) = &args.baseline else {
        return Ok(Baseline::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Baseline {
        path: path.clone(),
        source,
    })?;
    let invalid = |source| CliError::BaselineContent {
        path: path.clone(),
        source,
    };
    let baseline = Baseline::parse(&text).map_err(invalid)?;
    if !args.allow_stale {
        let ids = suites
            .iter()
            .flat_map(|s| &s.cases)
            .map(|c| c.case.id.as_str());
        baseline.check_stale(ids).map_err(invalid)?;
    }
    Ok(baseline)
}

fn run_command(mut args: RunArgs) -> Result<ExitCode, CliError> {
    args.embedded.check()?;
    if args.embedded.on && args.select.suites.is_empty() {
        args.select.suites.push(repository_path("fixtures"));
    }
    if args.embedded.on && args.select.requirements.is_none() {
        args.select.requirements = Some(repository_path("spec/requirements.json"));
    }
    let suites = load(&args.select)?;
    if args.list {
        return list_run(&args, &suites);
    }
    if args.url.is_none() && !args.embedded.on {
        return Err(CliError::NoUrl);
    }
    let requirements = load_requirements(&args.select)?;
    let baseline = load_baseline(&args, &suites)?;
    let mut options = run_options(&args, baseline.clone())?;
    // Nothing selected is known before any server starts.
    Runner::new(options.clone())
        .plan(&suites)
        .and_then(|plan| {
            if plan.cases.is_empty() {
                Err(SetupError::NothingSelected {
                    total: plan.filtered_out,
                })
            } else {
                Ok(())
            }
        })?;
    let json = Output::create(&args.json)?;
    let junit = Output::create(&args.junit)?;
    let html = Output::create(&args.html)?;
    let mut terminal = Terminal {
        style: Style {
            color: use_color(args.color, args.no_color),
        },
        progress: std::io::stderr().is_terminal() && !dumb_terminal(),
        transcript_lines: args.transcript_lines,
        running: Vec::new(),
        passed: 0,
        failed: 0,
    };
    let runtime = runtime()?;
    let (url, embedded) = match &args.url {
        Some(url) => (url.clone(), None),
        None => {
            let servers = runtime
                .block_on(embedded::Embedded::start(
                    &args.embedded.inject_faults,
                    args.embedded.variant,
                ))
                .map_err(CliError::Embedded)?;
            emit(&format!("{}\n", servers.describe()));
            servers.provide_vars(&mut options);
            (servers.url.clone(), Some(servers))
        }
    };
    let runner = Runner::new(options);
    let outcome = runtime.block_on(runner.run_with(&url, &suites, &mut terminal));
    if let Some(servers) = embedded {
        runtime.block_on(servers.shutdown());
    }
    terminal.clear_progress();
    let mut report = outcome?;
    if let Some(requirements) = &requirements {
        report.cover(requirements);
    }
    let verdict = report.judge(&baseline);
    write_reports(&report, &args, json, junit, html)?;
    emit(&render::summary(
        &report,
        &verdict,
        args.allow_flaky,
        terminal.style,
    ));
    Ok(ExitCode::from(if verdict.ok(args.allow_flaky) {
        exit_codes::SUCCESS
    } else {
        exit_codes::CASES_FAILED
    }))
}

/// `list --needs`: per selected case, the profiles a server must claim and
/// the variables it must be given for the case to run.
fn list_needs(select: &SelectArgs, suites: &[Suite]) -> Result<ExitCode, CliError> {
    let plan = Runner::new(RunOptions {
        filter: filter(select),
        ..RunOptions::default()
    })
    .plan(suites)?;
    if plan.cases.is_empty() {
        return Err(SetupError::NothingSelected {
            total: plan.filtered_out,
        }
        .into());
    }
    let width = plan
        .cases
        .iter()
        .map(|p| p.case.case.id.len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for planned in &plan.cases {
        let c = &planned.case.case;
        let profiles: Vec<&str> = c.profiles().map(String::as_str).collect();
        let vars: Vec<String> = c.needs.iter().map(|v| format!("--var {v}=...")).collect();
        let _ = writeln!(
            out,
            "{:<width$}  profiles: {}{}",
            c.id,
            if profiles.is_empty() {
                "(none)".to_string()
            } else {
                profiles.join(", ")
            },
            if vars.is_empty() {
                String::new()
            } else {
                format!("  needs: {}", vars.join(" "))
            }
        );
    }
    let _ = writeln!(
        out,
        "{} case(s) selected, {} filtered out",
        plan.cases.len(),
        plan.filtered_out
    );
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

fn write_reports(
    report: &Report,
    args: &RunArgs,
    json: Option<Output>,
    junit: Option<Output>,
    html: Option<Output>,
) -> Result<(), CliError> {
    if let Some(out) = json {
        out.write(&report.to_json())?;
    }
    if let Some(out) = junit {
        out.write(&report.to_junit(args.transcript_lines))?;
    }
    if let Some(out) = html {
        out.write(&ws_conformance::html::render(report))?;
    }
    Ok(())
}

/// `run --list`: the selection a run with these arguments would make.
fn list_run(args: &RunArgs, suites: &[Suite]) -> Result<ExitCode, CliError> {
    let mut variables = RunOptions {
        vars: args.vars.iter().cloned().collect(),
        ..RunOptions::default()
    };
    if args.embedded.on {
        // The embedded servers' variables exist only once they listen:
        // start them, take the names, stop them.
        let runtime = runtime()?;
        let servers = runtime
            .block_on(embedded::Embedded::start(&[], args.embedded.variant))
            .map_err(CliError::Embedded)?;
        servers.provide_vars(&mut variables);
        runtime.block_on(servers.shutdown());
    }
    list(&args.select, ListFormat::Text, suites, variables)
}

fn run_options(args: &RunArgs, baseline: Baseline) -> Result<RunOptions, CliError> {
    Ok(RunOptions {
        step_timeout: Duration::from_millis(args.timeout),
        case_timeout: Duration::from_millis(args.case_timeout),
        max_frame: args.max_frame,
        max_buffered: args.max_buffered,
        max_buffered_bytes: args.max_buffered_bytes,
        max_transcript_bytes: args.max_transcript_bytes,
        auth: args.token.clone().map(|token| {
            if args.token_bearer {
                Auth::Bearer(token)
            } else {
                Auth::Query {
                    param: args.token_param.clone(),
                    token,
                }
            }
        }),
        headers: args.headers.clone(),
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        max_fail: args.max_fail.map(|n| n as usize),
        retries: args.retries,
        baseline,
        strict: args.strict,
        filter: filter(&args.select),
        vars: args.vars.iter().cloned().collect(),
        fresh_vars: None,
        tls: TlsConfig::with_ca_files(&args.ca_certs)?,
        ..RunOptions::default()
    })
}
