//! A double barrier for `--rounds` participants: each enters, waits until all have, works
//! for `--hold-ms`, leaves, and waits until all have left.
//!
//! ```sh
//! for i in 1 2 3; do cargo run -p zkit --example double_barrier -- --hosts 127.0.0.1:PORT --id p$i --rounds 3 & done
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::DoubleBarrier;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "double_barrier",
        "A double barrier for --rounds participants: enter together, work for --hold-ms, leave together.",
        "/examples/double-barrier",
    );
    let client = Client::connect(&args.hosts).await?;
    let barrier = DoubleBarrier::new(&client, &args.path, args.rounds as usize)?;
    println!("[{}] entering ({} expected)", args.id, args.rounds);
    barrier.enter().await?;
    println!("[{}] everyone is in: working", args.id);
    tokio::time::sleep(Duration::from_millis(args.hold_ms)).await;
    println!("[{}] leaving", args.id);
    barrier.leave().await?;
    println!("[{}] everyone is out", args.id);
    client.close().await;
    Ok(())
}
