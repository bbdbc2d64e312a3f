//! The HTML report in a real browser: headless Chromium loads the report of
//! a run against a reference server with an injected fault, runs its script
//! (the filter comes from the URL), and the test reads the rendered DOM and
//! takes a screenshot (left in the target directory to look at).

use crate::common::{bin, stdout, temp_dir};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether chromium runs; on CI (`CI=true`) its absence fails the test.
fn chromium_available() -> bool {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed; CI must install it (see .ci/run)"
        );
        eprintln!("skipped: chromium is not installed");
    }
    found
}

/// Headless Chromium on `url` with `args`, within 90 s. A profile of its
/// own, and nothing that reaches the network.
fn chromium(args: &[String], url: &str, profile: &Path) -> Output {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).unwrap();
        text
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Output {
                status,
                stdout: reader.join().unwrap(),
                stderr: Vec::new(),
            };
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn html_report_renders_in_a_browser() {
    if !chromium_available() {
        return;
    }
    let dir = temp_dir("html");
    let html = dir.join("report.html");
    let out = bin()
        .args([
            "run",
            "--embedded",
            "--inject-fault",
            "duplicate-event",
            "--html",
        ])
        .arg(&html)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let failed: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Summary: "))
        .and_then(|s| s.split(", ").nth(1))
        .and_then(|s| s.strip_suffix(" failed"))
        .and_then(|n| n.parse().ok())
        .expect("a summary line");
    assert!(failed > 0, "{text}");

    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch.
    for reference in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(reference), "the page refers to {reference}");
    }

    let profile = dir.join("profile");
    let url = format!("file://{}#q=fail", html.display());
    let dom = chromium(&["--dump-dom".into()], &url, &profile);
    assert!(dom.status.success());
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    // The summary, and the matrix with a row per profile.
    assert!(
        dom.contains(&format!("data-count=\"fail\">{failed} failed<")),
        "{dom:.2000}"
    );
    assert!(dom.contains("<tr data-profile=\"watch\">"), "{dom:.2000}");
    // Failures come first.
    let first_case = dom.find("<details class=\"case").unwrap();
    assert!(dom[first_case..].starts_with("<details class=\"case fail\""));
    // The script ran with the filter from the URL: every failure is shown,
    // and a passing case without "fail" anywhere is hidden.
    let cases: Vec<&str> = dom.split("<details class=\"case").skip(1).collect();
    let shown = cases
        .iter()
        .filter(|c| !c[..c.find('>').unwrap()].contains("hidden"))
        .count();
    let failing_shown = cases
        .iter()
        .filter(|c| c.starts_with(" fail\"") && !c[..c.find('>').unwrap()].contains("hidden"))
        .count();
    assert_eq!(failing_shown, failed);
    assert!(shown < cases.len(), "the filter hid nothing");
    assert!(
        dom.contains(&format!("{shown} of {} cases shown", cases.len())),
        "{dom:.3000}"
    );

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = chromium(
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1600".into(),
            "--hide-scrollbars".into(),
        ],
        &format!("file://{}", html.display()),
        &profile,
    );
    assert!(shot.status.success());
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(
        png.len() > 20_000,
        "a nearly empty screenshot: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", screenshot.display());
    let _ = std::fs::remove_dir_all(&dir);
}
