//! The servers under test: child processes started by the tool (optionally
//! pinned to a CPU with `taskset`), with their CPU time and resident memory
//! read from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server a measurement was taken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tidewire,
    Baseline,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Tidewire => "tidewire",
            Kind::Baseline => "baseline",
        }
    }
}

/// How to start the two servers.
#[derive(Clone, Debug)]
pub struct Launch {
    pub tidewire_bin: PathBuf,
    pub server_cpu: Option<u32>,
    pub tidewire_args: Vec<String>,
}

pub struct Target {
    pub kind: Kind,
    pub url: String,
    child: Child,
}

const START_TIMEOUT: Duration = Duration::from_secs(20);

impl Target {
    pub fn start(launch: &Launch, kind: Kind) -> std::io::Result<Target> {
        let (program, args): (PathBuf, Vec<String>) = match kind {
            Kind::Tidewire => {
                let mut args = vec![
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--rate-messages".into(),
                    "0".into(),
                    "--max-connections".into(),
                    "30000".into(),
                    "--max-subscriptions".into(),
                    "1000".into(),
                ];
                args.extend(launch.tidewire_args.iter().cloned());
                (launch.tidewire_bin.clone(), args)
            }
            Kind::Baseline => (
                std::env::current_exe()?,
                vec!["baseline".into(), "--listen".into(), "127.0.0.1:0".into()],
            ),
        };
        let mut command = match launch.server_cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let started = Instant::now();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(line) = lines.next().transpose()? else {
                let _ = child.kill();
                return Err(std::io::Error::other(format!(
                    "{} exited before listening",
                    program.display()
                )));
            };
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_string();
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                return Err(std::io::Error::other("server did not start in time"));
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Target { kind, url, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time of the server so far.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
    }

    /// Resident set size in bytes.
    pub fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    }
}

/// The user-space instructions a server executes between [`Target::count_instructions`]
/// and [`InstructionCount::stop`], counted by `perf stat`. Far less sensitive to other
/// work on the machine than CPU time or rates.
pub struct InstructionCount {
    perf: Child,
    output: PathBuf,
}

impl Target {
    /// Starts counting this server's user-space instructions; `None` when
    /// `perf` cannot be started.
    pub fn count_instructions(&self) -> Option<InstructionCount> {
        let output = std::env::temp_dir().join(format!(
            "tidewire-load-perf-{}-{}.csv",
            std::process::id(),
            self.pid()
        ));
        let perf = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "instructions:u", "-o"])
            .arg(&output)
            .args(["-p", &self.pid().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // perf attaches asynchronously; give it the moment it needs.
        std::thread::sleep(Duration::from_millis(100));
        Some(InstructionCount { perf, output })
    }
}

impl InstructionCount {
    /// Stops counting (perf prints its totals on SIGINT) and returns the count.
    pub fn stop(mut self) -> Option<u64> {
        let interrupted = Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !interrupted {
            let _ = self.perf.kill();
        }
        let _ = self.perf.wait();
        let text = std::fs::read_to_string(&self.output).ok()?;
        let _ = std::fs::remove_file(&self.output);
        text.lines()
            .find(|line| line.contains("instructions"))
            .and_then(|line| line.split(',').next())
            .and_then(|count| count.trim().parse().ok())
    }
}

fn clock_ticks_per_second() -> u64 {
    // USER_HZ is 100 on every Linux architecture this tool runs on; reading it
    // would need libc (sysconf), which the workspace forbids as unsafe code.
    100
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
