//! Two or more of these fight over one lock: each acquires, prints its fencing token, holds
//! the lock for a while (watching for its loss), releases, and goes again.
//!
//! ```sh
//! scripts/zk start-standalone target/zk/demo   # prints 127.0.0.1:PORT
//! cargo run -p zkit --example lock -- --hosts 127.0.0.1:PORT --id a &
//! cargo run -p zkit --example lock -- --hosts 127.0.0.1:PORT --id b
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::Lock;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "lock",
        "A lock contender: acquire, print the fencing token, hold for --hold-ms, release; --rounds times.",
        "/examples/lock",
    );
    let client = Client::connect(&args.hosts).await?;
    let lock = Lock::new(&client, &args.path)?.data(args.id.as_bytes());
    for round in 1..=args.rounds {
        println!("[{}] round {round}: waiting for {}", args.id, args.path);
        let guard = lock.acquire().await?;
        println!(
            "[{}] acquired, fencing token {}",
            args.id,
            guard.fencing_token()
        );
        tokio::select! {
            () = guard.lost() => println!("[{}] LOST the lock: stop working now", args.id),
            () = tokio::time::sleep(Duration::from_millis(args.hold_ms)) => {
                println!("[{}] releasing", args.id);
            }
        }
        guard.release().await?;
    }
    client.close().await;
    Ok(())
}
