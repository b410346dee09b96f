//! `zkit-sim run --junit FILE --json FILE`: the reports CI reads, written next to the summary
//! table from the same results (the renderers' escaping and failure layout are unit-tested in
//! `sim/src/cli/report.rs`).

use std::path::Path;
use std::process::Command;

#[test]
fn run_writes_junit_and_json_reports() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-report");
    std::fs::create_dir_all(&dir).expect("a report directory");
    let (junit, json) = (dir.join("report.xml"), dir.join("report.json"));
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/lock_holder_crashes.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
        .arg("run")
        .arg(&scenario)
        .args(["--seeds", "3..5", "--jobs", "1", "--shard", "1/1"])
        .arg("--trace-dir")
        .arg(dir.join("traces"))
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run zkit-sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let x = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(
        x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        "{x}"
    );
    assert!(
        x.contains("<testsuites name=\"zkit-sim\" tests=\"1\" failures=\"0\""),
        "{x}"
    );
    assert!(
        x.contains("<testcase classname=\"zkit-sim.lock_holder_crashes\" name=\"seeds 3..5\""),
        "{x}"
    );
    assert!(x.contains("<system-out>2 seeds, faults fired 8,"), "{x}");
    assert!(!x.contains("<failure"), "{x}");

    let j = std::fs::read_to_string(&json).expect("the JSON report");
    assert!(j.contains("\"seeds\": 2,\n  \"failed\": 0,"), "{j}");
    assert!(j.contains("\"name\": \"lock_holder_crashes\""), "{j}");
    assert!(
        j.contains("\"faults_fired\": 8, \"faults_skipped\": 0"),
        "{j}"
    );
    assert!(j.contains("\"lock handoffs\": "), "{j}");
    assert!(j.contains("\"failures\": []"), "{j}");

    // A report that cannot be written is an error, not a silent pass.
    let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
        .arg("run")
        .arg(&scenario)
        .args(["--seeds", "1", "--jobs", "1"])
        .arg("--trace-dir")
        .arg(dir.join("traces"))
        .arg("--json")
        .arg(dir.join("no-such-dir/report.json"))
        .output()
        .expect("run zkit-sim");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"));
}

/// `run --real`'s arguments: a scenario real mode refuses fails the command with the reason
/// (before any ensemble starts), and the real-mode options are rejected without `--real` or
/// with a run count of zero.
#[test]
fn run_real_refuses_what_it_cannot_run_and_bad_arguments() {
    let swarm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/swarm_lock.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
        .arg("run")
        .arg(&swarm)
        .arg("--real")
        .output()
        .expect("run zkit-sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("cannot run against a real ensemble") && stdout.contains("`loss`"),
        "{stdout}"
    );
    for args in [
        &["--runs", "2"][..],
        &["--compare-seeds", "3"],
        &["--real", "--runs", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
            .arg("run")
            .arg(&swarm)
            .args(args)
            .output()
            .expect("run zkit-sim");
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
    }
}
