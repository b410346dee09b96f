//! Client roles: what each simulated client host runs. Every client is a restartable turmoil
//! host (`c1`, `c2`, ...) running a real `zkit::Client` over turmoil TCP, with its own
//! rand_chacha stream derived from the seed, the client number and the incarnation.
//!
//! - [`lock`]: a lock contender writing to the fenced resource while it holds the lock.

pub mod lock;

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use zkit::Client;

use crate::history::{Event, History};
use crate::net::TurmoilConnector;
use crate::scenario::{Role, Workload};

/// Everything one client host needs.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// The client's number (1-based; host `c{n}`).
    pub client: usize,
    /// The workload it belongs to.
    pub workload: Workload,
    /// The ensemble's connect string.
    pub hosts: String,
    /// The session timeout to ask for.
    pub session_timeout: Duration,
    /// The run's seed.
    pub seed: u64,
    /// The shared history.
    pub history: History,
}

impl ClientSpec {
    /// The host name.
    pub fn host(&self) -> String {
        format!("c{}", self.client)
    }

    /// This incarnation's random stream (independent of every other client's).
    pub fn rng(&self, incarnation: u32) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(((self.client as u64) << 32) | u64::from(incarnation));
        rng
    }
}

/// Runs client `spec`'s role forever (until its host crashes or the simulation ends).
pub async fn run(spec: ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    spec.history.record(Event::Started {
        client: spec.client,
        incarnation,
    });
    match spec.workload.role {
        Role::Lock => lock::run(&spec, incarnation).await,
    }
}

/// Connects a client (retrying until it succeeds) and logs its state changes into the
/// history.
pub async fn connect(spec: &ClientSpec, seed: u64) -> Client {
    let who = spec.host();
    let zk = loop {
        let attempt = Client::builder(&spec.hosts)
            .connector(TurmoilConnector)
            .seed(seed)
            .session_timeout(spec.session_timeout)
            .renew_expired_session(true)
            .connect()
            .await;
        match attempt {
            Ok(zk) => break zk,
            Err(e) => {
                spec.history.note(&who, format!("connect failed: {e}"));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let mut states = zk.state_changes();
    let history = spec.history.clone();
    let client = spec.client;
    history.record(Event::State {
        client,
        state: format!("{:?}", zk.state()),
    });
    tokio::spawn(async move {
        loop {
            let state = match states.recv().await {
                Ok(state) => format!("{state:?}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    format!("({n} state changes missed)")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            history.record(Event::State { client, state });
        }
    });
    zk
}
