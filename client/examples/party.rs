//! Joins a party and prints the member list every time it changes; leaves after `--rounds`
//! changes. Run several with different `--id`s and watch them see each other.
//!
//! ```sh
//! cargo run -p zkit --example party -- --hosts 127.0.0.1:PORT --id alice
//! ```

mod common;

use zkit::recipe::Party;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "party",
        "Joins a party and prints the member list on every change; leaves after --rounds changes.",
        "/examples/party",
    );
    let client = Client::connect(&args.hosts).await?;
    let mut party = Party::new(&client, &args.path, &args.id)?;
    let mut changes = party.watch()?;
    party.join().await?;
    println!("[{}] joined {}", args.id, args.path);
    for _ in 0..args.rounds {
        if changes.next().await.is_none() {
            break;
        }
        println!("[{}] members: {:?}", args.id, party.members().await?);
    }
    party.leave().await?;
    println!("[{}] left", args.id);
    client.close().await;
    Ok(())
}
