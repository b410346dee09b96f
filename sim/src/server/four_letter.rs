//! Four-letter words: when the first four bytes of a connection spell a known command instead
//! of a frame length, the server answers it as text and closes the connection
//! (`ruok`, `srvr`, `stat`, `mntr`, `cons`, `dump`, `envi`, `conf`, `isro`, `wchs`).
//!
//! The texts follow ZooKeeper's layout closely enough for scripts that grep them
//! (`imok`, `Mode: standalone`, `zk_server_state`...); the numbers are the simulation's.

use std::fmt::Write as _;

use super::core::Core;

/// The version string the server reports.
pub const VERSION: &str = concat!("3.8.4-zkit-sim-", env!("CARGO_PKG_VERSION"));

/// The known commands.
pub const COMMANDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "cons", "dump", "envi", "conf", "isro", "wchs",
];

/// The command spelled by a connection's first four bytes, if any.
pub fn command(first: &[u8; 4]) -> Option<&'static str> {
    COMMANDS.iter().copied().find(|c| c.as_bytes() == first)
}

impl Core {
    /// The text answering a four-letter word.
    pub(crate) fn four_letter(&self, cmd: &str) -> String {
        let mut out = String::new();
        match cmd {
            "ruok" => out.push_str("imok"),
            "isro" => out.push_str(if self.is_read_only() { "ro" } else { "rw" }),
            "srvr" => self.srvr(&mut out),
            "stat" => {
                let _ = writeln!(out, "Zookeeper version: {VERSION}");
                out.push_str("Clients:\n");
                self.cons(&mut out);
                out.push('\n');
                self.srvr_body(&mut out);
            }
            "cons" => {
                self.cons(&mut out);
                out.push('\n');
            }
            "mntr" => self.mntr(&mut out),
            "dump" => self.dump(&mut out),
            "envi" => {
                out.push_str("Environment:\n");
                let _ = writeln!(out, "zookeeper.version={VERSION}");
                out.push_str("host.name=zkit-sim\n");
                out.push_str("os.name=simulation\n");
            }
            "conf" => self.conf(&mut out),
            "wchs" => {
                let _ = writeln!(
                    out,
                    "{} connections watching {} paths\nTotal watches:{}",
                    self.connections.len(),
                    self.watches.path_count(),
                    self.watches.watch_count()
                );
            }
            _ => {}
        }
        out
    }

    /// The server's state as `srvr` and `mntr` name it (`ZooKeeperServer.getState`).
    fn mode(&self) -> &'static str {
        if self.is_read_only() {
            "read-only"
        } else {
            "standalone"
        }
    }

    fn srvr(&self, out: &mut String) {
        let _ = writeln!(out, "Zookeeper version: {VERSION}");
        self.srvr_body(out);
    }

    fn srvr_body(&self, out: &mut String) {
        let _ = writeln!(out, "Latency min/avg/max: 0/0.0/0");
        let _ = writeln!(out, "Received: {}", self.packets_received);
        let _ = writeln!(out, "Sent: {}", self.packets_sent);
        let _ = writeln!(out, "Connections: {}", self.connections.len());
        let _ = writeln!(out, "Outstanding: 0");
        let _ = writeln!(out, "Zxid: 0x{:x}", self.tree.last_zxid());
        let _ = writeln!(out, "Mode: {}", self.mode());
        let _ = writeln!(out, "Node count: {}", self.tree.node_count());
    }

    fn cons(&self, out: &mut String) {
        for c in self.connections.values() {
            let _ = writeln!(
                out,
                " /{}[1](queued=0,recved={},sent={},sid=0x{:x},lzxid=0x{:x})",
                c.peer, c.received, c.sent, c.session_id, c.last_zxid
            );
        }
    }

    fn mntr(&self, out: &mut String) {
        let ephemerals: usize = self.tree.all_ephemerals().values().map(|s| s.len()).sum();
        let data_size: usize = self
            .tree
            .nodes()
            .iter()
            .map(|(k, n)| k.len() + n.data.len())
            .sum();
        let rows: [(&str, String); 12] = [
            ("zk_version", VERSION.to_owned()),
            ("zk_server_state", self.mode().to_owned()),
            ("zk_packets_received", self.packets_received.to_string()),
            ("zk_packets_sent", self.packets_sent.to_string()),
            (
                "zk_num_alive_connections",
                self.connections.len().to_string(),
            ),
            ("zk_outstanding_requests", "0".to_owned()),
            ("zk_znode_count", self.tree.node_count().to_string()),
            ("zk_watch_count", self.watches.watch_count().to_string()),
            ("zk_ephemerals_count", ephemerals.to_string()),
            ("zk_approximate_data_size", data_size.to_string()),
            (
                "zk_global_sessions",
                self.sessions.sessions().len().to_string(),
            ),
            ("zk_last_zxid", format!("0x{:x}", self.tree.last_zxid())),
        ];
        for (k, v) in rows {
            let _ = writeln!(out, "{k}\t{v}");
        }
    }

    fn dump(&self, out: &mut String) {
        out.push_str("SessionTracker dump:\n");
        let _ = writeln!(out, "Global Sessions({}):", self.sessions.sessions().len());
        for (id, s) in self.sessions.sessions() {
            let _ = writeln!(out, "0x{id:x}\t{}ms", s.timeout_ms);
        }
        out.push_str("ephemeral nodes dump:\n");
        let _ = writeln!(
            out,
            "Sessions with Ephemerals ({}):",
            self.tree.all_ephemerals().len()
        );
        for (id, paths) in self.tree.all_ephemerals() {
            let _ = writeln!(out, "0x{id:x}:");
            for p in paths {
                let _ = writeln!(out, "\t{p}");
            }
        }
        out.push_str("Connections dump:\n");
        let _ = writeln!(out, "Connections: {}", self.connections.len());
    }

    fn conf(&self, out: &mut String) {
        let c = &self.config;
        let _ = writeln!(out, "clientPort={}", c.client_port);
        let _ = writeln!(out, "dataDir=/dev/null");
        let _ = writeln!(out, "tickTime={}", c.tick_time.as_millis());
        let _ = writeln!(out, "maxClientCnxns=0");
        let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout_ms());
        let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout_ms());
        let _ = writeln!(out, "serverId={}", c.server_id);
    }
}
