mod embedded;
mod prop;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tidewire_server::{InjectedFault, ServerError};
use ws_conformance::fixture::LoadedCase;
use ws_conformance::render::{self, Style};
use ws_conformance::report::{Requirements, RequirementsError};
use ws_conformance::{
    load_suites, Auth, Baseline, CaseReport, Filter, LoadError, Observer, RunOptions, Runner,
    SchemaSet, SchemaSetError, SetupError, Status, Suite, TlsConfig, TlsError,
};

/// The exit statuses of `tidewire-conform`, in one place.
mod exit_codes {
    /// Every selected case passed, or failed only as listed in `--baseline`.
    pub const SUCCESS: u8 = 0;
    /// A case failed (or, for `prop`, a generated sequence did).
    pub const CASES_FAILED: u8 = 1;
    /// A usage or setup error: nothing could be judged.
    pub const SETUP_ERROR: u8 = 2;
}

/// Why a command could not judge anything (exit status 2).
#[derive(Debug, thiserror::Error)]
enum CliError {
    // clap's `requires` cannot see a bool flag left at its default.
    #[error("--inject-fault works only with --embedded")]
    FaultsNeedEmbedded,
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
    List(SelectArgs),
    /// Generate request sequences, check every reply and push against the
    /// Tidewire model, and shrink a failing sequence to a suite file.
    Prop(Box<PropArgs>),
    /// Print the JSON Schema of suite files (checked in as
    /// conformance/fixture.schema.json).
    FixtureSchema,
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
    /// Requirements file (a JSON array of {id, profile, level, subject?,
    /// applies_with?}): report the ids of the tested profiles that no case
    /// covers. With --embedded, defaults to spec/requirements.json.
    #[arg(long, value_name = "FILE")]
    requirements: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PropArgs {
    /// WebSocket URL of the Tidewire server under test.
    #[arg(value_name = "URL", required_unless_present = "embedded")]
    url: Option<String>,
    /// Start the reference server in this process and test it instead of a URL.
    #[arg(long, conflicts_with = "url")]
    embedded: bool,
    /// With --embedded: make the embedded server misbehave in this named way
    /// (repeatable).
    #[arg(
        long = "inject-fault",
        value_name = "NAME",
        requires = "embedded",
        value_parser = PossibleValuesParser::new(InjectedFault::names())
            .try_map(|name| name.parse::<InjectedFault>())
    )]
    inject_faults: Vec<InjectedFault>,
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
    if !args.inject_faults.is_empty() && !args.embedded {
        return Err(CliError::FaultsNeedEmbedded);
    }
    let code = prop::run(prop::PropSettings {
        url: args.url,
        faults: args.inject_faults,
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
    /// Start the Tidewire reference server in this process (in every
    /// configuration the suites use) and run against it instead of a URL.
    #[arg(long, conflicts_with = "url")]
    embedded: bool,
    /// With --embedded: make every embedded server misbehave in this named
    /// way, to see which cases catch it (repeatable).
    #[arg(
        long = "inject-fault",
        value_name = "NAME",
        value_parser = PossibleValuesParser::new(InjectedFault::names())
            .try_map(|name| name.parse::<InjectedFault>())
    )]
    inject_faults: Vec<InjectedFault>,
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

    /// Number of cases to run at once.
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 1,
        help_heading = "Execution"
    )]
    jobs: usize,
    /// Stop starting cases after the first failure.
    #[arg(long, help_heading = "Execution")]
    fail_fast: bool,
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

fn main() -> ExitCode {
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
        Command::List(select) => {
            let suites = load(&select)?;
            list(&select, &suites, RunOptions::default())
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
    }
}

/// `variables` holds what a run would have: a case listed as skipped for a
/// missing variable is one that the same `run` would skip.
fn list(
    select: &SelectArgs,
    suites: &[Suite],
    variables: RunOptions,
) -> Result<ExitCode, CliError> {
    let requirements = load_requirements(select)?;
    let runner = Runner::new(RunOptions {
        filter: filter(select),
        ..variables
    });
    let plan = runner.plan(suites)?;
    let width = plan
        .cases
        .iter()
        .map(|p| p.case.case.id.len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for planned in &plan.cases {
        let c = &planned.case.case;
        let skip = planned
            .skip
            .as_ref()
            .map(|s| format!("  (skipped: {s})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<width$}  [{}] {}  {}:{}{skip}",
            c.id, c.profile, c.title, planned.case.file, planned.case.position
        );
    }
    let _ = writeln!(
        out,
        "{} case(s) selected, {} filtered out",
        plan.cases.len(),
        plan.filtered_out
    );
    if let Some(requirements) = &requirements {
        let coverage = plan.coverage(requirements, runner.requested_profiles().as_deref());
        let _ = write!(
            out,
            "{}",
            render::coverage(&coverage, Style { color: false }, 100)
        );
    }
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

/// Prints case lines to stdout and, on a terminal, a progress line on stderr.
struct Terminal {
    style: Style,
    progress: bool,
    transcript_lines: usize,
    running: Vec<String>,
}

impl Terminal {
    fn clear_progress(&self) {
        if self.progress {
            eprint!("\r\x1b[2K");
        }
    }

    fn draw_progress(&self, done: usize, total: usize) {
        if self.progress && done < total {
            let current = self.running.last().map(String::as_str).unwrap_or("");
            eprint!("\r\x1b[2K[{done}/{total}] running {current}");
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
        self.clear_progress();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", render::case_line(report, self.style));
        for w in &report.warnings {
            let _ = writeln!(out, "    {} {w}", self.style.yellow("warning:"));
        }
        if matches!(report.status, Status::Fail | Status::Warn) {
            let _ = write!(
                out,
                "{}",
                render::failure_block(report, self.style, self.transcript_lines)
            );
            let _ = writeln!(out);
        }
        let _ = out.flush();
        drop(out);
        self.draw_progress(done, total);
    }
}

fn use_color(choice: ColorChoice, no_color: bool) -> bool {
    match (no_color, choice) {
        (true, _) | (_, ColorChoice::Never) => false,
        (_, ColorChoice::Always) => true,
        (_, ColorChoice::Auto) => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

fn run_command(mut args: RunArgs) -> Result<ExitCode, CliError> {
    // clap counts the flag's default `false` as present, so `requires` cannot say this.
    if !args.inject_faults.is_empty() && !args.embedded {
        return Err(CliError::FaultsNeedEmbedded);
    }
    if args.embedded && args.select.suites.is_empty() {
        args.select.suites.push(repository_path("fixtures"));
    }
    if args.embedded && args.select.requirements.is_none() {
        args.select.requirements = Some(repository_path("spec/requirements.json"));
    }
    let suites = load(&args.select)?;
    if args.list {
        return list_run(&args, &suites);
    }
    if args.url.is_none() && !args.embedded {
        return Err(CliError::NoUrl);
    }
    let requirements = load_requirements(&args.select)?;
    let baseline = match &args.baseline {
        Some(path) => Baseline::parse(&std::fs::read_to_string(path).map_err(|source| {
            CliError::Baseline {
                path: path.clone(),
                source,
            }
        })?),
        None => Baseline::default(),
    };
    let mut options = run_options(&args)?;
    let mut terminal = Terminal {
        style: Style {
            color: use_color(args.color, args.no_color),
        },
        progress: std::io::stderr().is_terminal(),
        transcript_lines: args.transcript_lines,
        running: Vec::new(),
    };
    let runtime = runtime()?;
    let (url, embedded) = match &args.url {
        Some(url) => (url.clone(), None),
        None => {
            let servers = runtime
                .block_on(embedded::Embedded::start(&args.inject_faults))
                .map_err(CliError::Embedded)?;
            println!("{}", servers.describe());
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
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| CliError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    if let Some(path) = &args.json {
        write(path, report.to_json())?;
    }
    if let Some(path) = &args.junit {
        write(path, report.to_junit(args.transcript_lines))?;
    }
    print!(
        "{}",
        render::summary(
            &report.summary,
            &verdict,
            report.filtered_out,
            report.duration_ms / 1000.0,
            report.coverage.as_ref(),
            terminal.style
        )
    );
    Ok(ExitCode::from(if verdict.ok() {
        exit_codes::SUCCESS
    } else {
        exit_codes::CASES_FAILED
    }))
}

/// `run --list`: the selection a run with these arguments would make.
fn list_run(args: &RunArgs, suites: &[Suite]) -> Result<ExitCode, CliError> {
    let mut variables = RunOptions {
        vars: args.vars.iter().cloned().collect(),
        ..RunOptions::default()
    };
    if args.embedded {
        // The embedded servers' variables exist only once they listen:
        // start them, take the names, stop them.
        let runtime = runtime()?;
        let servers = runtime
            .block_on(embedded::Embedded::start(&[]))
            .map_err(CliError::Embedded)?;
        servers.provide_vars(&mut variables);
        runtime.block_on(servers.shutdown());
    }
    list(&args.select, suites, variables)
}

fn run_options(args: &RunArgs) -> Result<RunOptions, CliError> {
    Ok(RunOptions {
        step_timeout: Duration::from_millis(args.timeout),
        case_timeout: Duration::from_millis(args.case_timeout),
        max_frame: args.max_frame,
        max_buffered: args.max_buffered,
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
        strict: args.strict,
        filter: filter(&args.select),
        vars: args.vars.iter().cloned().collect(),
        fresh_vars: None,
        tls: TlsConfig::with_ca_files(&args.ca_certs)?,
    })
}
