//! A candidate in a leader election: prints when it becomes leader and when it stops being
//! one. Run several; stop the leader (Ctrl-C, or cut its network) and watch another take over.
//!
//! ```sh
//! cargo run -p zkit --example election -- --hosts 127.0.0.1:PORT --id a --rounds 2
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::{LeaderEvent, LeaderLatch};
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "election",
        "A candidate in a leader election (LeaderLatch): prints when it leads and when it stops.",
        "/examples/election",
    );
    let client = Client::connect(&args.hosts).await?;
    let latch = LeaderLatch::start(&client, &args.path, &args.id)?;
    let mut events = latch.events();
    let mut terms = 0;
    println!("[{}] candidate in {}", args.id, args.path);
    while terms < args.rounds {
        match *events.borrow_and_update() {
            LeaderEvent::Elected { epoch } => {
                terms += 1;
                println!("[{}] became leader (epoch {epoch})", args.id);
                let leader = LeaderLatch::leader(&client, &args.path).await?;
                println!("[{}] leader according to the tree: {leader:?}", args.id);
                tokio::time::sleep(Duration::from_millis(args.hold_ms)).await;
                if terms == args.rounds {
                    break;
                }
            }
            LeaderEvent::NotLeader => println!("[{}] not leader", args.id),
        }
        if events.changed().await.is_err() {
            break;
        }
    }
    println!("[{}] stepping down", args.id);
    latch.close().await?;
    client.close().await;
    Ok(())
}
