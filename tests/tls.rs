//! TLS against a real ZooKeeper 3.8 serving a secure client port (Netty, PEM key and trust
//! stores): operations over TLS, hostname checks, a wrong CA refused with a clear error,
//! mutual TLS with and without a client certificate, certificate files re-read on reconnect,
//! watches restored over TLS after a cut, and a session surviving a member kill in a 3-node
//! ensemble. The certificates are made here with rcgen.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{init_logging, wait_state, within};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use zkit::{Client, CreateMode, Error, EventType, State, TlsConfig, TlsConnector, TlsError};
use zkit_tests::proxy::{Mode, Proxy};
use zkit_tests::{workspace_root, ClientAuth, ServerTls, ZkServer};

/// A CA and what it signed, as PEM files.
struct Pki {
    dir: PathBuf,
    /// The CA that signs the server and the good client.
    ca: PathBuf,
    /// A CA that signed nothing the server uses.
    other_ca: PathBuf,
    /// The server's key and certificate (`localhost`, `127.0.0.1`), one PEM file.
    server_keystore: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A client certificate signed by `other_ca`.
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.self_signed(&key).expect("self-signed CA"), key)
}

fn leaf(name: &str, sans: &[&str], issuer: &(rcgen::Certificate, KeyPair)) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params
        .signed_by(&key, &issuer.0, &issuer.1)
        .expect("signed leaf");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a PEM file");
    path
}

/// The certificates every test of this binary shares.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = workspace_root()
            .join("target")
            .join("zk")
            .join(format!("tls-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cert dir");
        let good = ca("zkit test CA");
        let other = ca("zkit other CA");
        let (server_cert, server_key) = leaf("zk server", &["localhost", "127.0.0.1"], &good);
        let (client_cert, client_key) = leaf("zkit client", &["localhost", "127.0.0.1"], &good);
        let (rogue_cert, rogue_key) = leaf("rogue client", &["localhost", "127.0.0.1"], &other);
        Pki {
            ca: write(&dir, "ca.pem", &good.0.pem()),
            other_ca: write(&dir, "other-ca.pem", &other.0.pem()),
            server_keystore: write(&dir, "server.pem", &format!("{server_key}{server_cert}")),
            client_cert: write(&dir, "client.pem", &client_cert),
            client_key: write(&dir, "client.key", &client_key),
            rogue_cert: write(&dir, "rogue.pem", &rogue_cert),
            rogue_key: write(&dir, "rogue.key", &rogue_key),
            dir,
        }
    })
}

fn server_tls(client_auth: ClientAuth) -> ServerTls {
    ServerTls {
        keystore: pki().server_keystore.clone(),
        truststore: pki().ca.clone(),
        client_auth,
    }
}

/// A standalone server with a TLS port that asks for no client certificate.
fn one_way() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::standalone_tls(&server_tls(ClientAuth::None))
            .expect("a real ZooKeeper with a TLS port must start for this test")
    })
}

/// A standalone server whose TLS port requires a client certificate.
fn mutual() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::standalone_tls(&server_tls(ClientAuth::Need))
            .expect("a real ZooKeeper requiring client certificates must start for this test")
    })
}

/// `127.0.0.1:PORT` of the secure port of `zk`, as `localhost:PORT`.
fn by_name(hosts: &str) -> String {
    hosts.replace("127.0.0.1", "localhost")
}

fn secure(zk: &ZkServer) -> &str {
    zk.secure_connect_string()
        .expect("the server was started with TLS")
}

fn builder(hosts: &str, tls: TlsConfig) -> zkit::Builder {
    init_logging();
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .seed(7)
        .tls(tls)
}

async fn connect_tls(hosts: &str, tls: TlsConfig) -> Client {
    builder(hosts, tls)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("TLS connect to {hosts}: {e}"))
}

/// Asserts `result` is the refusal a client gets when no TLS connection could be made.
fn assert_refused(result: zkit::Result<Client>, reason: &str) {
    match result {
        Err(Error::ConnectFailed(why)) => {
            assert!(why.contains("TLS"), "{why}");
            assert!(why.contains(reason), "expected {reason:?} in: {why}");
        }
        Err(e) => panic!("expected a TLS refusal ({reason}), got {e:?}"),
        Ok(_) => panic!("expected a TLS refusal ({reason}), but the client connected"),
    }
}

#[tokio::test]
async fn operations_over_tls_with_hostname_verification() {
    let hosts = by_name(secure(one_way()));
    let client = connect_tls(&hosts, TlsConfig::with_ca_file(&pki().ca)).await;
    client
        .create("/tls-ops", b"one", CreateMode::Persistent)
        .await
        .unwrap();
    let (data, stat) = client.get_data("/tls-ops").await.unwrap();
    assert_eq!(data, b"one");
    client
        .set_data("/tls-ops", b"two", Some(stat.version))
        .await
        .unwrap();
    assert_eq!(client.get_data("/tls-ops").await.unwrap().0, b"two");
    // A client on the plain port sees the same tree: it is one server.
    let plain = common::connect(one_way().connect_string()).await;
    assert_eq!(plain.get_data("/tls-ops").await.unwrap().0, b"two");
    client.delete("/tls-ops", None).await.unwrap();
    assert!(plain.exists("/tls-ops").await.unwrap().is_none());
    plain.close().await;
    client.close().await;

    // The certificate names 127.0.0.1 too: an IP connect string verifies against it.
    let by_ip = connect_tls(secure(one_way()), TlsConfig::with_ca_file(&pki().ca)).await;
    assert!(by_ip.exists("/").await.unwrap().is_some());
    by_ip.close().await;
}

#[tokio::test]
async fn a_wrong_ca_is_refused_with_a_clear_error() {
    let hosts = secure(one_way());
    let addr = hosts.split(',').next().unwrap();
    let connector = TlsConnector::new(TlsConfig::with_ca_file(&pki().other_ca)).unwrap();
    let err = within("TLS handshake", connector.connect_tls(addr))
        .await
        .err()
        .expect("a server signed by another CA must be refused");
    assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // Through the client: no hang, an error that says why once the session timeout passed.
    let result = within(
        "connect with a wrong CA",
        builder(hosts, TlsConfig::with_ca_file(&pki().other_ca))
            .session_timeout(Duration::from_secs(2))
            .connect(),
    )
    .await;
    assert_refused(result, "UnknownIssuer");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_unless_names_are_skipped() {
    let hosts = secure(one_way());
    let wrong_name = TlsConfig::with_ca_file(&pki().ca).server_name("zk.example.com");
    let result = builder(hosts, wrong_name.clone())
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert_refused(result, "not valid for name");

    let right_name = TlsConfig::with_ca_file(&pki().ca).server_name("localhost");
    connect_tls(hosts, right_name).await.close().await;
    let skipped = wrong_name.danger_skip_hostname_verification();
    connect_tls(hosts, skipped).await.close().await;
    // Skipping names still verifies the chain.
    let skipped_other_ca =
        TlsConfig::with_ca_file(&pki().other_ca).danger_skip_hostname_verification();
    let result = builder(hosts, skipped_other_ca)
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert_refused(result, "UnknownIssuer");
}

#[tokio::test]
async fn missing_and_garbled_files_fail_the_build_clearly() {
    let missing = TlsConfig::with_ca_file(pki().dir.join("no-such-ca.pem"));
    match Client::builder("localhost:1").tls(missing).build() {
        Err(Error::Tls(why)) => assert!(why.contains("no-such-ca.pem"), "{why}"),
        other => panic!("expected Error::Tls, got {:?}", other.err()),
    }
    let garbled = write(
        &pki().dir,
        "garbled.pem",
        "-----BEGIN CERTIFICATE-----\n%%%\n",
    );
    match Client::builder("localhost:1")
        .tls(TlsConfig::with_ca_file(&garbled))
        .build()
    {
        Err(Error::Tls(why)) => assert!(why.contains("garbled.pem"), "{why}"),
        other => panic!("expected Error::Tls, got {:?}", other.err()),
    }
    // A key file that holds a certificate, not a key.
    let swapped = TlsConfig::with_ca_file(&pki().ca)
        .client_cert_files(&pki().client_cert, &pki().client_cert);
    match Client::builder("localhost:1").tls(swapped).build() {
        Err(Error::Tls(why)) => assert!(why.contains("client key"), "{why}"),
        other => panic!("expected Error::Tls, got {:?}", other.err()),
    }
    // A key that does not match the certificate.
    let mismatched =
        TlsConfig::with_ca_file(&pki().ca).client_cert_files(&pki().client_cert, &pki().rogue_key);
    assert!(matches!(
        Client::builder("localhost:1").tls(mismatched).build(),
        Err(Error::Tls(_))
    ));
}

#[tokio::test]
async fn mutual_tls_with_and_without_a_client_certificate() {
    let hosts = by_name(secure(mutual()));
    let with_cert =
        TlsConfig::with_ca_file(&pki().ca).client_cert_files(&pki().client_cert, &pki().client_key);
    let client = connect_tls(&hosts, with_cert).await;
    client
        .create("/mtls", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert!(client.exists("/mtls").await.unwrap().is_some());
    // The server saw the certificate: the session carries its x509 identity.
    let ids = client.who_am_i().await.unwrap();
    assert!(
        ids.iter()
            .any(|id| id.auth_scheme == "x509" && id.user.contains("zkit client")),
        "{ids:?}"
    );
    client.close().await;

    let without = builder(&hosts, TlsConfig::with_ca_file(&pki().ca))
        .session_timeout(Duration::from_secs(2))
        .connect();
    let result = within("connect without a client certificate", without).await;
    assert!(
        matches!(&result, Err(Error::ConnectFailed(why)) if why.contains("TLS")),
        "a server requiring client certificates must refuse one without: {:?}",
        result.as_ref().err()
    );

    let rogue =
        TlsConfig::with_ca_file(&pki().ca).client_cert_files(&pki().rogue_cert, &pki().rogue_key);
    let result = within(
        "connect with an untrusted client certificate",
        builder(&hosts, rogue)
            .session_timeout(Duration::from_secs(2))
            .connect(),
    )
    .await;
    assert!(
        matches!(&result, Err(Error::ConnectFailed(why)) if why.contains("TLS")),
        "a client certificate from another CA must be refused: {:?}",
        result.as_ref().err()
    );
}

#[tokio::test]
async fn certificate_files_are_read_again_on_reconnect() {
    let hosts = secure(one_way());
    let addr = hosts.split(',').next().unwrap().to_owned();
    let dir = pki().dir.join("reload");
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::copy(&pki().other_ca, &ca_file).unwrap();

    // Same connector: refused with the wrong CA, accepted once the file holds the right one.
    let connector = TlsConnector::new(TlsConfig::with_ca_file(&ca_file)).unwrap();
    assert!(connector.connect_tls(&addr).await.is_err());
    std::fs::copy(&pki().ca, &ca_file).unwrap();
    assert!(connector.connect_tls(&addr).await.is_ok());

    // Same client: it keeps trying with the wrong CA and connects once the file is fixed.
    std::fs::copy(&pki().other_ca, &ca_file).unwrap();
    let client = builder(hosts, TlsConfig::with_ca_file(&ca_file))
        .build()
        .unwrap();
    std::fs::copy(&pki().ca, &ca_file).unwrap();
    within(
        "connected after the CA file was fixed",
        client.wait_connected(),
    )
    .await
    .unwrap();
    assert!(client.exists("/").await.unwrap().is_some());
    client.close().await;
}

#[tokio::test]
async fn watches_are_restored_over_tls_after_a_cut() {
    let zk = one_way();
    let upstream = secure(zk).split(',').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(upstream).await.unwrap();
    let client = connect_tls(&proxy.connect_string(), TlsConfig::with_ca_file(&pki().ca)).await;
    let other = common::connect(zk.connect_string()).await;
    other.ensure_path("/tls-watch").await.unwrap();
    other.set_data("/tls-watch", b"0", None).await.unwrap();
    let session = client.session_id();
    let (_, _, watcher) = client.get_data_watch("/tls-watch").await.unwrap();
    let mut states = client.state_changes();

    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    assert_eq!(
        within("suspended", states.recv()).await.unwrap(),
        State::Suspended
    );
    // Changed while the client cannot reach the server.
    other.set_data("/tls-watch", b"1", None).await.unwrap();
    proxy.set_mode(Mode::Forward);
    wait_state(&client, State::Connected).await;
    assert_eq!(client.session_id(), session);
    let event = within("the watch fires after the TLS reconnect", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/tls-watch")
    );
    client.close().await;
    other.close().await;
}

#[tokio::test]
async fn session_survives_a_member_kill_under_tls() {
    let zk = ZkServer::ensemble_tls(3, &server_tls(ClientAuth::None))
        .expect("a real 3-node ZooKeeper ensemble with TLS ports must start for this test");
    // A fresh JVM's first TLS handshakes are slow: give each attempt time.
    let client = builder(secure(&zk), TlsConfig::with_ca_file(&pki().ca))
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("TLS connect to the ensemble: {e}"));
    client
        .create("/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let session = client.session_id();
    let server = client.server().expect("connected to someone");
    let index = secure(&zk)
        .split(',')
        .position(|a| a == server)
        .expect("connected to a member's TLS port");
    let mut states = client.state_changes();

    zk.kill(index).expect("kill the member the client uses");
    assert_eq!(
        within("suspended", states.recv()).await.unwrap(),
        State::Suspended
    );
    wait_state(&client, State::Connected).await;
    assert_eq!(client.session_id(), session);
    assert_ne!(client.server(), Some(server));
    assert!(client.exists("/eph").await.unwrap().is_some());
    client.close().await;
}
