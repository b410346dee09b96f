//! A barrier: with `--id boss` it raises the barrier, waits `--hold-ms`, then removes it;
//! with any other id it waits at the barrier and says when it passes.
//!
//! ```sh
//! cargo run -p zkit --example barrier -- --hosts 127.0.0.1:PORT --id boss --hold-ms 5000 &
//! cargo run -p zkit --example barrier -- --hosts 127.0.0.1:PORT --id worker
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::Barrier;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "barrier",
        "A barrier: `--id boss` raises it, waits --hold-ms, then removes it; any other id waits at it.",
        "/examples/barrier",
    );
    let client = Client::connect(&args.hosts).await?;
    let barrier = Barrier::new(&client, &args.path)?;
    if args.id == "boss" {
        barrier.raise().await?;
        println!("[boss] barrier raised for {} ms", args.hold_ms);
        tokio::time::sleep(Duration::from_millis(args.hold_ms)).await;
        barrier.remove().await?;
        println!("[boss] barrier removed");
    } else {
        println!("[{}] waiting at the barrier", args.id);
        barrier.wait().await?;
        println!("[{}] passed", args.id);
    }
    client.close().await;
    Ok(())
}
