//! DataWatch and ChildrenWatch against a real ZooKeeper 3.8: every distinct value in order,
//! starting with the current one, for a node that does not exist yet, across a connection cut.

mod common;

use common::{connect, standalone, within};
use zkit::recipe::{ChildrenWatch, DataWatch};
use zkit::CreateMode;
use zkit_tests::proxy::Proxy;

#[tokio::test]
async fn data_watch_sees_every_distinct_value_across_a_cut() {
    let zk = standalone();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let watcher_client = connect(&proxy.connect_string()).await;
    let writer = connect(zk.connect_string()).await;
    writer.delete_recursive("/recipes/config").await.unwrap();
    writer.ensure_path("/recipes").await.unwrap();

    let mut values = DataWatch::start(&watcher_client, "/recipes/config").unwrap();
    assert_eq!(
        within("initial", values.next()).await,
        Some(None),
        "starts with 'absent'"
    );
    writer
        .create("/recipes/config", b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    let v = within("created", values.next()).await.unwrap().unwrap();
    assert_eq!(v.data, b"v1");
    writer
        .set_data("/recipes/config", b"v2", None)
        .await
        .unwrap();
    assert_eq!(
        within("v2", values.next()).await.unwrap().unwrap().data,
        b"v2"
    );

    // Cut the watcher's connection; change the value while it reconnects.
    let mut states = watcher_client.state_changes();
    proxy.cut();
    assert_eq!(
        within("suspended", states.recv()).await.unwrap(),
        zkit::State::Suspended
    );
    writer
        .set_data("/recipes/config", b"v3", None)
        .await
        .unwrap();
    assert_eq!(
        within("v3 after reconnect", values.next())
            .await
            .unwrap()
            .unwrap()
            .data,
        b"v3"
    );

    writer.delete("/recipes/config", None).await.unwrap();
    assert_eq!(within("deleted", values.next()).await, Some(None));
    writer
        .create("/recipes/config", b"v3", CreateMode::Persistent)
        .await
        .unwrap();
    // Same bytes, new node: a distinct value (new mzxid).
    assert_eq!(
        within("recreated", values.next())
            .await
            .unwrap()
            .unwrap()
            .data,
        b"v3"
    );
}

#[tokio::test]
async fn children_watch_tracks_membership() {
    let hosts = standalone().connect_string();
    let watcher_client = connect(hosts).await;
    let writer = connect(hosts).await;
    writer.delete_recursive("/recipes/members").await.unwrap();
    let mut members = ChildrenWatch::start(&watcher_client, "/recipes/members").unwrap();
    assert_eq!(within("initial", members.next()).await, Some(None));
    writer.ensure_path("/recipes/members").await.unwrap();
    assert_eq!(within("empty", members.next()).await, Some(Some(vec![])));
    let joiner = connect(hosts).await;
    joiner
        .create("/recipes/members/b", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(
        within("b joined", members.next()).await,
        Some(Some(vec!["b".to_owned()]))
    );
    writer
        .create("/recipes/members/a", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        within("a joined", members.next()).await,
        Some(Some(vec!["a".to_owned(), "b".to_owned()]))
    );
    joiner.close().await;
    assert_eq!(
        within("b left", members.next()).await,
        Some(Some(vec!["a".to_owned()]))
    );
}
