//! Several of these add to one shared counter (Curator `SharedCount`'s format: 4 big-endian
//! bytes) and print each value they see; the adds never collide or get lost.
//!
//! ```sh
//! scripts/zk start-standalone target/zk/demo   # prints 127.0.0.1:PORT
//! cargo run -p zkit --example counter -- --hosts 127.0.0.1:PORT --id a --rounds 10 &
//! cargo run -p zkit --example counter -- --hosts 127.0.0.1:PORT --id b --rounds 10
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::Counter;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "counter",
        "Adds to a shared counter (Curator SharedCount's format) and prints each value it sees.",
        "/examples/counter",
    );
    let client = Client::connect(&args.hosts).await?;
    let counter = Counter::new(&client, &args.path, 0)?;
    let mut values = counter.watch()?;
    let printer = {
        let id = args.id.clone();
        tokio::spawn(async move {
            while let Some(v) = values.next().await {
                println!("[{id}] sees {} (version {})", v.value, v.version);
            }
        })
    };
    for _ in 0..args.rounds {
        let now = counter.add(1).await?;
        println!("[{}] added 1 -> {now}", args.id);
        tokio::time::sleep(Duration::from_millis(args.hold_ms / 10)).await;
    }
    let last = counter.get().await?;
    println!(
        "[{}] done: {} at version {}",
        args.id, last.value, last.version
    );
    printer.abort();
    client.close().await;
    Ok(())
}
