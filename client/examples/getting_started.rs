//! The README's getting-started example, kept compiling (and runnable) here.
//!
//! ```sh
//! cargo run -p zkit --example getting_started -- --hosts 127.0.0.1:PORT
//! ```

mod common;

use zkit::{Client, CreateMode, EventType, State};

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let hosts = common::parse(
        "getting_started",
        "The README's getting-started example: create, read with a watch, update, close.",
        "/demo",
    )
    .hosts;
    // Several hosts and an optional chroot: "h1:2181,h2:2181/app".
    let client = Client::connect(&hosts).await?;
    assert_eq!(client.state(), State::Connected);

    client.ensure_path("/demo").await?;
    let (path, _stat) = client
        .create("/demo/job-", b"payload", CreateMode::EphemeralSequential)
        .await?;
    println!("created {path}");

    // A read returns the watch it set; the watch resolves once, on the next change.
    let (data, stat, watcher) = client.get_data_watch(&path).await?;
    assert_eq!(data, b"payload");
    client
        .set_data(&path, b"updated", Some(stat.version))
        .await?;
    assert_eq!(watcher.await.event_type, EventType::NodeDataChanged);

    client.close().await; // ephemeral nodes go with the session
    Ok(())
}
