//! The node daemon in-process: a one-node cluster served on a Unix socket, read through the
//! socket client by several subscribers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ocf_core::NodeId;
use ocf_membership::Membership;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::config::NodeConfig;
use ocf_ref::membership::daemon::DaemonClient;
use ocf_ref::membership::daemon::{self, DaemonError};

fn config(dir: &std::path::Path) -> NodeConfig {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = dir.join("key");
    ClusterKey::random().write_new(&key).unwrap();
    let text = format!(
        "cluster = \"solo\"\nnode_id = 4\nkey_file = \"{}\"\nsocket = \"{}\"\n[timing]\nheartbeat_ms = 50\ndead_ms = 150\n[[nodes]]\nid = 4\nname = \"alone\"\naddress = \"127.0.0.1:{port}\"\nvotes = 2\n",
        key.display(),
        dir.join("sub/dir/api.sock").display()
    );
    NodeConfig::parse(&text, std::path::Path::new("solo.toml")).unwrap()
}

#[tokio::test]
async fn one_node_daemon_serves_views_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let d = daemon::serve(&config).await.unwrap();
    assert!(d.socket().exists(), "the socket's directory is created");

    // A second daemon on the same socket is refused.
    let again = daemon::serve_source(d.engine().clone(), d.socket()).await;
    assert!(matches!(again, Err(DaemonError::InUse { .. })), "{again:?}");

    let client = DaemonClient::new(config.socket_path());
    assert_eq!(client.local_node().await.unwrap(), NodeId::new(4));
    let mut a = client.subscribe().await.unwrap();
    let view = if let Some(v) = a.initial_view() {
        v.clone()
    } else {
        let e = tokio::time::timeout(Duration::from_secs(20), a.next_event())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.seq, 1);
        e.view
    };
    assert_eq!(view.member_ids().collect::<Vec<_>>(), vec![NodeId::new(4)]);
    assert!(view.is_quorate(), "2 of 2 votes");
    assert_eq!(view.members()[0].name.as_str(), "alone");
    assert_eq!(view.members()[0].born_on, Some(view.id));
    let now = client.current_view().await.unwrap().unwrap();
    assert_eq!(now, view);
    let mut b = client.subscribe().await.unwrap();
    assert_eq!(b.initial_view(), Some(&view));

    let socket = d.socket().to_owned();
    d.shutdown().await;
    // Subscribers learn the node left (Evicted, with the last view), then the stream ends:
    // `Ok(None)`, and `Ok(None)` again (the end is never an error).
    let mut end = tokio::time::timeout(Duration::from_secs(10), b.next_event())
        .await
        .expect("a subscription outlived its daemon");
    if let Ok(Some(e)) = &end {
        assert_eq!(e.kind, ocf_membership::EventKind::Evicted);
        assert_eq!(e.view, view);
        end = tokio::time::timeout(Duration::from_secs(10), b.next_event())
            .await
            .expect("a subscription outlived its daemon");
    }
    assert!(matches!(end, Ok(None)), "{end:?}");
    let again = b.next_event().await;
    assert!(matches!(again, Ok(None)), "{again:?}");
    assert!(!socket.exists(), "the socket file is removed on shutdown");
    assert!(client.current_view().await.is_err());
}
