//! A run drawn as one self-contained HTML page, in the spirit of Jepsen's `timeline.html`.
//!
//! The x axis is simulated time (seconds since the simulation started, the same clock as the
//! trace). The page has one lane per lane-worthy thing:
//!
//! - `faults`: every fault record as a marker, every fault as a translucent band, runner
//!   notes and anything that names no host;
//! - `c1`..`cN`, one per client: its session state as a thin colour-coded strip (from
//!   [`Event::State`]); what it believes it holds or is as bands: the lock (from
//!   [`Event::Acquired`] to its release, loss or crash), read and write locks, semaphore
//!   leases, leadership ([`Event::Leader`] to stepping down or losing it), party membership,
//!   barrier waits and stays; fenced writes as ticks (accepted green, rejected red); crashes
//!   (down until the host starts again), expirations by the harness, application pauses, and
//!   the faults that hit it as translucent bands;
//! - `zk1`..`zkN`, one per server: down, started, looking, following, prospective or
//!   established leader, and whether it serves clients, parsed from the ensemble's event
//!   log (`"<ms> ms zkN: <what>"`) and from the fault records that crash or restart it.
//!
//! Violations are red vertical lines across the chart at [`Violation::at`] with the
//! message as a tooltip, and are listed under the chart with the fault schedule and the
//! text trace.
//!
//! Parsing is best effort and never panics: a server log line or a fault record this file
//! does not understand becomes a marker, and so does any [`Event`] variant it does not
//! know (drawn with [`render_record`]'s text as its tooltip, in the lane of the client the
//! text starts with, `cN: ...`).
//!
//! Markers that fall in the same 1/2000 of the time axis on one lane are merged into one
//! (the tooltip lists the first few and counts the rest), which bounds the page's size
//! however busy the run was. Everything is laid out in percentages of the axis, so the
//! zoom buttons only widen the chart. Every text is HTML-escaped and the output depends
//! on nothing but its inputs: the same outcome gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use crate::check::Violation;
use crate::history::{render_record, Event, Record};
use crate::runner::Outcome;
use crate::scenario::{Direction, Fault, Scenario};

/// Markers per lane at most: the axis is cut into this many buckets.
const BUCKETS: u64 = 2000;
/// The axis in position units (1 unit = 0.0001 %).
const FULL: u64 = 1_000_000;
/// Lines a merged marker's tooltip lists before counting the rest.
const TOOLTIP_LINES: usize = 4;
/// Violations drawn and listed at most.
const MAX_VIOLATIONS: usize = 1000;
/// Trace lines embedded at most.
const MAX_TRACE_LINES: usize = 5000;

/// The run as a self-contained HTML page.
pub fn render(scenario: &Scenario, outcome: &Outcome) -> String {
    let server_lines: Vec<ServerLine> = outcome
        .server_events
        .iter()
        .map(|l| parse_server_line(l))
        .collect();
    let scale = Scale::of(outcome, &server_lines);
    let mut lanes = Lanes::new(scale, scenario);
    draw_clients(&mut lanes, &outcome.records);
    let server_faults = draw_faults(&mut lanes, &outcome.records);
    draw_servers(&mut lanes, &server_lines, server_faults);

    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, scenario, outcome);
    header(&mut out, scenario, outcome);
    legend(&mut out);
    chart(&mut out, scenario, &lanes, &outcome.violations);
    violations(&mut out, &outcome.violations);
    schedule(&mut out, &outcome.schedule);
    trace(&mut out, &outcome.trace);
    out.push_str(SCRIPT);
    out.push_str("</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------------------
// Time axis

/// Maps simulated time to a position on the axis.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// The right end of the axis (a whole number of seconds, at least one).
    end: Duration,
}

impl Scale {
    /// An axis covering every record, server event and violation of `outcome`.
    fn of(outcome: &Outcome, server_lines: &[ServerLine]) -> Scale {
        let last = outcome
            .records
            .iter()
            .map(|r| r.at)
            .chain(server_lines.iter().filter_map(|l| l.at))
            .chain(outcome.violations.iter().map(|v| v.at))
            .max()
            .unwrap_or_default();
        let secs = last.as_secs() + u64::from(last.subsec_nanos() > 0);
        Scale {
            end: Duration::from_secs(secs.max(1)),
        }
    }

    /// `t`'s position in units of 0.0001 % of the axis (clamped to the axis).
    fn units(self, t: Duration) -> u64 {
        let span = self.end.as_micros().max(1);
        let at = t.as_micros().min(span);
        u64::try_from(at * u128::from(FULL) / span).unwrap_or(FULL)
    }
}

/// Position units as a CSS percentage (`12.3456%`, trailing zeros dropped).
fn pct(units: u64) -> String {
    let whole = units / 10_000;
    let frac = units % 10_000;
    if frac == 0 {
        return format!("{whole}%");
    }
    let frac = format!("{frac:04}");
    format!("{whole}.{}%", frac.trim_end_matches('0'))
}

/// A time as the trace writes it: `12.345678 s`.
fn secs(t: Duration) -> String {
    format!("{}.{:06} s", t.as_secs(), t.subsec_micros())
}

// ---------------------------------------------------------------------------------------
// Lanes

/// Which lane something is drawn in (the order is the page's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LaneId {
    /// Faults, runner notes, anything without a host.
    Faults,
    /// Client `cN`.
    Client(usize),
    /// Server `zkN`.
    Server(usize),
}

impl LaneId {
    /// The lane's label.
    fn name(self) -> String {
        match self {
            LaneId::Faults => "faults".to_owned(),
            LaneId::Client(n) => format!("c{n}"),
            LaneId::Server(n) => format!("zk{n}"),
        }
    }

    /// The lane row's CSS class.
    fn class(self) -> &'static str {
        match self {
            LaneId::Faults => "fa",
            LaneId::Client(_) => "cl",
            LaneId::Server(_) => "sv",
        }
    }
}

/// The host a word names (`c3`, `zk2`), if any.
fn parse_host(word: &str) -> Option<LaneId> {
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<usize>().ok().filter(|&n| n >= 1)
    };
    if let Some(n) = word.strip_prefix("zk") {
        return number(n).map(LaneId::Server);
    }
    word.strip_prefix('c').and_then(number).map(LaneId::Client)
}

/// Every host `text` names, in lane order.
fn hosts_in(text: &str) -> Vec<LaneId> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(parse_host)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A span of time drawn as a bar.
#[derive(Debug)]
struct Band {
    class: &'static str,
    from: Duration,
    to: Duration,
    title: String,
}

/// Instants drawn as one marker (merged when they fall in one bucket).
#[derive(Debug)]
struct Point {
    at: Duration,
    lines: Vec<String>,
    more: usize,
}

/// One lane's drawing.
#[derive(Debug, Default)]
struct Lane {
    bands: Vec<Band>,
    /// By (bucket, class).
    points: BTreeMap<(u64, &'static str), Point>,
}

/// Every lane.
#[derive(Debug)]
struct Lanes {
    scale: Scale,
    map: BTreeMap<LaneId, Lane>,
}

impl Lanes {
    /// The faults lane and one lane per client and server of `scenario`.
    fn new(scale: Scale, scenario: &Scenario) -> Lanes {
        let mut map = BTreeMap::new();
        map.insert(LaneId::Faults, Lane::default());
        for c in 1..=scenario.client_count() {
            map.insert(LaneId::Client(c), Lane::default());
        }
        for s in 1..=usize::from(scenario.servers) {
            map.insert(LaneId::Server(s), Lane::default());
        }
        Lanes { scale, map }
    }

    /// The end of the axis.
    fn end(&self) -> Duration {
        self.scale.end
    }

    /// Draws a bar from `from` to `to` in lane `id`.
    fn band(
        &mut self,
        id: LaneId,
        class: &'static str,
        from: Duration,
        to: Duration,
        title: String,
    ) {
        let to = to.max(from);
        self.map.entry(id).or_default().bands.push(Band {
            class,
            from,
            to,
            title,
        });
    }

    /// Draws a marker at `at` in lane `id` (merged with others of its class nearby).
    fn point(&mut self, id: LaneId, class: &'static str, at: Duration, line: &str) {
        let bucket = self.scale.units(at) / (FULL / BUCKETS);
        let point = self
            .map
            .entry(id)
            .or_default()
            .points
            .entry((bucket, class))
            .or_insert_with(|| Point {
                at,
                lines: Vec::new(),
                more: 0,
            });
        if point.lines.len() < TOOLTIP_LINES {
            point.lines.push(line.to_owned());
        } else {
            point.more += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Clients

/// The bands a client's beliefs draw (CSS class, what it is), other than its session state.
const HELD: [&str; 4] = ["h", "hr", "hw", "hl"];

/// What a client believes, with when each belief started.
#[derive(Debug, Default)]
struct Beliefs {
    /// Session state and since when.
    state: Option<(Duration, String)>,
    /// Beliefs drawn as bands (by CSS class): since when, and what.
    open: BTreeMap<&'static str, (Duration, String)>,
    /// Application paused since.
    paused: Option<Duration>,
    /// Host down since.
    down: Option<Duration>,
}

/// The CSS class of a session state (`Connected`, `Suspended`, ...).
fn state_class(state: &str) -> &'static str {
    match state {
        "Connected" => "s-ok",
        "ConnectedReadOnly" => "s-ro",
        "Connecting" => "s-try",
        "Suspended" | "Disconnected" => "s-sus",
        "Lost" | "Expired" => "s-lost",
        "Closed" | "AuthFailed" => "s-end",
        _ => "s-other",
    }
}

impl Beliefs {
    /// Starts believing `what` (drawn with `class`), ending a belief of that class first.
    fn open(
        &mut self,
        lanes: &mut Lanes,
        c: usize,
        class: &'static str,
        at: Duration,
        what: String,
    ) {
        self.close(lanes, c, class, at, "again");
        self.open.insert(class, (at, what));
    }

    /// Stops believing what `class` draws, because of `how`.
    fn close(&mut self, lanes: &mut Lanes, c: usize, class: &'static str, at: Duration, how: &str) {
        if let Some((from, what)) = self.open.remove(class) {
            let title = format!("c{c} {what} from {} to {} ({how})", secs(from), secs(at));
            lanes.band(LaneId::Client(c), class, from, at, title);
        }
    }

    fn end_state(&mut self, lanes: &mut Lanes, c: usize, at: Duration) {
        if let Some((from, state)) = self.state.take() {
            let title = format!("c{c} {state} from {} to {}", secs(from), secs(at));
            lanes.band(LaneId::Client(c), state_class(&state), from, at, title);
        }
    }

    fn end_pause(&mut self, lanes: &mut Lanes, c: usize, at: Duration) {
        if let Some(from) = self.paused.take() {
            let title = format!(
                "c{c} application paused from {} to {}",
                secs(from),
                secs(at)
            );
            lanes.band(LaneId::Client(c), "pz", from, at, title);
        }
    }

    fn end_down(&mut self, lanes: &mut Lanes, c: usize, at: Duration) {
        if let Some(from) = self.down.take() {
            let title = format!("c{c} host down from {} to {}", secs(from), secs(at));
            lanes.band(LaneId::Client(c), "dn", from, at, title);
        }
    }

    /// Ends every belief (a crash, a new process, the end of the run).
    fn end_all(&mut self, lanes: &mut Lanes, c: usize, at: Duration, how: &str) {
        self.end_state(lanes, c, at);
        let classes: Vec<&'static str> = self.open.keys().copied().collect();
        for class in classes {
            self.close(lanes, c, class, at, how);
        }
    }
}

/// The client lanes (and runner notes, and events this file does not know) from the
/// history.
fn draw_clients(lanes: &mut Lanes, records: &[Record]) {
    let mut beliefs: BTreeMap<usize, Beliefs> = BTreeMap::new();
    for r in records {
        let line = render_record(r);
        let at = r.at;
        match &r.event {
            Event::Started { client, .. } => {
                let b = beliefs.entry(*client).or_default();
                let lane = LaneId::Client(*client);
                b.end_all(lanes, *client, at, "new process");
                b.end_down(lanes, *client, at);
                lanes.point(lane, "st", at, &line);
            }
            Event::Acquired { client, token } => {
                let what = format!("holds the lock (token {token:#x})");
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "h", at, what);
            }
            Event::ReadAcquired { client, token } => {
                let what = format!("holds the read lock (token {token:#x})");
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "hr", at, what);
            }
            Event::WriteAcquired { client, token } => {
                let what = format!("holds the write lock (token {token:#x})");
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "hw", at, what);
            }
            Event::LeaseAcquired { client, token } => {
                let what = format!("holds a lease (token {token:#x})");
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "hl", at, what);
            }
            Event::Released { client } => {
                let b = beliefs.entry(*client).or_default();
                for class in HELD {
                    b.close(lanes, *client, class, at, "released");
                }
            }
            Event::Lost { client } => {
                let b = beliefs.entry(*client).or_default();
                let lane = LaneId::Client(*client);
                for class in HELD {
                    b.close(lanes, *client, class, at, "lost");
                }
                lanes.point(lane, "lo", at, &line);
            }
            Event::Leader { client, epoch } => {
                let what = format!("leads (epoch {epoch:#x})");
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "ld", at, what);
            }
            Event::SteppedDown { client } => {
                beliefs
                    .entry(*client)
                    .or_default()
                    .close(lanes, *client, "ld", at, "stepped down");
            }
            Event::LeaderLost { client } => {
                let b = beliefs.entry(*client).or_default();
                let lane = LaneId::Client(*client);
                b.close(lanes, *client, "ld", at, "leadership lost");
                lanes.point(lane, "lo", at, &line);
            }
            Event::Joined { client } => {
                let what = "is a party member".to_owned();
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "pm", at, what);
            }
            Event::PartyLeft { client } => {
                beliefs
                    .entry(*client)
                    .or_default()
                    .close(lanes, *client, "pm", at, "left");
            }
            Event::BarrierEntering { client } => {
                let what = "enters the barrier".to_owned();
                beliefs
                    .entry(*client)
                    .or_default()
                    .open(lanes, *client, "bw", at, what);
            }
            Event::BarrierEntered { client } => {
                let b = beliefs.entry(*client).or_default();
                b.close(lanes, *client, "bw", at, "entered");
                b.open(lanes, *client, "bi", at, "is in the barrier".to_owned());
            }
            Event::BarrierLeft { client } => {
                beliefs
                    .entry(*client)
                    .or_default()
                    .close(lanes, *client, "bi", at, "left");
            }
            Event::BarrierFailed { client, .. } => {
                let b = beliefs.entry(*client).or_default();
                let lane = LaneId::Client(*client);
                b.close(lanes, *client, "bw", at, "failed");
                b.close(lanes, *client, "bi", at, "failed");
                lanes.point(lane, "mu", at, &line);
            }
            Event::Write {
                client, accepted, ..
            } => {
                let class = if *accepted { "wa" } else { "wr" };
                lanes.point(LaneId::Client(*client), class, at, &line);
            }
            Event::State { client, state } => {
                let b = beliefs.entry(*client).or_default();
                b.end_state(lanes, *client, at);
                b.state = Some((at, state.clone()));
            }
            Event::Crashed { client } => {
                let b = beliefs.entry(*client).or_default();
                let lane = LaneId::Client(*client);
                b.end_all(lanes, *client, at, "crashed");
                if b.down.is_none() {
                    b.down = Some(at);
                }
                lanes.point(lane, "x", at, &line);
            }
            Event::Killed { client } => {
                lanes.point(LaneId::Client(*client), "kl", at, &line);
            }
            Event::Paused { client } => {
                let b = beliefs.entry(*client).or_default();
                if b.paused.is_none() {
                    b.paused = Some(at);
                }
            }
            Event::Resumed { client } => {
                beliefs
                    .entry(*client)
                    .or_default()
                    .end_pause(lanes, *client, at);
            }
            Event::Note { who, .. } => {
                let lane = match parse_host(who) {
                    Some(LaneId::Client(c)) => LaneId::Client(c),
                    _ => LaneId::Faults,
                };
                lanes.point(lane, "m", at, &line);
            }
            // Drawn by `draw_faults`.
            Event::Fault { .. } => {}
            // Instants (config values, writer creates and listings, party sizes, heals) and
            // every variant added after this file was written.
            _ => generic(lanes, at, &line),
        }
    }
    let end = lanes.end();
    for (c, b) in &mut beliefs {
        let c = *c;
        b.end_all(lanes, c, end, "still so at the end");
        b.end_pause(lanes, c, end);
        b.end_down(lanes, c, end);
    }
}

/// An event drawn as a marker only: in the lane of the client its text starts with
/// (`cN: ...`), else in the faults lane; amber when it reports an uncertain outcome or a
/// failure.
fn generic(lanes: &mut Lanes, at: Duration, line: &str) {
    // `render_record` writes `<secs>.<micros> s <who>: <what>`.
    let text = line.split_once(" s ").map_or(line, |(_, rest)| rest);
    let lane = match text.split_once(": ").and_then(|(who, _)| parse_host(who)) {
        Some(LaneId::Client(c)) => LaneId::Client(c),
        _ => LaneId::Faults,
    };
    let class = if text.contains("uncertain") || text.contains("failed") {
        "mu"
    } else {
        "m"
    };
    lanes.point(lane, class, at, line);
}

// ---------------------------------------------------------------------------------------
// Faults

/// A fault in force (or that was), read off its records.
#[derive(Debug)]
struct FaultSpan {
    /// Its kind (the record's first word).
    kind: String,
    /// The hosts it hit (empty: every host).
    hosts: Vec<LaneId>,
    from: Duration,
    /// When it was due to end (`for X s`).
    due: Option<Duration>,
    /// When a record ended it.
    to: Option<Duration>,
    /// Its records.
    lines: Vec<String>,
}

/// A server going down (`false`) or up (`true`) by a fault record.
type ServerFault = (Duration, usize, bool);

/// The `for X s` of a fault record.
fn lasts(what: &str) -> Option<Duration> {
    let words: Vec<&str> = what.split_whitespace().collect();
    words.windows(3).find_map(|w| {
        if w[0] != "for" || !w[2].starts_with('s') {
            return None;
        }
        w[1].parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    })
}

/// The CSS class of a fault band of `kind`.
fn fault_class(kind: &str) -> &'static str {
    match kind {
        "partition" | "split" => "fb fp",
        "crash" => "fb fc",
        "pause" => "fb fz",
        "latency" => "fb fl",
        "loss" => "fb fo",
        _ => "fb fx",
    }
}

/// The fault bands and markers; returns the crashes and restarts of servers they name.
fn draw_faults(lanes: &mut Lanes, records: &[Record]) -> Vec<ServerFault> {
    let mut spans: Vec<FaultSpan> = Vec::new();
    let mut servers = Vec::new();
    for r in records {
        match &r.event {
            Event::Fault { what } => {
                let line = render_record(r);
                lanes.point(LaneId::Faults, "mf", r.at, &line);
                fault_record(lanes, &mut spans, &mut servers, r.at, what, line);
            }
            Event::Healed => {
                let line = render_record(r);
                for s in spans.iter_mut().filter(|s| s.to.is_none()) {
                    s.to = Some(r.at);
                    s.lines.push(line.clone());
                }
            }
            _ => {}
        }
    }
    let end = lanes.end();
    for s in spans {
        draw_fault(lanes, s, end);
    }
    servers
}

/// One fault record: opens, ends or marks a fault.
fn fault_record(
    lanes: &mut Lanes,
    spans: &mut Vec<FaultSpan>,
    servers: &mut Vec<ServerFault>,
    at: Duration,
    what: &str,
    line: String,
) {
    let mut words = what
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    let kind = words.next().unwrap_or("fault").to_owned();
    let ends = words.next() == Some("ends");
    let hosts = hosts_in(what);
    let up = if kind == "restart" || (ends && kind == "crash") {
        Some(true)
    } else if kind == "crash" {
        Some(false)
    } else {
        None
    };
    if let Some(up) = up {
        for h in &hosts {
            if let LaneId::Server(n) = h {
                servers.push((at, *n, up));
            }
        }
    }
    if ends {
        end_fault(spans, &kind, &hosts, at, line);
        return;
    }
    match kind.as_str() {
        "heal" => {
            for s in spans.iter_mut().filter(|s| {
                s.to.is_none()
                    && matches!(s.kind.as_str(), "partition" | "split" | "latency" | "loss")
            }) {
                s.to = Some(at);
                s.lines.push(line.clone());
            }
        }
        "restart" => {
            for s in spans.iter_mut().filter(|s| {
                s.to.is_none() && s.kind == "crash" && s.hosts.iter().any(|h| hosts.contains(h))
            }) {
                s.to = Some(at);
                s.lines.push(line.clone());
            }
            for h in &hosts {
                lanes.point(*h, "mf", at, &line);
            }
        }
        "partition" | "split" | "crash" | "pause" | "latency" | "loss" => {
            spans.push(FaultSpan {
                kind,
                hosts,
                from: at,
                due: lasts(what).map(|l| at + l),
                to: None,
                lines: vec![line],
            });
        }
        // `expire` and kinds this file does not know: a band if it says how long it
        // lasts, else a marker on the hosts it names.
        _ => match lasts(what) {
            Some(l) => spans.push(FaultSpan {
                kind,
                hosts,
                from: at,
                due: Some(at + l),
                to: None,
                lines: vec![line],
            }),
            None => {
                for h in &hosts {
                    lanes.point(*h, "mf", at, &line);
                }
            }
        },
    }
}

/// A `<kind> ends` record: ends the fault of that kind it most likely belongs to (naming
/// the same hosts, if it names any; due nearest to now).
fn end_fault(spans: &mut [FaultSpan], kind: &str, hosts: &[LaneId], at: Duration, line: String) {
    let distance = |s: &FaultSpan| {
        s.due
            .map_or(u128::MAX, |d| d.max(at).as_micros() - d.min(at).as_micros())
    };
    let best = spans
        .iter_mut()
        .filter(|s| s.to.is_none() && s.kind == kind)
        .filter(|s| hosts.is_empty() || s.hosts.iter().any(|h| hosts.contains(h)))
        .min_by_key(|s| distance(s));
    if let Some(s) = best {
        s.to = Some(at);
        s.lines.push(line);
    }
}

/// Draws `s` in the faults lane and in every lane it hit (every client and server lane
/// when it names no host).
fn draw_fault(lanes: &mut Lanes, s: FaultSpan, end: Duration) {
    let to = s.to.or(s.due).unwrap_or(end).min(end);
    let mut title = format!("{} from {} to {}", s.kind, secs(s.from), secs(to));
    for l in &s.lines {
        title.push('\n');
        title.push_str(l);
    }
    let class = fault_class(&s.kind);
    let targets: Vec<LaneId> = if s.hosts.is_empty() {
        lanes.map.keys().copied().collect()
    } else {
        std::iter::once(LaneId::Faults)
            .chain(s.hosts.iter().copied())
            .collect()
    };
    for id in targets {
        lanes.band(id, class, s.from, to, title.clone());
    }
}

// ---------------------------------------------------------------------------------------
// Servers

/// A server event log line, parsed as far as it goes.
#[derive(Debug)]
struct ServerLine {
    /// When (`None`: unreadable).
    at: Option<Duration>,
    /// Which server (`None`: unreadable).
    server: Option<usize>,
    /// What it said (the whole line when unreadable).
    what: String,
    /// The line as logged.
    line: String,
}

/// Parses `"<ms> ms zkN: <what>"` as far as it goes.
fn parse_server_line(line: &str) -> ServerLine {
    let mut parsed = ServerLine {
        at: None,
        server: None,
        what: line.to_owned(),
        line: line.trim().to_owned(),
    };
    let Some((ms, rest)) = line.trim_start().split_once(" ms ") else {
        return parsed;
    };
    parsed.at = ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    if let Some((host, what)) = rest.split_once(": ") {
        if let Some(LaneId::Server(n)) = parse_host(host.trim()) {
            parsed.server = Some(n);
            what.clone_into(&mut parsed.what);
        }
    }
    parsed
}

/// A server's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Down,
    Started,
    Looking,
    Following,
    Prospective,
    Leading,
}

impl Role {
    fn class(self) -> &'static str {
        match self {
            Role::Down => "r-dn",
            Role::Started => "r-up",
            Role::Looking => "r-lk",
            Role::Following => "r-fw",
            Role::Prospective => "r-pl",
            Role::Leading => "r-ld",
        }
    }
}

/// What a server log line changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A new role.
    Role(Role),
    /// Starts or stops serving clients.
    Serving(bool),
    /// Nothing drawn as a band: a marker.
    Marker,
    /// A fault record crashed (`false`) or restarted (`true`) it: applied only when it
    /// changes whether the server is up.
    Fault(bool),
}

/// What `what` (a server's log text) changes.
fn classify(what: &str) -> Change {
    let starts = |p: &str| what.starts_with(p);
    if starts("crashed") {
        Change::Role(Role::Down)
    } else if starts("started") {
        Change::Role(Role::Started)
    } else if starts("looking") {
        Change::Role(Role::Looking)
    } else if starts("following") {
        Change::Role(Role::Following)
    } else if starts("prospective leader") {
        Change::Role(Role::Prospective)
    } else if starts("established leader") {
        Change::Role(Role::Leading)
    } else if starts("serving clients") {
        Change::Serving(true)
    } else if starts("not serving") {
        Change::Serving(false)
    } else {
        Change::Marker
    }
}

/// A server's role and serving, with since when.
#[derive(Debug, Default)]
struct ServerState {
    role: Option<(Duration, Role, String)>,
    serving: Option<Duration>,
}

impl ServerState {
    fn end_role(&mut self, lanes: &mut Lanes, n: usize, at: Duration) {
        if let Some((from, role, what)) = self.role.take() {
            let title = format!("zk{n} from {} to {}: {what}", secs(from), secs(at));
            lanes.band(LaneId::Server(n), role.class(), from, at, title);
        }
    }

    fn end_serving(&mut self, lanes: &mut Lanes, n: usize, at: Duration) {
        if let Some(from) = self.serving.take() {
            let title = format!("zk{n} serves clients from {} to {}", secs(from), secs(at));
            lanes.band(LaneId::Server(n), "sr", from, at, title);
        }
    }

    fn set_role(&mut self, lanes: &mut Lanes, n: usize, at: Duration, role: Role, what: &str) {
        self.end_role(lanes, n, at);
        if role == Role::Down {
            self.end_serving(lanes, n, at);
        }
        self.role = Some((at, role, what.to_owned()));
    }
}

/// The server lanes from the ensemble's log and the faults that crashed or restarted them.
fn draw_servers(lanes: &mut Lanes, lines: &[ServerLine], faults: Vec<ServerFault>) {
    let mut changes: Vec<(Duration, usize, Change, String)> = Vec::new();
    for l in lines {
        match (l.at, l.server) {
            (Some(at), Some(n)) => changes.push((at, n, classify(&l.what), l.line.clone())),
            (at, _) => lanes.point(LaneId::Faults, "m", at.unwrap_or_default(), &l.line),
        }
    }
    for (at, n, up) in faults {
        let what = if up {
            "restarted by a fault"
        } else {
            "crashed by a fault"
        };
        changes.push((
            at,
            n,
            Change::Fault(up),
            format!("{} zk{n}: {what}", secs(at)),
        ));
    }
    changes.sort_by_key(|c| (c.0, c.1));
    let mut states: BTreeMap<usize, ServerState> = BTreeMap::new();
    for (at, n, change, line) in changes {
        let s = states.entry(n).or_default();
        let what = line.split_once(": ").map_or(line.as_str(), |(_, w)| w);
        match change {
            Change::Role(role) => s.set_role(lanes, n, at, role, what),
            Change::Serving(true) => {
                if s.serving.is_none() {
                    s.serving = Some(at);
                }
            }
            Change::Serving(false) => s.end_serving(lanes, n, at),
            Change::Fault(up) => {
                let down = matches!(s.role, Some((_, Role::Down, _)));
                if up == down {
                    let role = if up { Role::Started } else { Role::Down };
                    s.set_role(lanes, n, at, role, what);
                }
                lanes.point(LaneId::Server(n), "mf", at, &line);
            }
            Change::Marker => lanes.point(LaneId::Server(n), "m", at, &line),
        }
    }
    let end = lanes.end();
    for (n, s) in &mut states {
        s.end_role(lanes, *n, end);
        s.end_serving(lanes, *n, end);
    }
}

// ---------------------------------------------------------------------------------------
// HTML

/// `s` with `& < > " '` escaped (and newlines as character references, for tooltips).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            _ => out.push(ch),
        }
    }
    out
}

const STYLE: &str = r#"<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 6px}
h2{font-size:15px;margin:18px 0 6px}
.pass,.fail{color:#fff;padding:1px 7px;border-radius:3px;font-size:13px;vertical-align:middle}
.pass{background:#2a7a3a}.fail{background:#c0262d}
.meta{color:#444;margin:2px 0}
.zoom{margin:8px 0}
.zoom button{font-size:12px;margin-right:3px}
.legend{margin:6px 0;font-size:12px;color:#333}
.legend b{display:inline-block;width:60px;font-weight:600}
.legend span{display:inline-block;margin-right:12px;white-space:nowrap}
.vi{background:#dc2626}
.legend i{display:inline-block;width:14px;height:10px;vertical-align:middle;margin-right:4px;border:1px solid #0002}
.scroll{overflow-x:auto;border:1px solid #bbb}
#chart{position:relative;width:100%;min-width:640px}
.row{display:flex;border-bottom:1px solid #eee}
.lab{flex:none;box-sizing:border-box;width:68px;padding:0 4px;position:sticky;left:0;z-index:3;background:#f6f6f6;border-right:1px solid #bbb;font:12px/22px monospace}
.tr{flex:1;position:relative;height:22px}
.cl .tr{height:40px}.cl .lab{line-height:40px}
.sv .tr{height:26px}.sv .lab{line-height:26px}
.ax .tr{height:18px}.ax .lab{line-height:18px;color:#777}
.ax span{position:absolute;top:1px;transform:translateX(-50%);font-size:11px;color:#555;white-space:nowrap}
.ax span:first-child{transform:none;padding-left:2px}.ax span.e{transform:translateX(-100%);padding-right:2px}
.tr i{position:absolute;display:block;min-width:1px;z-index:1;top:0;height:100%}
.tr i.fb{z-index:0}
.fp{background:#f9731633}.fc{background:#ef444430}.fz{background:#0ea5e933}.fl{background:#eab30833}.fo{background:#a855f733}.fx{background:#64748b33}
.s-ok{background:#22c55e}.s-ro{background:#14b8a6}.s-try{background:#93c5fd}.s-sus{background:#f59e0b}.s-lost{background:#dc2626}.s-end{background:#374151}.s-other{background:#a3a3a3}
.tr .s-ok,.tr .s-ro,.tr .s-try,.tr .s-sus,.tr .s-lost,.tr .s-end,.tr .s-other{top:2px;height:5px}
.h{background:#2563eb}.hr{background:#93c5fd}.hw{background:#1e40af}.hl{background:#0891b2}
.ld{background:#9333ea}.pm{background:#14b8a6}.bi{background:#d97706}
.bw{background:repeating-linear-gradient(90deg,#d9770666 0 2px,transparent 2px 4px)}
.tr .h,.tr .hr,.tr .hw,.tr .hl,.tr .ld,.tr .pm,.tr .bi,.tr .bw{top:10px;height:9px}
.kl{background:#be123c}.mu{background:#f59e0b}
.pz{background:repeating-linear-gradient(45deg,#0ea5e955 0 3px,transparent 3px 6px)}
.dn{background:repeating-linear-gradient(45deg,#11182766 0 3px,transparent 3px 6px)}
.wa{background:#16a34a}.wr{background:#dc2626}
.tr .wa,.tr .wr{top:22px;height:9px;width:2px;margin-left:-1px}
.tr .wr{width:3px;z-index:2}
.x{background:#111}.st{background:#0d9488}.lo{background:#f97316}
.tr .x,.tr .st,.tr .lo,.tr .kl{width:3px;margin-left:-1px;z-index:2}
.tr .st{top:0;height:9px}.tr .lo{top:8px;height:13px}
.m{background:#6b7280}.mf{background:#b45309}
.tr .m,.tr .mf,.tr .mu{width:5px;height:5px;margin-left:-2px;border-radius:50%;top:auto;bottom:2px;z-index:2}
.fa .tr .mf{top:8px;bottom:auto;width:7px;height:7px;margin-left:-3px}
.r-dn{background:repeating-linear-gradient(45deg,#11182799 0 3px,transparent 3px 6px)}.r-up{background:#d1d5db}.r-lk{background:#facc15}.r-fw{background:#86efac}.r-pl{background:#4ade80}.r-ld{background:#15803d}
.tr .r-dn,.tr .r-up,.tr .r-lk,.tr .r-fw,.tr .r-pl,.tr .r-ld{top:2px;height:12px}
.sr{background:#1e3a8a}.tr .sr{top:15px;height:3px}
.ov{position:absolute;top:0;bottom:0;left:68px;right:0;pointer-events:none;z-index:2}
.ov b{position:absolute;top:0;bottom:0;width:1px;background:#0000000f}
.ov i{position:absolute;top:0;bottom:0;width:3px;margin-left:-1px;background:#dc2626cc;pointer-events:auto}
ol.v li{color:#991b1b;font-family:monospace;white-space:pre-wrap}
table.sched{border-collapse:collapse;font:12px monospace}
table.sched td{padding:1px 10px 1px 0}
pre{font-size:12px;background:#f8f8f8;padding:8px;overflow-x:auto}
</style>
"#;

const SCRIPT: &str = "<script>\n\
function zoom(k){document.getElementById('chart').style.width=(100*k)+'%';}\n\
</script>\n";

/// The document head.
fn head(out: &mut String, scenario: &Scenario, outcome: &Outcome) {
    let verdict = if outcome.passed() { "pass" } else { "FAIL" };
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<title>{} seed {} {verdict}</title>",
        esc(&scenario.name),
        outcome.seed
    );
    out.push_str(STYLE);
    out.push_str("</head>\n<body>\n");
}

/// The page header: the scenario, the seed, the verdict, coverage.
fn header(out: &mut String, scenario: &Scenario, outcome: &Outcome) {
    let verdict = if outcome.passed() {
        "<span class=\"pass\">PASS</span>".to_owned()
    } else {
        format!(
            "<span class=\"fail\">FAIL: {} violation{}</span>",
            outcome.violations.len(),
            if outcome.violations.len() == 1 {
                ""
            } else {
                "s"
            }
        )
    };
    let _ = writeln!(
        out,
        "<h1>{} &middot; seed {} {verdict}</h1>",
        esc(&scenario.name),
        outcome.seed
    );
    let roles: Vec<String> = scenario
        .workloads
        .iter()
        .map(|w| format!("{} {} on {}", w.count, w.role.name(), w.path))
        .collect();
    let _ = writeln!(
        out,
        "<div class=\"meta\">{} servers (tick {} ms), {} clients ({}), session timeout {} ms, \
         latency {}..{} ms, loss {}, run {} s</div>",
        scenario.servers,
        scenario.tick.as_millis(),
        scenario.client_count(),
        esc(&roles.join("; ")),
        scenario.session_timeout.as_millis(),
        scenario.latency.0.as_millis(),
        scenario.latency.1.as_millis(),
        scenario.loss,
        scenario.duration.as_secs()
    );
    let _ = writeln!(
        out,
        "<div class=\"meta\">coverage: {}</div>",
        esc(&outcome.coverage.to_string())
    );
    let _ = writeln!(
        out,
        "<div class=\"meta\">{} acquisitions; fenced writes {} accepted, {} rejected</div>",
        outcome.acquisitions, outcome.writes.0, outcome.writes.1
    );
}

/// What the colours mean.
fn legend(out: &mut String) {
    const GROUPS: [(&str, &[(&str, &str)]); 4] = [
        (
            "session",
            &[
                ("s-try", "connecting"),
                ("s-ok", "connected"),
                ("s-ro", "read-only"),
                ("s-sus", "suspended"),
                ("s-lost", "lost/expired"),
                ("s-end", "closed"),
                ("s-other", "other"),
            ],
        ),
        (
            "client",
            &[
                ("h", "lock held"),
                ("hr", "read lock"),
                ("hw", "write lock"),
                ("hl", "lease"),
                ("ld", "leading"),
                ("pm", "party member"),
                ("bw", "entering barrier"),
                ("bi", "in barrier"),
                ("lo", "lost"),
                ("wa", "write accepted"),
                ("wr", "write rejected"),
                ("st", "process start"),
                ("x", "crash"),
                ("dn", "host down"),
                ("kl", "session killed"),
                ("pz", "paused"),
                ("m", "other event"),
                ("mu", "uncertain/failed"),
            ],
        ),
        (
            "server",
            &[
                ("r-up", "started"),
                ("r-lk", "looking"),
                ("r-fw", "following"),
                ("r-pl", "prospective leader"),
                ("r-ld", "leader"),
                ("sr", "serving"),
                ("r-dn", "down"),
            ],
        ),
        (
            "fault",
            &[
                ("mf", "fault record"),
                ("fp", "partition/split"),
                ("fc", "crash"),
                ("fz", "pause"),
                ("fl", "latency"),
                ("fo", "loss"),
                ("fx", "other"),
                ("vi", "violation"),
            ],
        ),
    ];
    out.push_str("<div class=\"legend\">\n");
    for (group, items) in GROUPS {
        let _ = write!(out, "<div><b>{group}</b> ");
        for (class, what) in items {
            let _ = write!(out, "<span><i class=\"{class}\"></i>{what}</span>");
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n");
}

/// The tick step for an axis `end` long: about a dozen labels.
fn tick_step(end: Duration) -> Duration {
    const STEPS_MS: [u64; 15] = [
        100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        1_800_000, 3_600_000,
    ];
    let ms = end.as_millis();
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|&s| ms / u128::from(s) <= 15)
        .unwrap_or(3_600_000);
    Duration::from_millis(step)
}

/// The chart: the axis, every lane, grid lines and violations.
fn chart(out: &mut String, scenario: &Scenario, lanes: &Lanes, violations: &[Violation]) {
    out.push_str(
        "<div class=\"zoom\">zoom: <button onclick=\"zoom(1)\">1&times;</button>\
         <button onclick=\"zoom(2)\">2&times;</button><button onclick=\"zoom(4)\">4&times;</button>\
         <button onclick=\"zoom(8)\">8&times;</button><button onclick=\"zoom(16)\">16&times;</button>\
         <button onclick=\"zoom(32)\">32&times;</button></div>\n",
    );
    out.push_str("<div class=\"scroll\"><div id=\"chart\">\n");
    let step = tick_step(lanes.end());
    let mut ticks = Vec::new();
    let mut t = Duration::ZERO;
    while t <= lanes.end() {
        ticks.push(t);
        t += step;
    }
    out.push_str("<div class=\"row ax\"><div class=\"lab\">time</div><div class=\"tr\">");
    for t in &ticks {
        let label = if step < Duration::from_secs(1) {
            format!("{:.1} s", t.as_secs_f64())
        } else {
            format!("{} s", t.as_secs())
        };
        let at = lanes.scale.units(*t);
        // A label at the right end would stick out of the chart: right-align it.
        let class = if at >= FULL - FULL / 40 {
            " class=\"e\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<span{class} style=\"left:{}\">{label}</span>",
            pct(at)
        );
    }
    out.push_str("</div></div>\n");
    let roles = client_roles(scenario);
    for (id, lane) in &lanes.map {
        lane_row(out, lanes.scale, *id, lane, &roles);
    }
    out.push_str("<div class=\"ov\">");
    for t in &ticks {
        let _ = write!(out, "<b style=\"left:{}\"></b>", pct(lanes.scale.units(*t)));
    }
    for v in violations.iter().take(MAX_VIOLATIONS) {
        let _ = write!(
            out,
            "<i style=\"left:{}\" title=\"{}\"></i>",
            pct(lanes.scale.units(v.at)),
            esc(&v.to_string())
        );
    }
    out.push_str("</div>\n</div></div>\n");
}

/// Each client's role and path, for the lane labels' tooltips.
fn client_roles(scenario: &Scenario) -> BTreeMap<usize, String> {
    let mut roles = BTreeMap::new();
    let mut c = 0;
    for w in &scenario.workloads {
        for _ in 0..w.count {
            c += 1;
            roles.insert(c, format!("{} on {}", w.role.name(), w.path));
        }
    }
    roles
}

/// One lane: its label, bands, then markers.
fn lane_row(
    out: &mut String,
    scale: Scale,
    id: LaneId,
    lane: &Lane,
    roles: &BTreeMap<usize, String>,
) {
    let name = id.name();
    let title = match id {
        LaneId::Faults => "faults, runner notes, events naming no host".to_owned(),
        LaneId::Client(c) => format!("client {name}: {}", roles.get(&c).map_or("?", |r| r)),
        LaneId::Server(_) => format!("server {name}"),
    };
    let _ = write!(
        out,
        "<div class=\"row {}\"><div class=\"lab\" title=\"{}\">{}</div><div class=\"tr\">",
        id.class(),
        esc(&title),
        esc(&name)
    );
    for b in &lane.bands {
        let from = scale.units(b.from);
        let to = scale.units(b.to);
        let _ = write!(
            out,
            "<i class=\"{}\" style=\"left:{};width:{}\" title=\"{}\"></i>",
            b.class,
            pct(from),
            pct(to - from),
            esc(&b.title)
        );
    }
    for ((_, class), p) in &lane.points {
        let mut title = p.lines.join("\n");
        if p.more > 0 {
            let _ = write!(title, "\n... and {} more", p.more);
        }
        let _ = write!(
            out,
            "<i class=\"{class}\" style=\"left:{}\" title=\"{}\"></i>",
            pct(scale.units(p.at)),
            esc(&title)
        );
    }
    out.push_str("</div></div>\n");
}

/// The violations as a list.
fn violations(out: &mut String, violations: &[Violation]) {
    if violations.is_empty() {
        out.push_str("<h2>Violations</h2>\n<p>None.</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<h2>Violations ({})</h2>\n<ol class=\"v\">",
        violations.len()
    );
    for v in violations.iter().take(MAX_VIOLATIONS) {
        let _ = writeln!(out, "<li>{}</li>", esc(&v.to_string()));
    }
    if violations.len() > MAX_VIOLATIONS {
        let _ = writeln!(
            out,
            "<li>... and {} more</li>",
            violations.len() - MAX_VIOLATIONS
        );
    }
    out.push_str("</ol>\n");
}

/// One scheduled fault as a table row's cells.
fn fault_cells(f: &Fault) -> [String; 4] {
    let mut what = f.kind.name().to_owned();
    if let Some(t) = f.target {
        let _ = write!(what, " {t}");
    }
    match f.direction {
        Direction::Both => {}
        Direction::Outbound => what.push_str(" (outbound)"),
        Direction::Inbound => what.push_str(" (inbound)"),
    }
    let mut extra = String::new();
    if let Some(l) = f.latency {
        let _ = write!(extra, "{} ms", l.as_millis());
    }
    if let Some(r) = f.rate {
        let _ = write!(extra, "rate {r}");
    }
    let lasts = f
        .lasts
        .map(|l| format!("for {:.3} s", l.as_secs_f64()))
        .unwrap_or_default();
    [format!("+{:.3} s", f.at.as_secs_f64()), what, extra, lasts]
}

/// The fault schedule the seed ran.
fn schedule(out: &mut String, faults: &[Fault]) {
    let _ = writeln!(
        out,
        "<h2>Fault schedule ({})</h2>\n<p class=\"meta\">Times from the start of the workload \
         (the chart's clock starts with the simulation).</p>",
        faults.len()
    );
    if faults.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str("<table class=\"sched\">\n");
    for f in faults {
        out.push_str("<tr>");
        for cell in fault_cells(f) {
            let _ = write!(out, "<td>{}</td>", esc(&cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The text trace, folded away.
fn trace(out: &mut String, trace: &str) {
    let total = trace.lines().count();
    let _ = writeln!(
        out,
        "<h2>Trace</h2>\n<details><summary>{total} lines</summary><pre>"
    );
    for line in trace.lines().take(MAX_TRACE_LINES) {
        out.push_str(&esc(line));
        out.push('\n');
    }
    if total > MAX_TRACE_LINES {
        let _ = writeln!(out, "... and {} more lines", total - MAX_TRACE_LINES);
    }
    out.push_str("</pre></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_lines_defensively() {
        let l = parse_server_line("   1234 ms zk2: established leader of epoch 3 (quorum)");
        assert_eq!(l.at, Some(Duration::from_millis(1234)));
        assert_eq!(l.server, Some(2));
        assert_eq!(classify(&l.what), Change::Role(Role::Leading));
        let l = parse_server_line("garbage");
        assert_eq!((l.at, l.server), (None, None));
        let l = parse_server_line("12 ms zkx: what");
        assert_eq!((l.at, l.server), (Some(Duration::from_millis(12)), None));
    }

    #[test]
    fn reads_hosts_and_durations_from_fault_text() {
        assert_eq!(
            hosts_in("split c1,zk1 | c2,zk2,zk3: 8 links cut for 5.000 s"),
            vec![
                LaneId::Client(1),
                LaneId::Client(2),
                LaneId::Server(1),
                LaneId::Server(2),
                LaneId::Server(3)
            ]
        );
        assert_eq!(
            hosts_in("pause ends: c12's messages flow"),
            vec![LaneId::Client(12)]
        );
        assert_eq!(hosts_in("latency 50 ms on 0x1 links c zk"), vec![]);
        assert_eq!(
            lasts("crash lock-holder = c3 for 5.000 s"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(lasts("crash lock-holder = c3 for -1 s"), None);
        assert_eq!(lasts("crash for"), None);
    }

    #[test]
    fn formats_positions_exactly() {
        assert_eq!(pct(0), "0%");
        assert_eq!(pct(1_000_000), "100%");
        assert_eq!(pct(123_450), "12.345%");
        assert_eq!(pct(5), "0.0005%");
        let s = Scale {
            end: Duration::from_secs(20),
        };
        assert_eq!(s.units(Duration::from_secs(5)), 250_000);
        assert_eq!(s.units(Duration::from_secs(50)), FULL);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href='x'>&\"\n"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&#10;"
        );
    }
}
