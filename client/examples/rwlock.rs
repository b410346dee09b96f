//! Readers and writers sharing one read-write lock: each round this process reads (shared
//! with other readers) or, every third round, writes (alone), printing what it holds and its
//! fencing token. Run several at once and watch readers overlap while writers never do.
//!
//! ```sh
//! scripts/zk start-standalone target/zk/demo   # prints 127.0.0.1:PORT
//! cargo run -p zkit --example rwlock -- --hosts 127.0.0.1:PORT --id a --rounds 6 &
//! cargo run -p zkit --example rwlock -- --hosts 127.0.0.1:PORT --id b --rounds 6
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::{Access, ReadWriteLock};
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "rwlock",
        "A read-write lock user: reads (shared) each round and writes (alone) every third round.",
        "/examples/rwlock",
    );
    let client = Client::connect(&args.hosts).await?;
    let lock = ReadWriteLock::new(&client, &args.path)?.data(args.id.as_bytes());
    for round in 1..=args.rounds {
        let access = if round % 3 == 0 {
            Access::Write
        } else {
            Access::Read
        };
        println!("[{}] round {round}: waiting to {access:?}", args.id);
        let guard = lock.acquire(access).await?;
        let queue = lock.contenders().await?;
        println!(
            "[{}] holding {access:?}, fencing token {}, queue {queue:?}",
            args.id,
            guard.fencing_token()
        );
        tokio::select! {
            () = guard.lost() => println!("[{}] LOST the lock: stop now", args.id),
            () = tokio::time::sleep(Duration::from_millis(args.hold_ms)) => {
                println!("[{}] releasing {access:?}", args.id);
            }
        }
        guard.release().await?;
    }
    client.close().await;
    Ok(())
}
