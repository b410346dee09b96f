//! The HTML timeline of a real short run: a well-formed page with one lane per client and
//! server, the fault drawn as a band, every embedded text escaped, and the same bytes for the
//! same seed.

use std::time::Duration;

use zkit_sim::check::Violation;
use zkit_sim::runner;
use zkit_sim::scenario::{self, Scenario};
use zkit_sim::timeline;

const SCENARIO: &str = r#"
name = "timeline_holder_crash"

[ensemble]
servers = 3

[run]
duration_s = 20
liveness_s = 5

[[workload]]
role = "lock"
count = 3
path = "/locks/t"
hold_ms = [50, 300]

[[fault]]
at_s = 5
kind = "crash"
target = "lock-holder"
for_s = 5
"#;

fn scenario() -> Scenario {
    scenario::parse("timeline.toml", "timeline", SCENARIO).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn page_shows_lanes_faults_and_escaped_violations() {
    let scenario = scenario();
    let mut outcome = runner::run(&scenario, 1);
    outcome.violations.push(Violation {
        checker: "test",
        at: Duration::from_secs(7),
        message: "<script>alert(1)</script> & more".to_owned(),
    });
    let page = timeline::render(&scenario, &outcome);
    std::fs::write(
        std::env::temp_dir().join("zkit-sim-timeline-test.html"),
        &page,
    )
    .ok();

    assert!(
        page.starts_with("<!doctype html>"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.trim_end().ends_with("</html>"));
    assert!(page.contains("timeline_holder_crash"));
    assert!(page.contains("seed 1"));
    assert!(page.contains("FAIL"), "the pushed violation fails the run");

    assert_eq!(page.matches("<div class=\"row cl\">").count(), 3);
    assert_eq!(page.matches("<div class=\"row sv\">").count(), 3);
    for c in 1..=3 {
        assert!(page.contains(&format!("\">c{c}</div>")), "no lane for c{c}");
    }
    for s in 1..=3 {
        assert!(
            page.contains(&format!("\">zk{s}</div>")),
            "no lane for zk{s}"
        );
    }

    // The crash fault: a band in the faults lane and in the crashed client's lane.
    let bands = page.matches("<i class=\"fb fc\"").count();
    assert!(bands >= 2, "{bands} crash bands\n{}", outcome.trace);
    assert!(page.contains("fault: crash lock-holder = c"));
    // Somebody held the lock, wrote, and had a session.
    assert!(page.contains("<i class=\"h\""), "no lock held band");
    assert!(page.contains("<i class=\"wa\""), "no accepted write");
    assert!(page.contains("<i class=\"s-ok\""), "no connected band");
    assert!(page.contains("<i class=\"r-ld\""), "no server leading");

    // The violation: escaped everywhere, drawn and listed.
    assert!(
        !page.contains("<script>alert"),
        "unescaped violation message"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
    assert!(page.contains("<li>test at 7.000000 s: &lt;script&gt;"));

    assert!(
        page.len() < 2_000_000,
        "a 20 s run gave a page of {} bytes",
        page.len()
    );
}

#[test]
fn same_seed_same_page() {
    let scenario = scenario();
    let a = timeline::render(&scenario, &runner::run(&scenario, 1));
    let b = timeline::render(&scenario, &runner::run(&scenario, 1));
    assert!(a == b, "two runs of seed 1 drew different pages");
}

/// A busy minute (ten clients of several roles, random faults) still makes a small page.
/// Slow in debug builds: `cargo test --release --test timeline -- --ignored`.
#[test]
#[ignore]
fn busy_minute_fits() {
    let text = r#"
name = "timeline_busy_minute"

[ensemble]
servers = 5

[run]
duration_s = 60
liveness_s = 10

[[workload]]
role = "lock"
count = 4
path = "/locks/a"
hold_ms = [50, 300]

[[workload]]
role = "leader-latch"
count = 2
path = "/election"
hold_ms = [200, 1000]

[[workload]]
role = "party"
count = 2
path = "/party"
hold_ms = [200, 1000]

[[workload]]
role = "writer"
count = 2
path = "/writes"
hold_ms = [10, 50]

[swarm]
kinds = ["partition", "crash", "pause", "expire", "latency"]
faults = [3, 6]
for_s = [1, 8]
"#;
    let scenario = scenario::parse("busy.toml", "busy", text).unwrap_or_else(|e| panic!("{e}"));
    let outcome = runner::run(&scenario, 7);
    let page = timeline::render(&scenario, &outcome);
    std::fs::write(
        std::env::temp_dir().join("zkit-sim-timeline-busy.html"),
        &page,
    )
    .ok();
    assert_eq!(page.matches("<div class=\"row cl\">").count(), 10);
    assert_eq!(page.matches("<div class=\"row sv\">").count(), 5);
    assert!(page.len() < 1_000_000, "a page of {} bytes", page.len());
}
