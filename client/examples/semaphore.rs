//! A semaphore of two leases: each round this process takes a lease, prints how many are
//! out, holds it for a while and gives it back. Run three or more at once: never more than
//! two hold a lease together, the others wait their turn.
//!
//! ```sh
//! cargo run -p zkit --example semaphore -- --hosts 127.0.0.1:PORT --id a &
//! cargo run -p zkit --example semaphore -- --hosts 127.0.0.1:PORT --id b &
//! cargo run -p zkit --example semaphore -- --hosts 127.0.0.1:PORT --id c
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::Semaphore;
use zkit::Client;

/// How many leases the example's semaphore has.
const LEASES: usize = 2;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "semaphore",
        "Takes one of a semaphore's two leases each round, holds it for --hold-ms, gives it back.",
        "/examples/semaphore",
    );
    let client = Client::connect(&args.hosts).await?;
    let semaphore = Semaphore::new(&client, &args.path, LEASES)?.data(args.id.as_bytes());
    for round in 1..=args.rounds {
        println!("[{}] round {round}: waiting for a lease", args.id);
        let lease = semaphore.acquire().await?;
        let out = semaphore.leases().await?;
        println!(
            "[{}] got lease {} ({} of {LEASES} out)",
            args.id,
            lease.node(),
            out.len()
        );
        tokio::select! {
            () = lease.lost() => println!("[{}] LOST the lease: stop now", args.id),
            () = tokio::time::sleep(Duration::from_millis(args.hold_ms)) => {
                println!("[{}] giving the lease back", args.id);
            }
        }
        lease.release().await?;
    }
    client.close().await;
    Ok(())
}
