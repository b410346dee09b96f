//! The register watch checker (`check::watches`) on hand-built histories: histories it must
//! fail (a change seen by a read in the session before the watch set by an earlier read had
//! fired: missed, or delivered after the data; a deletion seen likewise) and histories it
//! must pass (the notification before the data; no change seen; a watch voided by the
//! session's end or by another session; a read that left no watch), plus the trace lines and
//! the coverage counts.

use std::time::Duration;

use zkit::EventType;
use zkit_sim::check::{self, watches, Violation};
use zkit_sim::history::{render_record, Event, Record};
use zkit_sim::register::{RegisterOp, RegisterResult};
use zkit_sim::scenario::{self, Scenario};

fn registers() -> Scenario {
    let text = "[ensemble]\nservers = 3\ntick_ms = 500\nsession_timeout_ms = 4000\n\n\
                [run]\nduration_s = 60\nliveness_s = 10\n\n\
                [[workload]]\nrole = \"register\"\ncount = 3\npath = \"/r\"\n";
    scenario::parse("t.toml", "t", text).unwrap_or_else(|e| panic!("{e}"))
}

const S: i64 = 0x100;

/// One history under construction, at milliseconds; every client in session `S + client`
/// unless told.
#[derive(Default)]
struct H {
    records: Vec<Record>,
    next: u64,
}

impl H {
    /// A history whose register c3 created (`init`, version 0) in the first two ms.
    fn created() -> H {
        let mut h = H::default();
        h.op(
            0,
            1,
            3,
            RegisterOp::Create {
                value: "init".into(),
            },
            ok(0),
        );
        h
    }

    fn push(&mut self, ms: u64, event: Event) {
        self.records.push(Record {
            at: Duration::from_millis(ms),
            event,
        });
    }

    /// A whole operation in the client's own session; returns its op id.
    fn op(&mut self, from: u64, to: u64, client: usize, op: RegisterOp, r: RegisterResult) -> u64 {
        self.op_in(from, to, client, S + client as i64, op, r)
    }

    fn op_in(
        &mut self,
        from: u64,
        to: u64,
        client: usize,
        session: i64,
        op: RegisterOp,
        result: RegisterResult,
    ) -> u64 {
        self.next += 1;
        let op_id = self.next;
        self.push(from, Event::RegisterCall { client, op_id, op });
        self.push(
            to,
            Event::RegisterReturn {
                client,
                op_id,
                session,
                result,
            },
        );
        op_id
    }

    /// A read that returned `value` at `version` and left a watch (recorded at `to`).
    fn watched_read(
        &mut self,
        from: u64,
        to: u64,
        client: usize,
        value: &str,
        version: i32,
    ) -> u64 {
        let id = self.op(from, to, client, read(), saw(value, version));
        self.push(
            to,
            Event::RegisterWatchSet {
                client,
                read: id,
                session: S + client as i64,
            },
        );
        id
    }

    fn fired(&mut self, ms: u64, client: usize, read: u64, event: EventType) {
        self.push(
            ms,
            Event::RegisterWatchFired {
                client,
                read,
                session: S + client as i64,
                event,
            },
        );
    }

    fn check(&self) -> Vec<Violation> {
        watches::check(&self.records, &registers())
    }
}

fn read() -> RegisterOp {
    RegisterOp::Read { synced: false }
}
fn write(v: &str) -> RegisterOp {
    RegisterOp::Write { value: v.into() }
}
fn ok(version: i32) -> RegisterResult {
    RegisterResult::Written { version }
}
fn saw(v: &str, version: i32) -> RegisterResult {
    RegisterResult::Read(Some((v.into(), version)))
}

fn one_violation(v: &[Violation], needles: &[&str]) {
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].checker, "watches");
    for n in needles {
        assert!(v[0].message.contains(n), "{:?} lacks {n:?}", v[0].message);
    }
}

// ---- must fail ----

#[test]
fn a_change_seen_before_its_notification_is_caught() {
    let mut h = H::created();
    h.watched_read(10, 20, 1, "init", 0);
    h.op(30, 40, 2, write("a"), ok(1));
    // c1 sees version 1 with its watch not fired: missed.
    h.op(50, 60, 1, read(), saw("a", 1));
    one_violation(
        &h.check(),
        &[
            "c1's data watch",
            "\"init\" version 0",
            "\"a\" version 1",
            "had not fired",
        ],
    );
}

#[test]
fn a_notification_delivered_after_the_data_is_caught() {
    let mut h = H::created();
    let w = h.watched_read(10, 20, 1, "init", 0);
    h.op(30, 40, 2, write("a"), ok(1));
    h.op(50, 60, 1, read(), saw("a", 1));
    h.fired(61, 1, w, EventType::NodeDataChanged);
    one_violation(&h.check(), &["had not fired"]);
}

#[test]
fn a_deletion_seen_before_its_notification_is_caught() {
    let mut h = H::created();
    h.watched_read(10, 20, 1, "init", 0);
    h.op(50, 60, 1, read(), RegisterResult::Read(None));
    one_violation(&h.check(), &["no node"]);
}

#[test]
fn every_watch_missed_is_reported_once() {
    let mut h = H::created();
    h.watched_read(10, 20, 1, "init", 0);
    h.watched_read(21, 22, 1, "init", 0);
    h.op(30, 40, 2, write("a"), ok(1));
    h.op(50, 60, 1, read(), saw("a", 1));
    h.op(70, 80, 2, write("b"), ok(2));
    h.op(90, 95, 1, read(), saw("b", 2));
    assert_eq!(h.check().len(), 2, "{:#?}", h.check());
}

// ---- must pass ----

#[test]
fn a_notification_before_the_data_passes_and_is_counted() {
    let mut h = H::created();
    let w = h.watched_read(10, 20, 1, "init", 0);
    h.op(30, 40, 2, write("a"), ok(1));
    h.fired(45, 1, w, EventType::NodeDataChanged);
    h.op(50, 60, 1, read(), saw("a", 1));
    assert!(h.check().is_empty(), "{:#?}", h.check());
    let c = check::coverage(&h.records);
    assert_eq!(c.get("register watches set"), Some(&1));
    assert_eq!(c.get("register watch notifications"), Some(&1));
    assert_eq!(c.get("register watch notifications judged"), Some(&1));
    assert!(check::all(&h.records, &registers()).is_empty());
}

#[test]
fn reads_seeing_no_change_need_no_notification() {
    let mut h = H::created();
    h.watched_read(10, 20, 1, "init", 0);
    h.op(30, 40, 1, read(), saw("init", 0));
    // The write is in flight, not yet seen by c1.
    h.op(50, 60, 2, write("a"), ok(1));
    h.op(55, 58, 1, read(), saw("init", 0));
    assert!(h.check().is_empty(), "{:#?}", h.check());
}

#[test]
fn a_new_session_voids_the_watch() {
    let mut h = H::created();
    h.watched_read(10, 20, 1, "init", 0);
    h.op(30, 40, 2, write("a"), ok(1));
    h.op_in(50, 60, 1, 0x999, read(), saw("a", 1));
    assert!(h.check().is_empty(), "{:#?}", h.check());
}

#[test]
fn a_session_end_voids_the_watch() {
    let mut h = H::created();
    let w = h.watched_read(10, 20, 1, "init", 0);
    h.fired(25, 1, w, EventType::None);
    h.op(30, 40, 2, write("a"), ok(1));
    h.op(50, 60, 1, read(), saw("a", 1));
    assert!(h.check().is_empty(), "{:#?}", h.check());
    assert_eq!(
        check::coverage(&h.records).get("register watch notifications"),
        None
    );
}

#[test]
fn a_read_that_left_no_watch_is_not_judged() {
    let mut h = H::created();
    h.op(10, 20, 1, read(), saw("init", 0));
    h.op(30, 40, 2, write("a"), ok(1));
    h.op(50, 60, 1, read(), saw("a", 1));
    assert!(h.check().is_empty(), "{:#?}", h.check());
}

#[test]
fn watch_records_render() {
    let mut h = H::created();
    let w = h.watched_read(10, 20, 1, "init", 0);
    h.fired(45, 1, w, EventType::NodeDataChanged);
    let lines: Vec<String> = h.records.iter().map(render_record).collect();
    assert_eq!(
        lines[4],
        "   0.020000 s c1: register op 0x2 left a data watch"
    );
    assert_eq!(
        lines[5],
        "   0.045000 s c1: data watch of register op 0x2 fired: NodeDataChanged"
    );
}
