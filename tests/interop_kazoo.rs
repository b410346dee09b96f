//! zkit's Lock (Kazoo naming) and Kazoo's own `Lock` (Debian's `python3-kazoo`) contend on one
//! path of a real ZooKeeper 3.8 without ever both holding it.

mod common;

use std::time::Duration;

use common::{connect, standalone};
use zkit::recipe::{Lock, LockNaming};
use zkit::{CreateMode, Error};

#[tokio::test]
async fn zkit_and_kazoo_locks_exclude_each_other() {
    let zk = standalone();
    let client = connect(zk.connect_string()).await;
    client.ensure_path("/interop").await.unwrap();
    let script = format!("{}/tests/interop/kazoo_lock.py", env!("CARGO_MANIFEST_DIR"));
    let kazoo = tokio::process::Command::new("/usr/bin/python3")
        .args([
            &script,
            zk.connect_string(),
            "/interop/lock",
            "/interop/owner",
            "15",
        ])
        .kill_on_drop(true)
        .output();
    let zkit_side = async {
        let lock = Lock::new(&client, "/interop/lock")
            .unwrap()
            .naming(LockNaming::Kazoo);
        for _ in 0..15 {
            let guard = lock.acquire().await.unwrap();
            match client
                .create("/interop/owner", b"zkit", CreateMode::Ephemeral)
                .await
            {
                Ok(_) => {}
                Err(Error::NodeExists { .. }) => panic!("zkit acquired while Kazoo holds the lock"),
                Err(e) => panic!("create owner: {e}"),
            }
            client.sync("/").await.unwrap();
            client.delete("/interop/owner", None).await.unwrap();
            guard.release().await.unwrap();
        }
    };
    let (out, ()) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(kazoo, zkit_side)
    })
    .await
    .expect("both sides finish within 120 s");
    let out = out.expect("run /usr/bin/python3 (install python3-kazoo: scripts/test does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kazoo side failed: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("kazoo done"), "{stdout}\n{stderr}");
}
