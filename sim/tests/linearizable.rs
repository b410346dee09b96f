//! The register checkers on hand-built histories: the linearizability checker, the
//! per-session monotonic-reads checker and the read-values checker, each with planted bugs it must catch (a stale read
//! after a completed write, a lost acknowledged write, a compare-and-set that won on a stale
//! version, a made-up value, a read going back within a session) and histories it must pass
//! (overlapping operations in either order, indeterminate writes that did or did not take
//! effect, late or never, local reads that are stale but in order), plus the inconclusive
//! verdict past the search budget, the trace lines and the coverage counts.

use std::time::Duration;

use zkit_sim::check::{self, linearizable, monotonic, read_values, Violation};
use zkit_sim::history::{render_record, Event, Record};
use zkit_sim::register::{RegisterError, RegisterOp, RegisterResult};
use zkit_sim::scenario::{self, Scenario};

fn registers() -> Scenario {
    let text = "[ensemble]\nservers = 3\ntick_ms = 500\nsession_timeout_ms = 4000\n\n\
                [run]\nduration_s = 60\nliveness_s = 10\n\n\
                [[workload]]\nrole = \"register\"\ncount = 3\npath = \"/r\"\n";
    scenario::parse("t.toml", "t", text).unwrap_or_else(|e| panic!("{e}"))
}

/// One history under construction: calls and returns at milliseconds.
#[derive(Default)]
struct H {
    records: Vec<Record>,
    next: u64,
}

const S: i64 = 0x100;

impl H {
    /// A history whose register c1 created (`init`, version 0) in the first two ms.
    fn created() -> H {
        let mut h = H::default();
        let id = h.call(0, 1, create("init"));
        h.ret(1, 1, id, RegisterResult::Written { version: 0 });
        h
    }

    fn push(&mut self, ms: u64, event: Event) {
        self.records.push(Record {
            at: Duration::from_millis(ms),
            event,
        });
    }

    fn call(&mut self, ms: u64, client: usize, op: RegisterOp) -> u64 {
        self.next += 1;
        let op_id = self.next;
        self.push(ms, Event::RegisterCall { client, op_id, op });
        op_id
    }

    fn ret(&mut self, ms: u64, client: usize, op_id: u64, result: RegisterResult) {
        self.ret_in(ms, client, op_id, S + client as i64, result);
    }

    fn ret_in(&mut self, ms: u64, client: usize, op_id: u64, session: i64, result: RegisterResult) {
        self.push(
            ms,
            Event::RegisterReturn {
                client,
                op_id,
                session,
                result,
            },
        );
    }

    /// A whole operation: called at `from`, returned at `to`.
    fn op(&mut self, from: u64, to: u64, client: usize, op: RegisterOp, result: RegisterResult) {
        let id = self.call(from, client, op);
        self.ret(to, client, id, result);
    }

    fn linearizable(&self) -> Vec<Violation> {
        let (v, f) = linearizable::check(&self.records, &registers());
        assert!(f.is_empty(), "{f:#?}");
        v
    }

    fn values(&self) -> Vec<Violation> {
        read_values::check(&self.records, &registers())
    }

    fn monotonic(&self) -> Vec<Violation> {
        monotonic::check(&self.records, &registers())
    }
}

fn create(v: &str) -> RegisterOp {
    RegisterOp::Create { value: v.into() }
}
fn write(v: &str) -> RegisterOp {
    RegisterOp::Write { value: v.into() }
}
fn cas(expected: i32, v: &str) -> RegisterOp {
    RegisterOp::Cas {
        expected,
        value: v.into(),
    }
}
fn multi(expected: i32, v: &str) -> RegisterOp {
    RegisterOp::Multi {
        expected,
        value: v.into(),
    }
}
fn read() -> RegisterOp {
    RegisterOp::Read { synced: true }
}
fn local_read() -> RegisterOp {
    RegisterOp::Read { synced: false }
}
fn ok(version: i32) -> RegisterResult {
    RegisterResult::Written { version }
}
fn saw(v: &str, version: i32) -> RegisterResult {
    RegisterResult::Read(Some((v.into(), version)))
}
fn lost() -> RegisterResult {
    RegisterResult::Indeterminate("connection lost".into())
}

fn one_violation(v: &[Violation], checker: &str, needles: &[&str]) {
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].checker, checker);
    for n in needles {
        assert!(v[0].message.contains(n), "{:?} lacks {n:?}", v[0].message);
    }
}

// ---- must fail ----

#[test]
fn a_stale_read_after_a_completed_write_is_not_linearizable() {
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, read(), saw("init", 0));
    let v = h.linearizable();
    one_violation(
        &v,
        "linearizable",
        &["c2's sync+read", "\"init\" version 0", "\"a\" version 1"],
    );
    assert_eq!(
        v[0].at,
        Duration::from_millis(40),
        "the stale read's return"
    );
}

#[test]
fn a_lost_acknowledged_write_is_not_linearizable() {
    // Both writes were acknowledged as making version 1: one of them was lost.
    let mut h = H::created();
    h.op(10, 40, 1, write("a"), ok(1));
    h.op(20, 50, 2, write("b"), ok(1));
    h.op(60, 70, 3, read(), saw("b", 1));
    one_violation(&h.linearizable(), "linearizable", &["register /r"]);
    // The same loss seen by a later read only: the acknowledged write is simply gone.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, write("b"), ok(2));
    h.op(50, 60, 3, read(), saw("a", 1));
    one_violation(&h.linearizable(), "linearizable", &["c3's sync+read"]);
}

#[test]
fn a_cas_that_won_on_a_stale_version_is_not_linearizable() {
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, cas(0, "x"), ok(1));
    one_violation(
        &h.linearizable(),
        "linearizable",
        &["c2's cas version 0 -> \"x\"", "ok, version 1"],
    );
    // And the converse: a CAS refused although nothing changed the version it expected.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(
        30,
        40,
        2,
        cas(1, "x"),
        RegisterResult::Failed(RegisterError::BadVersion),
    );
    one_violation(&h.linearizable(), "linearizable", &["BadVersion"]);
}

#[test]
fn a_multi_that_won_on_a_stale_version_is_not_linearizable() {
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, multi(0, "x"), ok(2));
    one_violation(
        &h.linearizable(),
        "linearizable",
        &["c2's multi [check version 0, set \"x\"]", "ok, version 2"],
    );
    // A multi refused although its check held.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(
        30,
        40,
        2,
        multi(1, "x"),
        RegisterResult::Failed(RegisterError::BadVersion),
    );
    one_violation(&h.linearizable(), "linearizable", &["BadVersion"]);
    // And one that applied on the right version, seen by a later read, passes; its
    // value is a written one for the read-values checker.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, multi(1, "x"), ok(2));
    h.op(50, 60, 3, local_read(), saw("x", 2));
    h.op(70, 80, 1, read(), saw("x", 2));
    assert!(h.linearizable().is_empty());
    assert!(h.values().is_empty(), "{:#?}", h.values());
    let c = check::coverage(&h.records);
    assert_eq!(c.get("register multi applied"), Some(&1));
}

#[test]
fn a_made_up_value_is_not_linearizable() {
    let mut h = H::created();
    h.op(10, 20, 1, read(), saw("nobody wrote this", 0));
    one_violation(&h.linearizable(), "linearizable", &["nobody wrote this"]);
}

#[test]
fn a_read_going_back_within_a_session_breaks_monotonic_reads() {
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, local_read(), saw("a", 1));
    h.op(50, 60, 2, local_read(), saw("init", 0));
    one_violation(
        &h.monotonic(),
        "monotonic-reads",
        &[
            "c2 read register /r at version 0",
            "after it read version 1",
        ],
    );
    // Local reads are not linearizable reads: the other checker leaves them alone.
    assert!(h.linearizable().is_empty());
    // A session's own acknowledged write counts too (read your writes).
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 1, local_read(), saw("init", 0));
    one_violation(
        &h.monotonic(),
        "monotonic-reads",
        &["after it wrote version 1"],
    );
}

#[test]
fn a_local_read_of_a_made_up_state_breaks_register_values() {
    // A value nobody wrote.
    let mut h = H::created();
    h.op(10, 20, 2, local_read(), saw("garbage", 0));
    one_violation(
        &h.values(),
        "register-values",
        &["a value nobody had written"],
    );
    // A value read before anyone wrote it.
    let mut h = H::created();
    h.op(10, 20, 2, local_read(), saw("a", 1));
    h.op(30, 40, 1, write("a"), ok(1));
    one_violation(&h.values(), "register-values", &["nobody had written"]);
    // A written value at another version than it was acknowledged with.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, local_read(), saw("a", 2));
    one_violation(
        &h.values(),
        "register-values",
        &["acknowledged as version 1"],
    );
    // Two values for one version (the writes' outcomes unknown).
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), lost());
    h.op(10, 20, 3, write("b"), lost());
    h.op(30, 40, 2, local_read(), saw("a", 1));
    h.op(50, 60, 1, local_read(), saw("b", 1));
    one_violation(
        &h.values(),
        "register-values",
        &["c2 read \"a\" as that version"],
    );
    // Stale but real local reads pass.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, local_read(), saw("init", 0));
    h.op(50, 60, 3, local_read(), saw("a", 1));
    assert!(h.values().is_empty());
}

// ---- must pass ----

#[test]
fn overlapping_operations_linearize_in_either_order() {
    for (value, version) in [("init", 0), ("a", 1)] {
        let mut h = H::created();
        let w = h.call(10, 1, write("a"));
        h.op(12, 18, 2, read(), saw(value, version));
        h.ret(20, 1, w, ok(1));
        h.op(30, 40, 3, read(), saw("a", 1));
        assert!(h.linearizable().is_empty(), "read saw {value}");
    }
    // Two overlapping writes, acknowledged in the opposite order of their versions.
    let mut h = H::created();
    let a = h.call(10, 1, write("a"));
    let b = h.call(11, 2, write("b"));
    h.ret(20, 2, b, ok(1));
    h.ret(21, 1, a, ok(2));
    h.op(30, 40, 3, cas(2, "c"), ok(3));
    h.op(50, 60, 3, read(), saw("c", 3));
    assert!(h.linearizable().is_empty());
}

#[test]
fn an_indeterminate_write_may_take_effect_or_not() {
    // It took effect: a later read sees it.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), lost());
    h.op(30, 40, 2, read(), saw("a", 1));
    assert!(h.linearizable().is_empty());
    // It did not (yet): a later read sees the old value; and then it did, late.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), lost());
    h.op(30, 40, 2, read(), saw("init", 0));
    assert!(h.linearizable().is_empty());
    h.op(50, 60, 2, read(), saw("a", 1));
    assert!(h.linearizable().is_empty());
    // It never did: versions go on without it.
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), lost());
    h.op(30, 40, 2, write("b"), ok(1));
    h.op(50, 60, 3, read(), saw("b", 1));
    assert!(h.linearizable().is_empty());
    // No return at all (its host crashed): open to the end, the same.
    let mut h = H::created();
    h.call(10, 1, cas(0, "a"));
    h.op(30, 40, 2, read(), saw("a", 1));
    assert!(h.linearizable().is_empty());
    // But it cannot take effect before its call.
    let mut h = H::created();
    h.op(10, 20, 2, read(), saw("a", 1));
    h.op(30, 40, 1, write("a"), lost());
    one_violation(&h.linearizable(), "linearizable", &["c2's sync+read"]);
}

#[test]
fn stale_local_reads_in_order_pass_and_sessions_are_separate() {
    let mut h = H::created();
    h.op(10, 20, 1, write("a"), ok(1));
    h.op(30, 40, 2, local_read(), saw("init", 0));
    h.op(50, 60, 2, local_read(), saw("a", 1));
    assert!(h.monotonic().is_empty());
    assert!(h.linearizable().is_empty());
    // A new session may see older state (no promise across sessions).
    let id = h.call(70, 2, local_read());
    h.ret_in(80, 2, id, 0x999, saw("init", 0));
    assert!(h.monotonic().is_empty());
}

#[test]
fn a_search_past_its_budget_is_inconclusive_not_a_pass_or_a_failure() {
    let mut h = H::created();
    for i in 0..12 {
        h.call(10 + i, 1 + (i as usize % 3), write(&format!("w{i}")));
    }
    h.op(100, 110, 2, read(), saw("w3", 1));
    let (v, f) = linearizable::check_with_budget(&h.records, &registers(), 5);
    assert!(v.is_empty(), "{v:#?}");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].message.contains("inconclusive"), "{}", f[0].message);
    // With the default budget the same history is decided.
    assert!(h.linearizable().is_empty());
}

#[test]
fn register_records_render_and_count() {
    let mut h = H::created();
    h.op(10, 20, 1, cas(0, "a"), ok(1));
    h.op(
        30,
        40,
        2,
        cas(0, "b"),
        RegisterResult::Failed(RegisterError::BadVersion),
    );
    h.op(50, 60, 3, write("c"), lost());
    let lines: Vec<String> = h.records.iter().map(render_record).collect();
    assert_eq!(
        lines[2],
        "   0.010000 s c1: register op 0x2 calls cas version 0 -> \"a\""
    );
    assert_eq!(
        lines[7],
        "   0.060000 s c3: register op 0x4 returns indeterminate: connection lost"
    );
    let c = check::coverage(&h.records);
    assert_eq!(c.get("register ops"), Some(&3));
    assert_eq!(c.get("indeterminate register ops"), Some(&1));
    assert_eq!(c.get("register cas applied"), Some(&1));
    assert_eq!(c.get("register cas refused"), Some(&1));
    assert!(check::all(&h.records, &registers()).is_empty());
}

/// The shipped scenario's histories are decided (never inconclusive) and quickly: prints the
/// simulation's and the checker's wall time per seed. `ZKIT_LIN_SEEDS` (default 3) seeds.
#[test]
fn shipped_register_histories_are_decided_quickly() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/register_under_faults.toml");
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let seeds: u64 = std::env::var("ZKIT_LIN_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (mut run, mut checking, mut ops) = (Duration::ZERO, Duration::ZERO, 0);
    for seed in 0..seeds {
        let wall = std::time::Instant::now();
        let outcome = zkit_sim::runner::run(&s, seed);
        run += wall.elapsed();
        assert!(outcome.passed(), "seed {seed}: {:#?}", outcome.violations);
        let wall = std::time::Instant::now();
        let (v, f) = linearizable::check(&outcome.records, &s);
        checking += wall.elapsed();
        assert!(v.is_empty() && f.is_empty(), "seed {seed}: {v:#?} {f:#?}");
        ops += outcome
            .records
            .iter()
            .filter(|r| matches!(r.event, Event::RegisterCall { .. }))
            .count();
    }
    println!(
        "{seeds} seeds, {ops} register ops: {:.1} ms per seed in all, of which the \
         linearizability check {:.1} ms",
        run.as_secs_f64() * 1000.0 / seeds as f64,
        checking.as_secs_f64() * 1000.0 / seeds as f64
    );
}
