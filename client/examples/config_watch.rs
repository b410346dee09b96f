//! Prints every distinct value of a configuration node as it changes (run it, then change the
//! node with zkCli.sh or another client). Stops after `--rounds` values.
//!
//! ```sh
//! cargo run -p zkit --example config_watch -- --hosts 127.0.0.1:PORT --path /app/config
//! ```

mod common;

use zkit::recipe::DataWatch;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "config_watch",
        "Prints every distinct value of a configuration node as it changes; stops after --rounds values.",
        "/examples/config",
    );
    let client = Client::connect(&args.hosts).await?;
    let mut values = DataWatch::start(&client, &args.path)?;
    for _ in 0..args.rounds {
        match values.next().await {
            Some(Some(v)) => println!(
                "{} = {:?} (version {})",
                args.path,
                String::from_utf8_lossy(&v.data),
                v.stat.version
            ),
            Some(None) => println!("{} does not exist", args.path),
            None => {
                println!("session ended");
                break;
            }
        }
    }
    client.close().await;
    Ok(())
}
