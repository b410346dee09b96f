//! Client throughput and CPU benchmark (issue 3; the sim-server row is issue 4).
//!
//! One run starts one real standalone ZooKeeper 3.8 (`zkit_tests::ZkServer`, a JVM in its
//! own process) and one zkit-sim server (this binary re-executed with `--serve-sim`, so the
//! simulated server's CPU is not counted as the client's), then, against each server and for
//! each client (zkit, and the `zookeeper-client` crate), measures:
//!
//! - sequential getData and setData (one request at a time),
//! - pipelined getData, setData, create and delete (a fixed number of requests, a fixed
//!   number in flight),
//!
//! reporting requests per second and the client process's CPU time per request (user and
//! sys, from `getrusage(RUSAGE_SELF)` around each phase; the servers run in other processes).
//! Both clients run on the same current-thread tokio runtime and are driven the same way: a
//! `FuturesUnordered` window of request futures, refilled as replies arrive.
//!
//! ```sh
//! cargo bench -p zkit-tests --features bench-peers --bench client
//! # options (after `--`): --pipelined N --in-flight N --sequential N --warmup N
//! #                       --data-size N --servers real,sim --clients zkit,peer
//! #                       --real-connect HOST:PORT (an already running ZooKeeper)
//! ```
//!
//! Client `zkit-tls` is zkit over TLS (the real server only): with it in `--clients`, the
//! real ZooKeeper is started with a TLS client port beside the plain one (the Netty
//! connection factory then serves both, so plain and TLS clients meet the same server
//! code), with a throwaway CA and server certificate made here (rcgen). TLS against plain
//! TCP, in one run:
//!
//! ```sh
//! cargo bench -p zkit-tests --features bench-peers --bench client -- \
//!     --servers real --clients zkit-tls,zkit
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

/// What one run measures.
#[derive(Debug, Clone)]
struct Options {
    pipelined: usize,
    in_flight: usize,
    sequential: usize,
    warmup: usize,
    data_size: usize,
    servers: Vec<String>,
    clients: Vec<String>,
    /// Use this already running ZooKeeper as the real server instead of starting one.
    real_connect: Option<String>,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            pipelined: 200_000,
            in_flight: 50_000,
            sequential: 20_000,
            warmup: 20_000,
            data_size: 100,
            servers: vec!["real".into(), "sim".into()],
            clients: vec!["zkit".into(), "peer".into()],
            real_connect: None,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = |name: &str| -> usize {
                it.next()
                    .and_then(|v| v.replace('_', "").parse().ok())
                    .unwrap_or_else(|| panic!("{name} needs a number"))
            };
            match a.as_str() {
                "--pipelined" => o.pipelined = num(a),
                "--in-flight" => o.in_flight = num(a),
                "--sequential" => o.sequential = num(a),
                "--warmup" => o.warmup = num(a),
                "--data-size" => o.data_size = num(a),
                "--real-connect" => o.real_connect = it.next().cloned(),
                "--servers" | "--clients" => {
                    let list = it
                        .next()
                        .unwrap_or_else(|| panic!("{a} needs a list"))
                        .split(',')
                        .map(str::to_owned)
                        .collect();
                    if a == "--servers" {
                        o.servers = list;
                    } else {
                        o.clients = list;
                    }
                }
                // `cargo bench` passes `--bench`; a filter may follow. Ignore the rest.
                _ => {}
            }
        }
        o.in_flight = o.in_flight.clamp(1, o.pipelined.max(1));
        o
    }
}

/// CPU time of this whole process (every thread), user and system.
fn cpu_now() -> (Duration, Duration) {
    // SAFETY: getrusage only writes the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// One measured phase.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    ops: usize,
    wall: Duration,
    user: Duration,
    sys: Duration,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn user_us(&self) -> f64 {
        self.user.as_secs_f64() * 1e6 / self.ops as f64
    }
    fn sys_us(&self) -> f64 {
        self.sys.as_secs_f64() * 1e6 / self.ops as f64
    }
    fn cpu_us(&self) -> f64 {
        self.user_us() + self.sys_us()
    }
    fn add(self, o: Sample) -> Sample {
        Sample {
            ops: self.ops + o.ops,
            wall: self.wall + o.wall,
            user: self.user + o.user,
            sys: self.sys + o.sys,
        }
    }
}

async fn measure<F: Future<Output = ()>>(ops: usize, f: F) -> Sample {
    let (u0, s0) = cpu_now();
    let t0 = Instant::now();
    f.await;
    let wall = t0.elapsed();
    let (u1, s1) = cpu_now();
    Sample {
        ops,
        wall,
        user: u1 - u0,
        sys: s1 - s0,
    }
}

/// Runs `total` requests made by `make`, at most `window` of them in flight.
async fn pipeline<Fut, T, E>(total: usize, window: usize, mut make: impl FnMut(usize) -> Fut)
where
    Fut: Future<Output = Result<T, E>>,
    E: Debug,
{
    let mut in_flight = FuturesUnordered::new();
    let mut next = 0;
    while next < total.min(window) {
        in_flight.push(make(next));
        next += 1;
    }
    while let Some(r) = in_flight.next().await {
        if let Err(e) = r {
            panic!("request failed: {e:?}");
        }
        if next < total {
            in_flight.push(make(next));
            next += 1;
        }
    }
}

/// Runs `total` requests one after another.
async fn sequential<Fut, T, E>(total: usize, mut make: impl FnMut(usize) -> Fut)
where
    Fut: Future<Output = Result<T, E>>,
    E: Debug,
{
    for i in 0..total {
        if let Err(e) = make(i).await {
            panic!("request failed: {e:?}");
        }
    }
}

/// The phases, in the order they run and are reported.
const PHASES: [&str; 6] = [
    "sequential get",
    "sequential set",
    "pipelined get",
    "pipelined set",
    "pipelined create",
    "pipelined delete",
];

/// Results of one client against one server, one sample per phase.
type Results = Vec<Sample>;

async fn bench_zkit(connect: &str, tls: Option<zkit::TlsConfig>, o: &Options) -> Results {
    use zkit::{Client, CreateMode};
    let mut builder = Client::builder(connect).session_timeout(Duration::from_secs(30));
    if let Some(tls) = tls.clone() {
        builder = builder.tls(tls);
    }
    let client = builder.connect().await.expect("zkit connects");
    let data = vec![b'x'; o.data_size];
    let (root, node) = if tls.is_some() {
        ("/bench-zkit-tls", "/bench-zkit-tls/node")
    } else {
        ("/bench-zkit", "/bench-zkit/node")
    };
    // (The nodes may exist already when --real-connect reuses a server.)
    for (path, value) in [(root, &b""[..]), (node, &data[..])] {
        match client.create(path, value, CreateMode::Persistent).await {
            Ok(_) | Err(zkit::Error::NodeExists { .. }) => {}
            Err(e) => panic!("create {path}: {e}"),
        }
    }
    let c = &client;
    let data = &data[..];
    // Warm-up: every kind of request (the JVM compiles what it runs; the first client must
    // not pay for the second).
    pipeline(o.warmup, o.in_flight, |_| c.get_data(node)).await;
    sequential(o.warmup / 10, |_| c.set_data(node, data, None)).await;
    pipeline(o.warmup, o.in_flight, |i| async move {
        let path = format!("{root}/w-{i}");
        c.create(&path, data, CreateMode::Persistent).await
    })
    .await;
    pipeline(o.warmup, o.in_flight, |i| async move {
        let path = format!("{root}/w-{i}");
        c.delete(&path, None).await
    })
    .await;

    let mut r = Vec::new();
    r.push(measure(o.sequential, sequential(o.sequential, |_| c.get_data(node))).await);
    r.push(
        measure(
            o.sequential,
            sequential(o.sequential, |_| c.set_data(node, data, None)),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |_| c.get_data(node)),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |_| c.set_data(node, data, None)),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |i| async move {
                let path = format!("{root}/c-{i}");
                c.create(&path, data, CreateMode::Persistent).await
            }),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |i| async move {
                let path = format!("{root}/c-{i}");
                c.delete(&path, None).await
            }),
        )
        .await,
    );
    client.close().await;
    r
}

async fn bench_peer(connect: &str, o: &Options) -> Results {
    use zookeeper_client::{Acls, Client, CreateMode};
    let client = Client::connector()
        .with_session_timeout(Duration::from_secs(30))
        .connect(connect)
        .await
        .expect("zookeeper-client connects");
    let data = vec![b'x'; o.data_size];
    let root = "/bench-peer";
    let node = "/bench-peer/node";
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for (path, value) in [(root, &b""[..]), (node, &data[..])] {
        match client.create(path, value, &opts).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => panic!("create {path}: {e}"),
        }
    }
    let c = &client;
    let data = &data[..];
    let opts = &opts;
    pipeline(o.warmup, o.in_flight, |_| c.get_data(node)).await;
    sequential(o.warmup / 10, |_| c.set_data(node, data, None)).await;
    pipeline(o.warmup, o.in_flight, |i| async move {
        let path = format!("{root}/w-{i}");
        c.create(&path, data, opts).await
    })
    .await;
    pipeline(o.warmup, o.in_flight, |i| async move {
        let path = format!("{root}/w-{i}");
        c.delete(&path, None).await
    })
    .await;

    let mut r = Vec::new();
    r.push(measure(o.sequential, sequential(o.sequential, |_| c.get_data(node))).await);
    r.push(
        measure(
            o.sequential,
            sequential(o.sequential, |_| c.set_data(node, data, None)),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |_| c.get_data(node)),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |_| c.set_data(node, data, None)),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |i| async move {
                let path = format!("{root}/c-{i}");
                c.create(&path, data, opts).await
            }),
        )
        .await,
    );
    r.push(
        measure(
            o.pipelined,
            pipeline(o.pipelined, o.in_flight, |i| async move {
                let path = format!("{root}/c-{i}");
                c.delete(&path, None).await
            }),
        )
        .await,
    );
    drop(client);
    r
}

/// The simulated server, in a child process of its own.
struct SimChild(Child);

impl SimChild {
    fn start() -> (SimChild, String) {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("--serve-sim")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sim server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sim server address");
        let addr = line.trim().to_owned();
        assert!(!addr.is_empty(), "sim server printed no address");
        (SimChild(child), addr)
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--serve-sim`: serve the simulated ZooKeeper until stdin closes (as `zkit-sim serve` does,
/// on a current-thread runtime).
fn serve_sim() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let handle = zkit_sim::server::Server::bind(
            "127.0.0.1:0",
            zkit_sim::server::ServerConfig::default(),
        )
        .await
        .expect("bind the sim server");
        println!("{}", handle.connect_string());
        // Exit when the parent closes our stdin (or dies).
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
        handle.shutdown().await;
    });
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, as PEM files in
/// `dir`: the server's key store (key and certificate) and the CA file clients trust.
fn bench_pki(dir: &std::path::Path) -> zkit_tests::ServerTls {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir).expect("certificate dir");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "zkit bench CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "zk bench server");
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    let keystore = dir.join("server.pem");
    let truststore = dir.join("ca.pem");
    std::fs::write(&keystore, format!("{}{}", key.serialize_pem(), cert.pem())).expect("write");
    std::fs::write(&truststore, ca_cert.pem()).expect("write");
    zkit_tests::ServerTls {
        keystore,
        truststore,
        client_auth: zkit_tests::ClientAuth::None,
    }
}

/// The 1-minute load average (other work on the machine skews the numbers).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn fmt_rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else {
        format!("{:.1}k", r / 1000.0)
    }
}

fn fmt_cpu(s: &Sample) -> String {
    format!("{:.2} ({:.2} + {:.2})", s.cpu_us(), s.user_us(), s.sys_us())
}

fn main() {
    if std::env::args().any(|a| a == "--serve-sim") {
        serve_sim();
        return;
    }
    let o = Options::parse();
    eprintln!("options: {o:?}");
    let load_before = loadavg();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Servers: (label, connect string, TLS connect string, keep-alive guard).
    type Guard = Box<dyn std::any::Any>;
    let mut servers: Vec<(String, String, Option<String>, Guard)> = Vec::new();
    let want_tls = o.clients.iter().any(|c| c == "zkit-tls");
    let pki_dir = zkit_tests::workspace_root()
        .join("target")
        .join("zk")
        .join(format!("bench-certs-{}", std::process::id()));
    let mut ca_file = None;
    for s in &o.servers {
        match s.as_str() {
            "real" if o.real_connect.is_some() => {
                assert!(!want_tls, "zkit-tls needs the server this run starts");
                let cs = o.real_connect.clone().unwrap_or_default();
                servers.push(("ZooKeeper 3.8 (JVM)".into(), cs, None, Box::new(())));
            }
            "real" if want_tls => {
                let tls = bench_pki(&pki_dir);
                ca_file = Some(tls.truststore.clone());
                let zk = zkit_tests::ZkServer::standalone_tls(&tls).expect("real ZooKeeper, TLS");
                let cs = zk.connect_string().to_owned();
                let secure = zk.secure_connect_string().map(str::to_owned);
                let label = "ZooKeeper 3.8 (JVM, Netty)".into();
                servers.push((label, cs, secure, Box::new(zk)));
            }
            "real" => {
                let zk = zkit_tests::ZkServer::standalone().expect("real ZooKeeper");
                let cs = zk.connect_string().to_owned();
                servers.push(("ZooKeeper 3.8 (JVM)".into(), cs, None, Box::new(zk)));
            }
            "sim" => {
                let (child, cs) = SimChild::start();
                servers.push(("zkit-sim".into(), cs, None, Box::new(child)));
            }
            other => panic!("unknown server {other:?} (real, sim)"),
        }
    }

    // results[server][client] = per-phase samples
    let mut results: Vec<Vec<(String, Results)>> = Vec::new();
    for (label, cs, secure, _) in &servers {
        let mut per_client = Vec::new();
        for c in &o.clients {
            eprintln!("running {c} against {label} at {cs}");
            let r = match c.as_str() {
                "zkit" => rt.block_on(bench_zkit(cs, None, &o)),
                "zkit-tls" => {
                    let secure = secure
                        .as_deref()
                        .expect("zkit-tls runs against the real server only (--servers real)");
                    let ca = ca_file.as_ref().expect("the bench CA");
                    let tls = zkit::TlsConfig::with_ca_file(ca);
                    rt.block_on(bench_zkit(secure, Some(tls), &o))
                }
                "peer" => rt.block_on(bench_peer(cs, &o)),
                other => panic!("unknown client {other:?} (zkit, zkit-tls, peer)"),
            };
            for (phase, s) in PHASES.iter().zip(&r) {
                eprintln!(
                    "  {phase:<17} {:>9.0} ops/s  {:.2} us CPU/op (user {:.2}, sys {:.2})",
                    s.rate(),
                    s.cpu_us(),
                    s.user_us(),
                    s.sys_us()
                );
            }
            let name = match c.as_str() {
                "peer" => "zookeeper-client",
                "zkit-tls" => "zkit over TLS",
                _ => "zkit",
            };
            per_client.push((name.to_owned(), r));
        }
        results.push(per_client);
    }

    let _ = std::fs::remove_dir_all(&pki_dir);
    println!();
    println!(
        "load average (1 min) {} before, {} after; {} CPUs",
        load_before,
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{} pipelined requests ({} in flight), {} sequential, {}-byte values; \
         CPU = client process user + sys per request, in µs",
        o.pipelined, o.in_flight, o.sequential, o.data_size
    );
    println!();
    let names: Vec<&str> = results[0].iter().map(|(n, _)| n.as_str()).collect();
    let mut header = "| server | phase |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for n in &names {
        header += &format!(" {n} ops/s |");
        rule += "---:|";
    }
    for n in &names {
        header += &format!(" {n} CPU µs/op (user + sys) |");
        rule += "---:|";
    }
    if names.len() == 2 {
        header += &format!(
            " {} / {} ops/s | {} / {} CPU |",
            names[0], names[1], names[0], names[1]
        );
        rule += "---:|---:|";
    }
    println!("{header}");
    println!("{rule}");
    let mix = |r: &Results| r[2].add(r[3]).add(r[4]);
    for ((label, _, _, _), per_client) in servers.iter().zip(&results) {
        let mut rows: Vec<(String, Vec<Sample>)> = PHASES
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.to_string(),
                    per_client.iter().map(|(_, r)| r[i]).collect(),
                )
            })
            .collect();
        rows.push((
            "**pipelined get+set+create**".into(),
            per_client.iter().map(|(_, r)| mix(r)).collect(),
        ));
        for (phase, samples) in rows {
            let mut line = format!("| {label} | {phase} |");
            for s in &samples {
                line += &format!(" {} |", fmt_rate(s.rate()));
            }
            for s in &samples {
                line += &format!(" {} |", fmt_cpu(s));
            }
            if samples.len() == 2 {
                line += &format!(
                    " {:.2} | {:.2} |",
                    samples[0].rate() / samples[1].rate(),
                    samples[0].cpu_us() / samples[1].cpu_us()
                );
            }
            println!("{line}");
        }
    }

    // How far the in-process server is ahead of the JVM one, per client.
    if results.len() == 2 {
        println!();
        println!(
            "| client | phase | {} ops/s | {} ops/s | ratio |",
            servers[1].0, servers[0].0
        );
        println!("|---|---|---:|---:|---:|");
        for (ci, name) in names.iter().enumerate() {
            for (pi, phase) in PHASES.iter().enumerate() {
                let real = results[0][ci].1[pi];
                let sim = results[1][ci].1[pi];
                println!(
                    "| {name} | {phase} | {} | {} | {:.2} |",
                    fmt_rate(sim.rate()),
                    fmt_rate(real.rate()),
                    sim.rate() / real.rate()
                );
            }
        }
    }
}
