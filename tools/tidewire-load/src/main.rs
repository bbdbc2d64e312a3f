//! `tidewire-load`: load scenarios for the reference server. Every scenario
//! that has a counterpart on the bare stack runs against both servers,
//! alternating, in the same invocation, and prints Tidewire/baseline ratios.
//! See the "Performance" section of the README for the commands.

mod baseline;
mod client;
mod fanout;
mod hostile;
mod idle;
mod memory;
mod reqrep;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::Error;
use crate::target::{Kind, Launch, Target};

#[derive(Parser)]
#[command(about = "Load scenarios: Tidewire against a bare tokio-tungstenite baseline")]
struct Cli {
    /// The tidewire-server binary (build it with --release).
    #[arg(long, global = true, default_value = "target/release/tidewire-server")]
    server_bin: PathBuf,
    /// Pin both servers to this CPU (with taskset); run the tool itself on another.
    #[arg(long, global = true)]
    server_cpu: Option<u32>,
    /// Extra arguments for tidewire-server (repeatable).
    #[arg(long = "server-arg", global = true, allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Repetitions; ratios are reported as median [min, max].
    #[arg(long, global = true, default_value_t = 3)]
    reps: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the bare baseline (started by the other commands).
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Highest publish rate with p99 under the limit and no loss, per subscriber count.
    Fanout {
        #[arg(long, value_enum, default_value = "topics")]
        channel: fanout::Channel,
        #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
        subscribers: Vec<usize>,
        /// Seconds of publishing per run.
        #[arg(long, default_value_t = 3.0)]
        duration_s: f64,
        #[arg(long, default_value_t = 10.0)]
        start_rate: f64,
        /// The highest rate tried (the search cap).
        #[arg(long, default_value_t = 640.0)]
        cap: f64,
        /// Bisection steps after the doubling phase.
        #[arg(long, default_value_t = 2)]
        refine: u32,
        #[arg(long, default_value_t = 64)]
        payload_bytes: usize,
        /// A rate is sustained when its p99 stays under this (and nothing is lost).
        #[arg(long, default_value_t = 50.0)]
        p99_limit_ms: f64,
        /// Count each server's user-space instructions per delivery with `perf stat`.
        #[arg(long)]
        count_instructions: bool,
        /// Let the baseline push each publish at its own length instead of
        /// padding it to the length of Tidewire's push.
        #[arg(long)]
        baseline_as_published: bool,
    },
    /// Round trips per second with C connections, one request in flight each.
    Reqrep {
        #[arg(long, value_delimiter = ',', default_value = "1,50")]
        connections: Vec<usize>,
        #[arg(long, default_value_t = 5.0)]
        duration_s: f64,
        /// Bytes of padding in each request's payload, echoed in the reply (large
        /// requests take another path through the server).
        #[arg(long, default_value_t = 0)]
        payload_bytes: usize,
    },
    /// Server memory per idle connection (raise `ulimit -n` first).
    Idle {
        #[arg(long, default_value_t = 19_000)]
        connections: usize,
    },
    /// Ping p99 of one client while others send hostile requests (Tidewire only).
    Hostile {
        #[arg(long, default_value_t = 5.0)]
        duration_s: f64,
    },
    /// Server memory growth with clients that never read (Tidewire only).
    Memory,
}

fn median_and_range(mut values: Vec<f64>) -> String {
    // Repetitions without a ratio (both servers at zero) sort last.
    values.sort_by(f64::total_cmp);
    match values.as_slice() {
        [] => "n/a".into(),
        [only] => shown(*only),
        all => format!(
            "{} [{}, {}]",
            shown(all[all.len() / 2]),
            shown(all[0]),
            shown(all[all.len() - 1])
        ),
    }
}

fn shown(ratio: f64) -> String {
    if ratio.is_nan() {
        "n/a".into()
    } else {
        format!("{ratio:.2}")
    }
}

/// Tidewire's figure over the baseline's. A baseline at zero against a
/// positive figure gives infinity, not a missing result (a fan-out in which
/// only Tidewire passed a rate); with both at zero there is no ratio.
fn ratio(tidewire: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        tidewire / baseline
    } else if tidewire > 0.0 {
        f64::INFINITY
    } else {
        f64::NAN
    }
}

fn start_both(launch: &Launch) -> Result<[Target; 2], Error> {
    Ok([
        Target::start(launch, Kind::Tidewire)?,
        Target::start(launch, Kind::Baseline)?,
    ])
}

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let launch = Launch {
        tidewire_bin: cli.server_bin.clone(),
        server_cpu: cli.server_cpu,
        tidewire_args: cli.server_args.clone(),
    };
    let reps = cli.reps.max(1);
    runtime.block_on(async move {
        match cli.command {
            Command::Baseline { listen } => Ok(baseline::run(&listen).await?),
            Command::Fanout {
                channel,
                subscribers,
                duration_s,
                start_rate,
                cap,
                refine,
                payload_bytes,
                p99_limit_ms,
                count_instructions,
                baseline_as_published,
            } => {
                let search = fanout::Search {
                    start_rate,
                    cap,
                    refine,
                };
                for n in subscribers {
                    let settings = fanout::Settings {
                        channel,
                        subscribers: n,
                        duration: Duration::from_secs_f64(duration_s),
                        payload_bytes,
                        p99_limit_ms,
                        count_instructions,
                        match_push_length: !baseline_as_published,
                    };
                    run_fanout(&launch, &settings, &search, reps).await?;
                }
                Ok(())
            }
            Command::Reqrep {
                connections,
                duration_s,
                payload_bytes,
            } => {
                let settings = reqrep::Settings {
                    duration: Duration::from_secs_f64(duration_s),
                    payload_bytes,
                };
                run_reqrep(&launch, &connections, &settings, reps).await
            }
            Command::Idle { connections } => run_idle(&launch, connections, reps).await,
            Command::Hostile { duration_s } => {
                run_hostile(&launch, Duration::from_secs_f64(duration_s), reps).await
            }
            Command::Memory => run_memory(&launch).await,
        }
    })
}

async fn run_fanout(
    launch: &Launch,
    settings: &fanout::Settings,
    search: &fanout::Search,
    reps: usize,
) -> Result<(), Error> {
    let label = format!("fanout {:?} N={}", settings.channel, settings.subscribers).to_lowercase();
    let mut rate_ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut instruction_ratios = Vec::new();
    let mut next_run = 0;
    for rep in 1..=reps {
        println!("{label} rep {rep}/{reps}");
        let targets = start_both(launch)?;
        let outcome = fanout::search(&targets, settings, search, &mut next_run).await?;
        let [tidewire, bare] = outcome.max_rate;
        println!(
            "  max rate: tidewire {tidewire:.1}/s, baseline {bare:.1}/s (cap {})",
            search.cap
        );
        rate_ratios.push(ratio(tidewire, bare));
        if let Some([tidewire, bare]) = outcome.cpu_per_delivery_us {
            println!("  cpu per delivery: tidewire {tidewire:.2}us, baseline {bare:.2}us");
            cpu_ratios.push(ratio(tidewire, bare));
        }
        if let Some([tidewire, bare]) = outcome.instructions_per_delivery {
            println!("  instructions per delivery: tidewire {tidewire:.0}, baseline {bare:.0}");
            instruction_ratios.push(ratio(tidewire, bare));
        }
    }
    println!("RATIO {label} max-rate {}", median_and_range(rate_ratios));
    println!(
        "RATIO {label} cpu-per-delivery {}",
        median_and_range(cpu_ratios)
    );
    if settings.count_instructions {
        println!(
            "RATIO {label} instructions-per-delivery {}",
            median_and_range(instruction_ratios)
        );
    }
    Ok(())
}

async fn run_reqrep(
    launch: &Launch,
    connections: &[usize],
    settings: &reqrep::Settings,
    reps: usize,
) -> Result<(), Error> {
    for &c in connections {
        let mut ratios = Vec::new();
        for rep in 1..=reps {
            let targets = start_both(launch)?;
            let mut rates = [0.0; 2];
            for (i, target) in targets.iter().enumerate() {
                let run = reqrep::run_once(target, c, settings).await?;
                println!(
                    "  rep {rep} {:8} C={c:<3} {:>9.0} round trips/s p99={:.2}ms",
                    target.kind.label(),
                    run.round_trips_per_s,
                    run.p99_ms
                );
                rates[i] = run.round_trips_per_s;
            }
            ratios.push(ratio(rates[0], rates[1]));
        }
        println!(
            "RATIO reqrep C={c} round-trips {}",
            median_and_range(ratios)
        );
    }
    Ok(())
}

async fn run_idle(launch: &Launch, connections: usize, reps: usize) -> Result<(), Error> {
    let mut ratios = Vec::new();
    for rep in 1..=reps {
        let mut per = [0.0; 2];
        for (i, kind) in [Kind::Tidewire, Kind::Baseline].into_iter().enumerate() {
            let target = Target::start(launch, kind)?;
            per[i] = idle::per_connection(&target, connections).await?;
            println!(
                "  rep {rep} {:8} K={connections} {:.1} KiB per idle connection",
                kind.label(),
                per[i] / 1024.0
            );
        }
        ratios.push(ratio(per[0], per[1]));
    }
    println!(
        "RATIO idle K={connections} memory-per-connection {}",
        median_and_range(ratios)
    );
    Ok(())
}

async fn run_hostile(launch: &Launch, duration: Duration, reps: usize) -> Result<(), Error> {
    let mut ratios = Vec::new();
    for rep in 1..=reps {
        let target = Target::start(launch, Kind::Tidewire)?;
        let outcome = hostile::run(&target, duration).await?;
        println!(
            "  rep {rep} ping p99 idle {:.2}ms, under hostile requests {:.2}ms; replies {:?}",
            outcome.idle_p99_ms, outcome.hostile_p99_ms, outcome.replies
        );
        ratios.push(ratio(outcome.hostile_p99_ms, outcome.idle_p99_ms));
    }
    println!(
        "RATIO hostile ping-p99/idle-p99 {}",
        median_and_range(ratios)
    );
    Ok(())
}

async fn run_memory(launch: &Launch) -> Result<(), Error> {
    const MIB: f64 = 1024.0 * 1024.0;
    let report = |label: &str, outcome: &memory::Outcome| {
        println!(
            "MEMORY {label}: peak growth {:.1} MiB, after close {:.1} MiB",
            outcome.peak_growth as f64 / MIB,
            outcome.growth_after_close as f64 / MIB
        )
    };
    let target = Target::start(launch, Kind::Tidewire)?;
    report("pipelined reads", &memory::pipelined_reads(&target).await?);
    // The topic's history (`--topic-history`, 1000 by default) keeps the most
    // recent publications for resuming whether or not anyone is connected, so
    // the slow subscribers are measured without it and with it.
    let without_history = Launch {
        tidewire_args: [
            &launch.tidewire_args[..],
            &["--topic-history".into(), "0".into()],
        ]
        .concat(),
        ..launch.clone()
    };
    for (label, launch) in [
        ("slow subscribers, no topic history", &without_history),
        ("slow subscribers, the default topic history", launch),
    ] {
        let target = Target::start(launch, Kind::Tidewire)?;
        report(label, &memory::slow_subscribers(&target).await?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_that_passed_no_rate_is_infinitely_behind() {
        assert_eq!(ratio(160.0, 0.0), f64::INFINITY);
        assert!(ratio(0.0, 0.0).is_nan());
        assert_eq!(ratio(0.0, 160.0), 0.0);
        assert_eq!(
            median_and_range(vec![
                ratio(67.3, 0.0),
                ratio(160.0, 160.0),
                ratio(226.3, 113.1)
            ]),
            "2.00 [1.00, inf]"
        );
    }

    #[test]
    fn repetitions_without_a_ratio_are_shown_as_such_and_sort_last() {
        assert_eq!(
            median_and_range(vec![f64::NAN, 0.5, f64::NAN]),
            "n/a [0.50, n/a]"
        );
        assert_eq!(median_and_range(vec![f64::NAN]), "n/a");
        assert_eq!(median_and_range(vec![0.84, 0.71, 1.0]), "0.84 [0.71, 1.00]");
    }
}
