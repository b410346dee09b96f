//! Mirrors a subtree and prints every change to it (change nodes under `--path` with
//! zkCli.sh or another client), then the whole mirror. Stops after `--rounds` changes.
//!
//! ```sh
//! cargo run -p zkit --example tree_cache -- --hosts 127.0.0.1:PORT --path /app --rounds 5
//! ```

mod common;

use zkit::recipe::{TreeCache, TreeEvent};
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "tree_cache",
        "Mirrors a subtree and prints every change to it; stops after --rounds changes.",
        "/examples/tree",
    );
    let client = Client::connect(&args.hosts).await?;
    let mut cache = TreeCache::start(&client, &args.path).await?;
    let mut changes = 0;
    while changes < args.rounds {
        let Some(event) = cache.next().await else {
            println!("session ended");
            break;
        };
        match event {
            TreeEvent::Added { path, value } => {
                println!("+ {path} = {:?}", String::from_utf8_lossy(&value.data));
            }
            TreeEvent::Updated { path, value } => {
                println!("~ {path} = {:?}", String::from_utf8_lossy(&value.data));
            }
            TreeEvent::Removed { path, .. } => println!("- {path}"),
            TreeEvent::Initialized => {
                println!("initialized: {} nodes", cache.snapshot().len());
                continue;
            }
            TreeEvent::Resynced => {
                println!("resynced after a reconnect");
                continue;
            }
        }
        changes += 1;
    }
    for (path, value) in cache.snapshot() {
        println!(
            "{path} ({} bytes, version {})",
            value.data.len(),
            value.stat.version
        );
    }
    client.close().await;
    Ok(())
}
