//! Linearizability of registers: the `register` clients' operations on each register path
//! must be explainable by one sequential register, each operation taking effect at one
//! instant between its call and its return.
//!
//! Register clients (`role = "register"`, one register per path) record every operation as
//! it is called ([`Event::RegisterCall`]) and as it returns ([`Event::RegisterReturn`]). The
//! checker replays them against the sequential model ([`crate::register::step`]: value and
//! version; a read returns both; a write sets the value and bumps the version; a
//! compare-and-set, or a `multi` of a version check and a write, applies iff the version
//! matches; a create applies iff the node is absent)
//! with the Wing & Gong / Lowe search Porcupine and Knossos use: depth first over which
//! pending operation takes effect next, memoizing every (set of operations taken effect,
//! register state) already explored, so no configuration is explored twice.
//!
//! - A *definite* failure (`BadVersion`, `NoNode`, `NodeExists`) is an output like any other:
//!   the model must have failed the same way at the chosen instant.
//! - An *indeterminate* operation (connection loss, timeout, session expiry, or no return at
//!   all: its host crashed, or the run ended) may take effect at any instant after its call,
//!   or never (it stays open to the end of the history, as Jepsen's `:info`; taking effect
//!   last is the same as never).
//! - Reads are linearizable only after a `sync` (ZooKeeper serves reads from the server's
//!   own tree): local reads are left to the [`monotonic`](super::monotonic) checker, and a
//!   read with no result tells nothing and is dropped.
//!
//! A history that cannot be linearized is a [`Violation`] naming the smallest witness the
//! search has: the operation (client, call and return times, what it returned) that no
//! order of the operations before it can explain, with the register states those orders
//! allow at that point. The search is bounded ([`BUDGET`] configurations per register):
//! past it the verdict is *inconclusive*, reported as a [`Finding`] (neither a pass nor a
//! failure; it says so).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{groups, Finding, Violation};
use crate::history::{Event, Record};
use crate::register::{step, Input, Output, RegisterOp, RegisterResult, RegisterState};
use crate::scenario::{Role, Scenario};

/// How many configurations (set of operations taken effect, state) the search may explore
/// per register before it gives up and calls the history inconclusive.
pub const BUDGET: usize = 400_000;

const CHECKER: &str = "linearizable";

/// One operation, as the search sees it.
#[derive(Debug)]
struct Op<'r> {
    client: usize,
    /// Index of its call record (the order of calls and returns is the records' order).
    call: usize,
    /// Index of its return record; `usize::MAX` if indeterminate (open to the end).
    ret: usize,
    call_at: Duration,
    ret_at: Option<Duration>,
    input: Input,
    /// `None`: indeterminate, any output.
    output: Option<Output>,
    op: &'r RegisterOp,
    result: Option<&'r RegisterResult>,
}

/// Values as numbers (the model's states stay small and cheap to compare).
#[derive(Debug, Default)]
struct Interner<'r> {
    ids: BTreeMap<&'r str, u32>,
    names: Vec<&'r str>,
}

impl<'r> Interner<'r> {
    fn id(&mut self, v: &'r str) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(v, id);
        self.names.push(v);
        id
    }

    fn show(&self, s: RegisterState) -> String {
        match s {
            None => "no node".to_owned(),
            Some((v, version)) => format!(
                "{:?} version {version}",
                self.names.get(v as usize).copied().unwrap_or("?")
            ),
        }
    }
}

/// The register operations of `clients` in `records`, in call order.
fn operations<'r>(
    records: &'r [Record],
    clients: &[usize],
    values: &mut Interner<'r>,
) -> Vec<Op<'r>> {
    let mut ops: Vec<Op<'r>> = Vec::new();
    let mut open: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            Event::RegisterCall { client, op_id, op } if clients.contains(client) => {
                if matches!(op, RegisterOp::Read { synced: false }) {
                    continue;
                }
                let input = match op {
                    RegisterOp::Create { value } => Input::Create(values.id(value)),
                    RegisterOp::Read { .. } => Input::Read,
                    RegisterOp::Write { value } => Input::Write(values.id(value)),
                    RegisterOp::Cas { expected, value } | RegisterOp::Multi { expected, value } => {
                        Input::Cas(*expected, values.id(value))
                    }
                };
                open.insert((*client, *op_id), ops.len());
                ops.push(Op {
                    client: *client,
                    call: i,
                    ret: usize::MAX,
                    call_at: r.at,
                    ret_at: None,
                    input,
                    output: None,
                    op,
                    result: None,
                });
            }
            Event::RegisterReturn {
                client,
                op_id,
                result,
                ..
            } => {
                let Some(k) = open.remove(&(*client, *op_id)) else {
                    continue;
                };
                let op = &mut ops[k];
                op.result = Some(result);
                op.output = match result {
                    RegisterResult::Read(v) => Some(Output::Read(
                        v.as_ref()
                            .map(|(value, version)| (values.id(value), *version)),
                    )),
                    RegisterResult::Written { version } => Some(Output::Written(*version)),
                    RegisterResult::Failed(e) => Some(Output::Failed(*e)),
                    RegisterResult::Indeterminate(_) => None,
                };
                if op.output.is_some() {
                    op.ret = i;
                    op.ret_at = Some(r.at);
                }
            }
            _ => {}
        }
    }
    // A read without a result tells nothing: it may as well never have happened.
    ops.retain(|o| o.output.is_some() || o.input != Input::Read);
    ops
}

/// What the search concluded.
#[derive(Debug)]
enum Verdict {
    Linearizable,
    /// No linearization: the operation no order could take past (the frontier of the
    /// deepest dead end), and the states the orders before it allow there.
    Not {
        blocked: usize,
        states: BTreeSet<RegisterState>,
    },
    Inconclusive,
}

/// A set of operations (which have taken effect).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    /// The first index not in the set.
    fn first_clear(&self) -> usize {
        for (w, word) in self.0.iter().enumerate() {
            if *word != u64::MAX {
                return w * 64 + word.trailing_ones() as usize;
            }
        }
        self.0.len() * 64
    }
}

/// The operations that may take effect next, given those that have (`done`): every one not
/// done called before the earliest return among those not done (definite ones first), and
/// that earliest-returning operation (the frontier), if any.
fn candidates(ops: &[Op<'_>], done: &Bits) -> (Vec<usize>, Option<usize>) {
    let start = done.first_clear();
    let mut frontier = None;
    let mut min_ret = usize::MAX;
    for (i, op) in ops.iter().enumerate().skip(start) {
        if op.call >= min_ret {
            break;
        }
        if !done.get(i) && op.ret < min_ret {
            min_ret = op.ret;
            frontier = Some(i);
        }
    }
    let mut definite = Vec::new();
    let mut open = Vec::new();
    for (i, op) in ops.iter().enumerate().skip(start) {
        if op.call >= min_ret {
            break;
        }
        if !done.get(i) {
            if op.output.is_some() {
                definite.push(i);
            } else {
                open.push(i);
            }
        }
    }
    definite.extend(open);
    (definite, frontier)
}

struct Frame {
    /// The operation whose taking effect led here (`None`: the start).
    applied: Option<usize>,
    /// The state before it.
    before: RegisterState,
    cands: Vec<usize>,
    next: usize,
    frontier: Option<usize>,
}

/// The Wing & Gong / Lowe search with memoization, over `ops` (in call order), from a
/// register with no node, exploring at most `budget` configurations.
fn search(ops: &[Op<'_>], budget: usize) -> Verdict {
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    let mut done = Bits::new(n);
    let mut count = 0usize;
    let mut state: RegisterState = None;
    let mut seen: BTreeSet<(Bits, RegisterState)> = BTreeSet::new();
    // The deepest dead end: its frontier's return index, the frontier, the states there.
    let mut deepest: Option<(usize, usize, BTreeSet<RegisterState>)> = None;
    let (cands, frontier) = candidates(ops, &done);
    let mut stack = vec![Frame {
        applied: None,
        before: None,
        cands,
        next: 0,
        frontier,
    }];
    while let Some(top) = stack.last_mut() {
        if let Some(&i) = top.cands.get(top.next) {
            top.next += 1;
            let Some(after) = step(state, ops[i].input, ops[i].output) else {
                continue;
            };
            done.set(i);
            if !seen.insert((done.clone(), after)) {
                done.clear(i);
                continue;
            }
            if seen.len() > budget {
                return Verdict::Inconclusive;
            }
            count += 1;
            if count == n {
                return Verdict::Linearizable;
            }
            let (cands, frontier) = candidates(ops, &done);
            stack.push(Frame {
                applied: Some(i),
                before: state,
                cands,
                next: 0,
                frontier,
            });
            state = after;
        } else {
            if let Some(f) = top.frontier {
                let depth = ops[f].ret;
                match &mut deepest {
                    Some((d, _, states)) if *d == depth => {
                        states.insert(state);
                    }
                    Some((d, ..)) if *d > depth => {}
                    _ => deepest = Some((depth, f, BTreeSet::from([state]))),
                }
            }
            let Some(frame) = stack.pop() else { break };
            let Some(applied) = frame.applied else { break };
            done.clear(applied);
            count -= 1;
            state = frame.before;
        }
    }
    match deepest {
        Some((_, blocked, states)) => Verdict::Not { blocked, states },
        // Only open operations were left and none could take effect: cannot happen (one
        // that never takes effect is always possible), but say so rather than pass.
        None => Verdict::Not {
            blocked: 0,
            states: BTreeSet::new(),
        },
    }
}

/// The linearizability violations (and inconclusive searches, as findings) in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    check_with_budget(records, scenario, BUDGET)
}

/// [`check`] with the search bounded by `budget` configurations per register.
pub fn check_with_budget(
    records: &[Record],
    scenario: &Scenario,
    budget: usize,
) -> (Vec<Violation>, Vec<Finding>) {
    let mut violations = Vec::new();
    let mut findings = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Register]) {
        let mut values = Interner::default();
        let ops = operations(records, &clients, &mut values);
        match search(&ops, budget) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => findings.push(Finding {
                checker: CHECKER,
                at: super::end_of(records),
                message: format!(
                    "inconclusive: the search over the {} operations on register {path} \
                     explored {budget} configurations without a verdict (neither passed nor \
                     failed)",
                    ops.len()
                ),
            }),
            Verdict::Not { blocked, states } => {
                let o = &ops[blocked];
                let mut allowed: Vec<String> =
                    states.iter().take(6).map(|s| values.show(*s)).collect();
                if states.len() > 6 {
                    allowed.push(format!("{} more", states.len() - 6));
                }
                let result = o
                    .result
                    .map_or_else(|| "nothing".to_owned(), ToString::to_string);
                let before = ops.iter().filter(|p| p.ret < o.call).count();
                violations.push(Violation {
                    checker: CHECKER,
                    at: o.ret_at.unwrap_or(o.call_at),
                    message: format!(
                        "register {path} is not linearizable: c{}'s {} called at {:.6} s \
                         returned {result} at {:.6} s, which no order of the operations \
                         before it allows ({before} completed before its call); there the \
                         register can only be: {}",
                        o.client,
                        o.op,
                        o.call_at.as_secs_f64(),
                        o.ret_at.unwrap_or(o.call_at).as_secs_f64(),
                        if allowed.is_empty() {
                            "(none)".to_owned()
                        } else {
                            allowed.join(" | ")
                        }
                    ),
                });
            }
        }
    }
    (violations, findings)
}

/// Adds the registers' coverage counts to `c`: operations with a verdict, indeterminate
/// ones, compare-and-sets and multis that applied and that did not.
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    let mut cas: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut multi: BTreeSet<(usize, u64)> = BTreeSet::new();
    for r in records {
        match &r.event {
            Event::RegisterCall {
                client,
                op_id,
                op: RegisterOp::Cas { .. },
            } => {
                cas.insert((*client, *op_id));
            }
            Event::RegisterCall {
                client,
                op_id,
                op: RegisterOp::Multi { .. },
            } => {
                multi.insert((*client, *op_id));
            }
            Event::RegisterReturn {
                client,
                op_id,
                result,
                ..
            } => {
                if result.is_indeterminate() {
                    *c.entry("indeterminate register ops").or_default() += 1;
                } else {
                    *c.entry("register ops").or_default() += 1;
                }
                if multi.remove(&(*client, *op_id)) {
                    match result {
                        RegisterResult::Written { .. } => {
                            *c.entry("register multi applied").or_default() += 1;
                        }
                        RegisterResult::Failed(_) => {
                            *c.entry("register multi refused").or_default() += 1;
                        }
                        RegisterResult::Read(_) | RegisterResult::Indeterminate(_) => {}
                    }
                }
                if cas.remove(&(*client, *op_id)) {
                    match result {
                        RegisterResult::Written { .. } => {
                            *c.entry("register cas applied").or_default() += 1;
                        }
                        RegisterResult::Failed(_) => {
                            *c.entry("register cas refused").or_default() += 1;
                        }
                        RegisterResult::Read(_) | RegisterResult::Indeterminate(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
}
