//! A producer and consumers on one queue. `--id producer` puts `--rounds` jobs (every third
//! one urgent); any other id consumes jobs with a `LockingQueue`, holding each for
//! `--hold-ms` before consuming it: kill a consumer mid-job and another picks the job up.
//!
//! ```sh
//! cargo run -p zkit --example queue -- --hosts 127.0.0.1:PORT --id worker-1 &
//! cargo run -p zkit --example queue -- --hosts 127.0.0.1:PORT --id worker-2 &
//! cargo run -p zkit --example queue -- --hosts 127.0.0.1:PORT --id producer --rounds 6
//! ```

mod common;

use std::time::Duration;

use zkit::recipe::LockingQueue;
use zkit::Client;

#[tokio::main]
async fn main() -> zkit::Result<()> {
    let args = common::parse(
        "queue",
        "`--id producer` puts --rounds jobs; any other id consumes them with a LockingQueue.",
        "/examples/queue",
    );
    let client = Client::connect(&args.hosts).await?;
    let queue = LockingQueue::new(&client, &args.path)?;
    if args.id == "producer" {
        for n in 1..=args.rounds {
            let priority = if n % 3 == 0 { 10 } else { 100 };
            let path = queue
                .put_with_priority(format!("job-{n}").as_bytes(), priority)
                .await?;
            println!("[producer] put job-{n} (priority {priority}) at {path}");
        }
        println!("[producer] {} jobs queued", queue.len().await?);
    } else {
        for _ in 0..args.rounds {
            let Some(job) = queue.get_timeout(Duration::from_secs(30)).await? else {
                println!("[{}] nothing to do for 30 s", args.id);
                break;
            };
            let name = String::from_utf8_lossy(job.data()).into_owned();
            println!("[{}] working on {name}", args.id);
            tokio::time::sleep(Duration::from_millis(args.hold_ms)).await;
            if job.consume().await? {
                println!("[{}] done with {name}", args.id);
            } else {
                println!("[{}] lost {name} to another consumer", args.id);
            }
        }
    }
    client.close().await;
    Ok(())
}
