//! `zkit-sim run`'s machine-readable reports for CI: `--junit FILE` (JUnit XML, one test case
//! per scenario and seed range, each failing seed with its violations and replay command) and
//! `--json FILE` (the summary, coverage and violations). Both are built from the same
//! per-scenario [`ScenarioReport`]s the summary table prints, and written by hand (escaping
//! included) so the CLI needs no serializer.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One failing seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// What the checkers reported.
    pub violations: Vec<String>,
    /// The command that replays it.
    pub replay: String,
    /// The command that shrinks it (when a swarm drew its faults).
    pub shrink: Option<String>,
}

/// What one scenario gave over the seeds run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// Its file, as given.
    pub file: String,
    /// Which seeds (`A..B`, with `shard I/N` when sharded).
    pub seeds: String,
    /// How many seeds ran.
    pub runs: usize,
    /// Faults fired and skipped, summed over the seeds.
    pub faults: (usize, usize),
    /// Coverage counts, summed over the seeds.
    pub coverage: BTreeMap<String, usize>,
    /// The failing seeds.
    pub failures: Vec<SeedFailure>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Per scenario, in the order run.
    pub scenarios: Vec<ScenarioReport>,
    /// Wall-clock seconds the run took (the only figure that differs between two runs).
    pub elapsed_s: f64,
}

impl RunReport {
    fn seeds(&self) -> usize {
        self.scenarios.iter().map(|s| s.runs).sum()
    }

    fn failed(&self) -> usize {
        self.scenarios.iter().map(|s| s.failures.len()).sum()
    }

    /// JUnit XML: a `testsuite` per scenario holding one `testcase` for its seed range,
    /// failed when any seed failed (every failing seed listed in the failure's text).
    pub fn junit(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failing = self.scenarios.iter().filter(|s| !s.failures.is_empty());
        let _ = writeln!(
            x,
            "<testsuites name=\"zkit-sim\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            self.scenarios.len(),
            failing.count(),
            self.elapsed_s
        );
        for s in &self.scenarios {
            let failed = usize::from(!s.failures.is_empty());
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"1\" failures=\"{failed}\" errors=\"0\">",
                xml(&s.name)
            );
            let _ = writeln!(
                x,
                "    <testcase classname=\"zkit-sim.{}\" name=\"seeds {}\" file=\"{}\">",
                xml(&s.name),
                xml(&s.seeds),
                xml(&s.file)
            );
            if let Some(first) = s.failures.first() {
                let message = format!(
                    "{} of {} seeds failed (first: seed {}: {})",
                    s.failures.len(),
                    s.runs,
                    first.seed,
                    first.violations.first().map_or("", String::as_str)
                );
                let _ = writeln!(
                    x,
                    "      <failure message=\"{}\" type=\"violation\">",
                    xml(&message)
                );
                for f in &s.failures {
                    for v in &f.violations {
                        let _ = writeln!(x, "seed {}: {}", f.seed, xml(v));
                    }
                    let _ = writeln!(x, "  replay: {}", xml(&f.replay));
                    if let Some(shrink) = &f.shrink {
                        let _ = writeln!(x, "  shrink: {}", xml(shrink));
                    }
                }
                x.push_str("      </failure>\n");
            }
            let coverage: Vec<String> =
                s.coverage.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(
                x,
                "      <system-out>{} seeds, faults fired {}, skipped {}; coverage: {}</system-out>",
                s.runs,
                s.faults.0,
                s.faults.1,
                xml(&coverage.join(", "))
            );
            x.push_str("    </testcase>\n  </testsuite>\n");
        }
        x.push_str("</testsuites>\n");
        x
    }

    /// The run as one JSON object: totals, then per scenario its seeds, faults, coverage and
    /// failing seeds (violations, replay and shrink commands).
    pub fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"seeds\": {},", self.seeds());
        let _ = writeln!(j, "  \"failed\": {},", self.failed());
        let _ = writeln!(j, "  \"elapsed_s\": {:.3},", self.elapsed_s);
        let _ = writeln!(
            j,
            "  \"seeds_per_s\": {:.3},",
            self.seeds() as f64 / self.elapsed_s.max(1e-9)
        );
        j.push_str("  \"scenarios\": [");
        for (i, s) in self.scenarios.iter().enumerate() {
            j.push_str(if i == 0 { "\n" } else { ",\n" });
            let coverage: Vec<String> = s
                .coverage
                .iter()
                .map(|(k, n)| format!("{}: {n}", json(k)))
                .collect();
            let failures: Vec<String> = s
                .failures
                .iter()
                .map(|f| {
                    let violations: Vec<String> = f.violations.iter().map(|v| json(v)).collect();
                    format!(
                        "{{\"seed\": {}, \"violations\": [{}], \"replay\": {}, \"shrink\": {}}}",
                        f.seed,
                        violations.join(", "),
                        json(&f.replay),
                        f.shrink.as_deref().map_or("null".to_owned(), json)
                    )
                })
                .collect();
            let _ = write!(
                j,
                "    {{\"name\": {}, \"file\": {}, \"seeds\": {}, \"runs\": {}, \"failed\": {}, \
                 \"faults_fired\": {}, \"faults_skipped\": {}, \"coverage\": {{{}}}, \
                 \"failures\": [{}]}}",
                json(&s.name),
                json(&s.file),
                json(&s.seeds),
                s.runs,
                s.failures.len(),
                s.faults.0,
                s.faults.1,
                coverage.join(", "),
                failures.join(", ")
            );
        }
        j.push_str("\n  ]\n}\n");
        j
    }
}

/// `s` escaped for XML text and attribute values (and stripped of the control characters
/// XML 1.0 cannot carry).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunReport {
        RunReport {
            scenarios: vec![
                ScenarioReport {
                    name: "ok_one".into(),
                    file: "scenarios/ok_one.toml".into(),
                    seeds: "0..2".into(),
                    runs: 2,
                    faults: (4, 0),
                    coverage: [("lock handoffs".to_owned(), 3)].into_iter().collect(),
                    failures: vec![],
                },
                ScenarioReport {
                    name: "bad<one>".into(),
                    file: "scenarios/bad.toml".into(),
                    seeds: "0..2".into(),
                    runs: 2,
                    faults: (2, 1),
                    coverage: BTreeMap::new(),
                    failures: vec![SeedFailure {
                        seed: 1,
                        violations: vec!["fencing at 1.0 s: \"x\" & <y>\tz\u{1}".into()],
                        replay: "cargo run -- replay scenarios/bad.toml --seed 1".into(),
                        shrink: Some("cargo run -- shrink scenarios/bad.toml --seed 1".into()),
                    }],
                },
            ],
            elapsed_s: 2.0,
        }
    }

    #[test]
    fn junit_has_a_case_per_scenario_and_the_failure_with_its_replay() {
        let x = sample().junit();
        assert!(
            x.contains("<testsuites name=\"zkit-sim\" tests=\"2\" failures=\"1\""),
            "{x}"
        );
        assert!(
            x.contains("classname=\"zkit-sim.ok_one\" name=\"seeds 0..2\""),
            "{x}"
        );
        assert!(x.contains("<testsuite name=\"bad&lt;one&gt;\" tests=\"1\" failures=\"1\""));
        assert!(x.contains("1 of 2 seeds failed (first: seed 1: fencing at 1.0 s: &quot;x&quot; &amp; &lt;y&gt;"), "{x}");
        assert!(x.contains("  replay: cargo run -- replay scenarios/bad.toml --seed 1\n"));
        assert!(x.contains("  shrink: cargo run -- shrink"));
        assert!(!x.contains('\u{1}'), "control characters are not XML");
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert_eq!(x.matches("</failure>").count(), 1);
    }

    #[test]
    fn json_has_totals_coverage_and_escaped_violations() {
        let j = sample().json();
        assert!(j.contains("\"seeds\": 4,\n  \"failed\": 1,"), "{j}");
        assert!(j.contains("\"seeds_per_s\": 2.000"), "{j}");
        assert!(j.contains("\"coverage\": {\"lock handoffs\": 3}"), "{j}");
        assert!(
            j.contains(r#""violations": ["fencing at 1.0 s: \"x\" & <y>\tz\u0001"]"#),
            "{j}"
        );
        assert!(j.contains("\"shrink\": \"cargo run -- shrink scenarios/bad.toml --seed 1\""));
        // Balanced, outside strings.
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        for c in j.chars() {
            match (in_str, esc, c) {
                (true, true, _) => esc = false,
                (true, false, '\\') => esc = true,
                (true, false, '"') | (false, _, '"') => in_str = !in_str,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0, "{j}");
        }
        assert_eq!((depth, in_str), (0, false), "{j}");
    }
}
