//! `zkit-sim serve`: the simulated server on a real TCP port until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use zkit_sim::server::{Server, ServerConfig};

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2181")]
    listen: SocketAddr,
    /// The server's tick in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    tick_ms: u64,
    /// The seed of the server's randomness (session ids, passwords).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Serves until Ctrl-C.
pub fn serve(args: ServeArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let config = ServerConfig {
        tick_time: Duration::from_millis(args.tick_ms),
        seed: args.seed,
        client_port: args.listen.port(),
        ..ServerConfig::default()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zkit-sim serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listen = args.listen.to_string();
        let handle = match Server::bind(&listen, config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("zkit-sim serve: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "zkit-sim {} serving ZooKeeper on {}",
            zkit_sim::VERSION,
            handle.connect_string()
        );
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("zkit-sim serve: cannot wait for Ctrl-C: {e}");
        }
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}
