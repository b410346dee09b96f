//! Faults in force: resolving a fault's symbolic target to hosts at the moment it fires,
//! applying it to the turmoil network or hosts, and undoing it when it ends (its `for_s`
//! elapsed, a `heal`, a `restart`).
//!
//! Link cuts are counted per direction, and holds per pair of hosts, so overlapping faults
//! compose: a link stays cut (or held) until every fault that cut (or held) it has ended. When no fault is in force any more the history
//! gets [`Event::Healed`], which starts the liveness window.
//!
//! A `cancel` fault touches neither network nor host: it marks the client in the shared
//! history ([`History::set_cancel`](crate::history::History::set_cancel)), and the client's
//! workload, reading the mark, wraps its recipe calls in timeouts (so it works the same in
//! both backends).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::world::{Host, Takeover, World};
use super::Run;
use crate::ensemble::peer::Role;
use crate::history::Event;
use crate::scenario::{Direction, ExpireMode, Fault, FaultKind, Target};

/// A directed link.
type Link = (Host, Host);

/// How a fault in force ends.
#[derive(Debug, Clone)]
enum Undo {
    /// Uncut these directed links.
    Repair(Vec<Link>),
    /// Restart these crashed hosts.
    Restart(Vec<Host>),
    /// Deliver what these links held (both directions), let client `resume`'s
    /// application run again if it was paused, and thaw the frozen servers `thaw`.
    Release {
        links: Vec<Link>,
        resume: Option<usize>,
        thaw: Vec<u8>,
    },
    /// Put these links' latency back to the scenario's.
    Latency(Vec<Link>),
    /// Put these links' loss back to the scenario's.
    Loss(Vec<Link>),
    /// End `cancel` fault `id` on client `client`: its calls run to the end again.
    Cancel { client: usize, id: u64 },
}

/// The runner's fault state for one seed.
pub(crate) struct Faults {
    /// Draws random targets.
    rng: ChaCha8Rng,
    /// How many faults cut each directed link now.
    cuts: BTreeMap<Link, u32>,
    /// How many faults hold each pair of hosts now (the pair in order).
    holds: BTreeMap<Link, u32>,
    /// Faults in force, by id, with how each ends.
    active: BTreeMap<u64, (FaultKind, Undo)>,
    /// When the faults with a `for_s` end: (time, id).
    due: BTreeSet<(Duration, u64)>,
    next_id: u64,
    /// The hosts a target crashed without a `for_s` (what a later `restart` of it means).
    crashed: BTreeMap<Target, Vec<Host>>,
    /// Hosts crashed and not restarted.
    down: BTreeSet<Host>,
    /// Sessions expired so far (names the helper hosts that expire them).
    expirations: usize,
    /// Expire-by-timeout faults in force: fault id → the session whose expiry ends it.
    until_expired: BTreeMap<u64, i64>,
    /// Whether any fault fired since the last [`Event::Healed`].
    unhealed: bool,
    /// Faults fired, by kind.
    pub(crate) fired: BTreeMap<FaultKind, usize>,
    /// Faults skipped because their target did not exist.
    pub(crate) skipped: usize,
}

impl Faults {
    pub(crate) fn new(rng: ChaCha8Rng) -> Faults {
        Faults {
            rng,
            cuts: BTreeMap::new(),
            holds: BTreeMap::new(),
            active: BTreeMap::new(),
            due: BTreeSet::new(),
            next_id: 0,
            crashed: BTreeMap::new(),
            down: BTreeSet::new(),
            expirations: 0,
            until_expired: BTreeMap::new(),
            unhealed: false,
            fired: BTreeMap::new(),
            skipped: 0,
        }
    }
}

impl<W: World> Run<'_, W> {
    fn record_fault(&self, what: String) {
        self.history
            .record_at(self.world.elapsed(), Event::Fault { what });
    }

    fn servers(&self) -> Vec<Host> {
        (1..=self.scenario.servers).map(Host::Server).collect()
    }

    fn clients(&self) -> Vec<Host> {
        (1..=self.scenario.client_count())
            .map(Host::Client)
            .collect()
    }

    /// The client hosts of the workloads with `role`.
    fn clients_of(&self, role: crate::scenario::Role) -> Vec<Host> {
        let mut hosts = Vec::new();
        let mut client = 0;
        for w in &self.scenario.workloads {
            for _ in 0..w.count {
                client += 1;
                if w.role == role {
                    hosts.push(Host::Client(client));
                }
            }
        }
        hosts
    }

    fn up_servers(&mut self, role: Option<Role>) -> Vec<Host> {
        self.world
            .up_servers(role)
            .into_iter()
            .map(Host::Server)
            .filter(|h| !self.faults.down.contains(h))
            .collect()
    }

    /// The hosts `target` means now (waiting up to the runner's bound for a lock holder,
    /// a leader or a follower to exist), or `None` to skip the fault.
    fn resolve(&mut self, kind: FaultKind, target: Target, end: Duration) -> Option<Vec<Host>> {
        if kind == FaultKind::Restart {
            if let Some(hosts) = self.faults.crashed.remove(&target) {
                return Some(hosts);
            }
        }
        let one = |h: Option<Host>| h.map(|h| vec![h]);
        match target {
            Target::Client(n) => Some(vec![Host::Client(n)]),
            Target::Server(id) => Some(vec![Host::Server(id)]),
            Target::Servers => Some(self.servers()),
            Target::LockHolder => one(self.wait_for(end, |r| {
                r.history.holders().keys().next().map(|&c| Host::Client(c))
            })),
            Target::LeaderCandidate => one(self.wait_for(end, |r| {
                r.history.leaders().keys().next().map(|&c| Host::Client(c))
            })),
            Target::LeaderServer => one(self.wait_for(end, |r| r.world.leader().map(Host::Server))),
            Target::FollowerOf(c) => one(self.wait_for(end, |r| {
                let server = r.history.server(c)?;
                r.world.server_at(c, &server).map(Host::Server)
            })),
            Target::RandomFollower => one(self.wait_for(end, |r| {
                let followers = r.up_servers(Some(Role::Following));
                followers.choose(&mut r.faults.rng).copied()
            })),
            Target::RandomServer => {
                let up = self.up_servers(None);
                one(up.choose(&mut self.faults.rng).copied())
            }
            Target::Waiter => one(self.wait_for(end, |r| {
                let holders = r.history.holders();
                let waiting: Vec<Host> = crate::check::workload_of(r.scenario)
                    .into_iter()
                    .filter(|(c, w)| w.role.holds_lock() && !holders.contains_key(c))
                    .map(|(c, _)| Host::Client(c))
                    .filter(|h| !r.faults.down.contains(h))
                    .collect();
                // A waiter exists only behind a holder.
                if holders.is_empty() {
                    return None;
                }
                waiting.choose(&mut r.faults.rng).copied()
            })),
            Target::RandomClient => {
                let up: Vec<Host> = self
                    .clients()
                    .into_iter()
                    .filter(|h| !self.faults.down.contains(h))
                    .collect();
                one(up.choose(&mut self.faults.rng).copied())
            }
            Target::Role(role) => {
                let of_role = self.clients_of(role);
                let up: Vec<Host> = of_role
                    .into_iter()
                    .filter(|h| !self.faults.down.contains(h))
                    .collect();
                one(up.choose(&mut self.faults.rng).copied())
            }
            Target::Minority => {
                let mut servers = self.servers();
                servers.shuffle(&mut self.faults.rng);
                servers.truncate((servers.len() - 1) / 2);
                Some(servers)
            }
        }
    }

    /// Fires `fault` now; it was due at `planned` (later if its target took a while to
    /// exist). A fault with a `for_s` ends `for_s` after `planned`, not after it fired, so a
    /// schedule's end (and the liveness window after it) holds however long targets took.
    pub(super) fn fire(&mut self, fault: &Fault, planned: Duration, end: Duration) {
        let hosts = match fault.target {
            None => None,
            Some(target) => match self.resolve(fault.kind, target, end) {
                Some(hosts) if !hosts.is_empty() => Some(hosts),
                _ => {
                    self.faults.skipped += 1;
                    self.note(format!(
                        "{} {target} skipped: no such host now",
                        fault.kind.name()
                    ));
                    return;
                }
            },
        };
        let names = hosts
            .as_ref()
            .map(|hs| hs.iter().map(|h| h.name()).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let target = fault
            .target
            .map(|t| format!(" {t} = {names}"))
            .unwrap_or_default();
        let lasts = fault
            .lasts
            .map(|l| format!(" for {:.3} s", l.as_secs_f64()))
            .unwrap_or_default();
        let undo = match fault.kind {
            FaultKind::Heal => {
                self.heal();
                self.record_fault("heal: every link repaired, latency and loss reset".to_owned());
                None
            }
            FaultKind::Partition => {
                let cut = self.partition(hosts.unwrap_or_default(), fault.direction);
                let dir = match fault.direction {
                    Direction::Both => "",
                    Direction::Outbound => " (outbound)",
                    Direction::Inbound => " (inbound)",
                };
                self.record_fault(format!(
                    "partition{target}{dir}: {} links cut{lasts}",
                    cut.len()
                ));
                Some(Undo::Repair(cut))
            }
            FaultKind::Split => {
                let (left, right, cut) = self.split();
                self.record_fault(format!(
                    "split {left} | {right}: {} links cut{lasts}",
                    cut.len()
                ));
                Some(Undo::Repair(cut))
            }
            FaultKind::Crash => {
                let hosts: Vec<Host> = hosts
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|h| !self.faults.down.contains(h))
                    .collect();
                if hosts.is_empty() {
                    self.faults.skipped += 1;
                    self.note(format!("crash{target} skipped: already down"));
                    return;
                }
                self.record_fault(format!("crash{target}{lasts}"));
                for &h in &hosts {
                    self.crash(h);
                }
                if fault.lasts.is_none() {
                    if let Some(t) = fault.target {
                        self.faults.crashed.insert(t, hosts.clone());
                    }
                }
                Some(Undo::Restart(hosts))
            }
            FaultKind::Restart => {
                let hosts = hosts.unwrap_or_default();
                self.record_fault(format!("restart{target}"));
                self.restart(&hosts);
                // The crash this restart undoes is no longer in force.
                let ended: Vec<u64> = self
                    .faults
                    .active
                    .iter()
                    .filter(|(_, (_, u))| {
                        matches!(u, Undo::Restart(hs) if hs.iter().all(|h| hosts.contains(h)))
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in ended {
                    self.faults.active.remove(&id);
                }
                None
            }
            FaultKind::Expire if fault.mode == ExpireMode::Timeout => {
                let Some(Host::Client(c)) = hosts.as_ref().and_then(|h| h.first().copied()) else {
                    return;
                };
                let Some((session, _)) = self.history.session(c).filter(|(id, _)| *id != 0) else {
                    self.faults.skipped += 1;
                    self.note(format!("expire{target} skipped: no session yet"));
                    return;
                };
                let cut = self.partition(vec![Host::Client(c)], Direction::Both);
                self.record_fault(format!(
                    "expire the session {session:#x} of{target} by timeout: {} links cut until \
                     the ensemble expires it{lasts}",
                    cut.len()
                ));
                self.faults
                    .until_expired
                    .insert(self.faults.next_id, session);
                Some(Undo::Repair(cut))
            }
            FaultKind::Lag => {
                let hosts = hosts.unwrap_or_default();
                let peers: Vec<Host> = self
                    .servers()
                    .into_iter()
                    .filter(|h| !hosts.contains(h))
                    .collect();
                let links = self.hold(&hosts, &peers);
                self.record_fault(format!(
                    "lag{target}{lasts}: its {} links to other servers held, clients served",
                    links.len()
                ));
                Some(Undo::Release {
                    links,
                    resume: None,
                    thaw: Vec::new(),
                })
            }
            FaultKind::Expire => {
                let Some(Host::Client(c)) = hosts.as_ref().and_then(|h| h.first().copied()) else {
                    return;
                };
                if !self.expire(c) {
                    self.faults.skipped += 1;
                    self.note(format!("expire{target} skipped: no session yet"));
                    return;
                }
                self.record_fault(format!("expire the session of{target}"));
                self.history
                    .record_at(self.world.elapsed(), Event::Killed { client: c });
                None
            }
            FaultKind::Pause => match hosts.as_deref() {
                Some(&[Host::Client(c), ..]) => {
                    self.history.set_paused(self.world.elapsed(), c, true);
                    let links = self.hold(&[Host::Client(c)], &self.servers());
                    self.record_fault(format!("pause{target}{lasts}: its messages are held"));
                    Some(Undo::Release {
                        links,
                        resume: Some(c),
                        thaw: Vec::new(),
                    })
                }
                Some(servers) if !servers.is_empty() => {
                    // A stop-the-world pause: the servers act on nothing, and what everyone
                    // else sends them waits (as the kernel buffers it for a frozen JVM).
                    let servers = servers.to_vec();
                    let others: Vec<Host> = self
                        .servers()
                        .into_iter()
                        .chain(self.clients())
                        .filter(|h| !servers.contains(h))
                        .collect();
                    let links = self.hold(&servers, &others);
                    let mut thaw = Vec::new();
                    for h in &servers {
                        if let Host::Server(id) = *h {
                            self.world.freeze(id, true);
                            thaw.push(id);
                        }
                    }
                    self.record_fault(format!(
                        "pause{target}{lasts}: the server process freezes, {} links held",
                        links.len()
                    ));
                    Some(Undo::Release {
                        links,
                        resume: None,
                        thaw,
                    })
                }
                _ => return,
            },
            FaultKind::Cancel => {
                let Some(Host::Client(c)) = hosts.as_ref().and_then(|h| h.first().copied()) else {
                    return;
                };
                let (lo, hi) = fault.timeout.unwrap_or_default();
                let id = self.faults.next_id;
                self.history.set_cancel(c, id, fault.timeout);
                self.record_fault(format!(
                    "cancel{target}{lasts}: its recipe calls time out after {} to {} ms",
                    lo.as_millis(),
                    hi.as_millis()
                ));
                Some(Undo::Cancel { client: c, id })
            }
            FaultKind::Hold => {
                let hosts = hosts.unwrap_or_default();
                let others: Vec<Host> = self
                    .servers()
                    .into_iter()
                    .chain(self.clients())
                    .filter(|h| !hosts.contains(h))
                    .collect();
                let links = self.hold(&hosts, &others);
                self.record_fault(format!(
                    "hold{target}{lasts}: messages on {} links held",
                    links.len()
                ));
                Some(Undo::Release {
                    links,
                    resume: None,
                    thaw: Vec::new(),
                })
            }
            FaultKind::Latency => {
                let links = self.links_of(hosts);
                let ms = fault.latency.unwrap_or_default();
                for &(a, b) in &links {
                    self.world.set_latency(a, b, Some(ms));
                }
                self.record_fault(format!(
                    "latency {} ms on {} links{target}{lasts}",
                    ms.as_millis(),
                    links.len()
                ));
                Some(Undo::Latency(links))
            }
            FaultKind::Loss => {
                let links = self.links_of(hosts);
                let rate = fault.rate.unwrap_or_default();
                for &(a, b) in &links {
                    self.world.set_loss(a, b, Some(rate));
                }
                self.record_fault(format!(
                    "loss {rate} on {} links{target}{lasts}",
                    links.len()
                ));
                Some(Undo::Loss(links))
            }
        };
        *self.faults.fired.entry(fault.kind).or_default() += 1;
        self.faults.unhealed = true;
        if let Some(undo) = undo {
            let id = self.faults.next_id;
            self.faults.next_id += 1;
            self.faults.active.insert(id, (fault.kind, undo));
            if let Some(l) = fault.lasts {
                self.faults
                    .due
                    .insert(((planned + l).max(self.world.elapsed()), id));
            }
        }
        self.healed_check();
    }

    /// Undoes every fault whose time is up, and every expire-by-timeout fault whose session
    /// the ensemble has expired.
    pub(super) fn undo_due(&mut self) {
        if !self.faults.until_expired.is_empty() {
            let expired: Vec<u64> = self
                .faults
                .until_expired
                .iter()
                .filter(|(_, s)| self.history.session_ended(**s))
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                self.faults.until_expired.remove(&id);
                if let Some((kind, undo)) = self.faults.active.remove(&id) {
                    self.undo(kind, undo);
                }
                self.healed_check();
            }
        }
        let now = self.world.elapsed();
        while let Some(&(at, id)) = self.faults.due.first() {
            if at > now {
                break;
            }
            self.faults.due.pop_first();
            if let Some((kind, undo)) = self.faults.active.remove(&id) {
                self.undo(kind, undo);
            }
            self.healed_check();
        }
    }

    fn undo(&mut self, kind: FaultKind, undo: Undo) {
        match undo {
            Undo::Repair(links) => {
                for link in &links {
                    self.uncut(link);
                }
                self.record_fault(format!(
                    "{} ends: {} links repaired",
                    kind.name(),
                    links.len()
                ));
            }
            Undo::Restart(hosts) => {
                let names: Vec<String> = hosts.iter().map(|h| h.name()).collect();
                self.record_fault(format!("crash ends: restart {}", names.join(",")));
                self.restart(&hosts);
            }
            Undo::Release {
                links,
                resume,
                thaw,
            } => {
                // A server thaws as what was held for it arrives, as a resumed JVM finds
                // its sockets' buffers full.
                for id in thaw {
                    self.world.freeze(id, false);
                }
                for &(a, b) in &links {
                    // Another fault in force still holds the pair (a server's pause ending
                    // while a client it held is paused itself): it stays held.
                    let pair = (a.min(b), a.max(b));
                    if let Some(n) = self.faults.holds.get_mut(&pair) {
                        *n -= 1;
                        if *n > 0 {
                            continue;
                        }
                        self.faults.holds.remove(&pair);
                    }
                    self.world.release(a, b);
                    // Release heals both directions; put back cuts still in force.
                    for link in [(a, b), (b, a)] {
                        if self.faults.cuts.contains_key(&link) {
                            self.world.cut(link.0, link.1);
                        }
                    }
                }
                self.record_fault(format!(
                    "{} ends: {} links deliver what they held",
                    kind.name(),
                    links.len()
                ));
                if let Some(c) = resume {
                    self.history.set_paused(self.world.elapsed(), c, false);
                }
            }
            Undo::Latency(links) => {
                for &(a, b) in &links {
                    self.world.set_latency(a, b, None);
                }
                self.record_fault(format!("latency ends on {} links", links.len()));
            }
            Undo::Loss(links) => {
                for &(a, b) in &links {
                    self.world.set_loss(a, b, None);
                }
                self.record_fault(format!("loss ends on {} links", links.len()));
            }
            Undo::Cancel { client, id } => {
                self.history.set_cancel(client, id, None);
                self.record_fault(format!("cancel ends: c{client}'s calls run to the end"));
            }
        }
    }

    /// Records [`Event::Healed`] when the last fault in force has ended.
    fn healed_check(&mut self) {
        if self.faults.unhealed && self.faults.active.is_empty() {
            self.faults.unhealed = false;
            self.history.record_at(self.world.elapsed(), Event::Healed);
        }
    }

    /// `heal`: every network fault in force ends now (crashes and pauses keep their course).
    fn heal(&mut self) {
        let network: Vec<u64> = self
            .faults
            .active
            .iter()
            .filter(|(_, (_, u))| matches!(u, Undo::Repair(_) | Undo::Latency(_) | Undo::Loss(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in network {
            if let Some((kind, undo)) = self.faults.active.remove(&id) {
                self.undo(kind, undo);
            }
        }
    }

    /// Holds every message between each of `hosts` and each of `others`; returns the links
    /// (one per pair).
    fn hold(&mut self, hosts: &[Host], others: &[Host]) -> Vec<Link> {
        let mut links = Vec::new();
        for &h in hosts {
            for &p in others {
                self.world.hold(h, p);
                *self.faults.holds.entry((h.min(p), h.max(p))).or_default() += 1;
                links.push((h, p));
            }
        }
        links
    }

    fn cut(&mut self, link: Link) -> Link {
        let n = self.faults.cuts.entry(link).or_default();
        *n += 1;
        if *n == 1 {
            self.world.cut(link.0, link.1);
        }
        link
    }

    fn uncut(&mut self, link: &Link) {
        let Some(n) = self.faults.cuts.get_mut(link) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.faults.cuts.remove(link);
            self.world.repair(link.0, link.1);
        }
    }

    /// Cuts `hosts` off from every other host, in `direction`; returns the links cut.
    fn partition(&mut self, hosts: Vec<Host>, direction: Direction) -> Vec<Link> {
        let inside: BTreeSet<Host> = hosts.into_iter().collect();
        let outside: Vec<Host> = self
            .servers()
            .into_iter()
            .chain(self.clients())
            .filter(|h| !inside.contains(h))
            .collect();
        let mut cut = Vec::new();
        for h in &inside {
            for p in &outside {
                if direction != Direction::Inbound {
                    cut.push(self.cut((*h, *p)));
                }
                if direction != Direction::Outbound {
                    cut.push(self.cut((*p, *h)));
                }
            }
        }
        cut
    }

    /// Splits servers (a minority half and a majority half) and clients (half each) and cuts
    /// every link between the halves. Returns the halves' names and the links cut.
    fn split(&mut self) -> (String, String, Vec<Link>) {
        let mut servers = self.servers();
        let mut clients = self.clients();
        servers.shuffle(&mut self.faults.rng);
        clients.shuffle(&mut self.faults.rng);
        let right_servers = servers.split_off(servers.len() / 2);
        let right_clients = clients.split_off(clients.len() / 2);
        let mut left: Vec<Host> = servers.into_iter().chain(clients).collect();
        let mut right: Vec<Host> = right_servers.into_iter().chain(right_clients).collect();
        left.sort();
        right.sort();
        let mut cut = Vec::new();
        for a in &left {
            for b in &right {
                cut.push(self.cut((*a, *b)));
                cut.push(self.cut((*b, *a)));
            }
        }
        let names = |hs: &[Host]| hs.iter().map(|h| h.name()).collect::<Vec<_>>().join(",");
        (names(&left), names(&right), cut)
    }

    /// The links (both directions) between `hosts` and every other host; every link when
    /// there is no target.
    fn links_of(&self, hosts: Option<Vec<Host>>) -> Vec<Link> {
        let all: Vec<Host> = self.servers().into_iter().chain(self.clients()).collect();
        let from = hosts.unwrap_or_else(|| all.clone());
        let mut links = BTreeSet::new();
        for a in &from {
            for b in &all {
                if a != b {
                    links.insert((*a, *b));
                    links.insert((*b, *a));
                }
            }
        }
        links.into_iter().collect()
    }

    fn crash(&mut self, host: Host) {
        self.faults.down.insert(host);
        self.world.crash(host);
        if let Host::Client(c) = host {
            self.history
                .record_at(self.world.elapsed(), Event::Crashed { client: c });
        }
    }

    fn restart(&mut self, hosts: &[Host]) {
        for &host in hosts {
            let was_down = self.faults.down.remove(&host);
            // A running client restarted in place loses its beliefs too.
            if let (Host::Client(c), false) = (host, was_down) {
                self.history
                    .record_at(self.world.elapsed(), Event::Crashed { client: c });
            }
            self.world.restart(host);
        }
    }

    /// Expires client `c`'s session the way Curator's `KillSession` does: a helper host
    /// resumes the session (the server moves it to the new connection) and closes it.
    fn expire(&mut self, c: usize) -> bool {
        let Some((session, password)) = self.history.session(c).filter(|(id, _)| *id != 0) else {
            return false;
        };
        self.faults.expirations += 1;
        let takeover = Takeover {
            name: format!("x{}", self.faults.expirations),
            session,
            password,
            // Seeded from the run (an unseeded client's seed depends on the process).
            seed: self.faults.rng.random(),
            session_timeout: self.scenario.session_timeout,
            history: self.history.clone(),
        };
        self.world.expire(takeover);
        true
    }
}
