//! A participant in a leader election that does work only while it leads: each term prints
//! that it leads, "works" for `--hold-ms`, then gives leadership up and queues again, so the
//! participants take turns. Cut one off (stop its network, or Ctrl-Z it past the session
//! timeout) while it leads: its work is cancelled and another takes over.
//!
//! ```sh
//! cargo run -p zkit --example leader_selector -- --hosts 127.0.0.1:PORT --id a &
//! cargo run -p zkit --example leader_selector -- --hosts 127.0.0.1:PORT --id b
//! ```

mod common;

use std::time::Duration;

use tokio::sync::mpsc;
use zkit::recipe::LeaderSelector;
use zkit::Client;

/// Says that work was cancelled if it is dropped before it finishes.
struct Working(String);

impl Drop for Working {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            println!("[{}] work CANCELLED: leadership lost", self.0);
        }
    }
}

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "leader_selector",
        "A leader-selector participant that works only while it leads, then gives leadership up.",
        "/examples/leader-selector",
    );
    let client = Client::connect(&args.hosts).await?;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let hold = Duration::from_millis(args.hold_ms);
    let selector = LeaderSelector::builder(&client, &args.path, &args.id)?
        .auto_requeue(true)
        .start(move |ctx| {
            let done = done_tx.clone();
            async move {
                println!(
                    "[{}] leading, term {}, fencing token {}",
                    ctx.id(),
                    ctx.term(),
                    ctx.fencing_token()
                );
                let mut working = Working(ctx.id().to_owned());
                tokio::time::sleep(hold).await;
                working.0.clear();
                println!("[{}] work done, giving leadership up", ctx.id());
                let _ = done.send(ctx.term());
            }
        });
    println!("[{}] participant in {}", args.id, args.path);
    for p in selector.participants().await? {
        println!(
            "[{}]   participant {} leader={}",
            args.id, p.id, p.is_leader
        );
    }
    while let Some(term) = done.recv().await {
        if term >= u64::from(args.rounds) {
            break;
        }
        if let Some(leader) = selector.leader().await? {
            println!("[{}] leader now: {}", args.id, leader.id);
        }
    }
    println!("[{}] leaving the election", args.id);
    selector.close().await;
    client.close().await;
    Ok(())
}
