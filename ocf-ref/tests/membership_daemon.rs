//! The node daemon in-process: a one-node cluster served on a Unix socket, read through the
//! socket client by several subscribers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ocf_core::NodeId;
use ocf_membership::{
    EventKind, Member, Membership, MembershipError, MembershipErrorKind, MembershipEvent, Quorum,
    View, ViewId,
};
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

/// A client of a socket nobody serves fails as unavailable, with the OS error as its cause,
/// and its message does not name the reference CLI.
#[tokio::test]
async fn a_client_of_no_daemon_is_unavailable_with_the_os_error_as_cause() {
    let dir = tempfile::tempdir().unwrap();
    let client = DaemonClient::new(dir.path().join("nobody.sock"));
    let e = client.current_view().await.unwrap_err();
    assert_eq!(e.kind(), MembershipErrorKind::Unavailable, "{e}");
    let os = e
        .cause()
        .and_then(|c| c.downcast_ref::<std::io::Error>())
        .expect("the OS error is kept as the cause");
    assert_eq!(os.kind(), std::io::ErrorKind::NotFound);
    assert!(!e.to_string().contains("ocf "), "{e}");
}

/// A stand-in daemon: answers `subscribe` with `lines` (after the initial view line), then
/// hangs up. Returns the socket's directory (removed on drop) and a client of it.
fn scripted_daemon(lines: Vec<String>) -> (tempfile::TempDir, DaemonClient) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripted.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut request = String::new();
        BufReader::new(r).read_line(&mut request).await.unwrap();
        w.write_all(b"{\"ok\":true}\n").await.unwrap();
        for line in lines {
            w.write_all(line.as_bytes()).await.unwrap();
            w.write_all(b"\n").await.unwrap();
        }
    });
    (dir, DaemonClient::new(path))
}

fn event_line(seq: u64) -> String {
    let view = View::new(
        ViewId::new(seq, NodeId::new(1), 0),
        vec![Member::new(NodeId::new(1), "n1".parse().unwrap())],
        None,
        Quorum::majority(1, 1),
    );
    let event = MembershipEvent::new(seq, EventKind::NewMembership, view);
    serde_json::json!({ "ok": true, "event": event }).to_string()
}

/// A gap in `seq` is one `Lagged` with the number missed, then the stream goes on with the
/// event after the gap; the daemon's `end` line is `Ok(None)`, for ever.
#[tokio::test]
async fn a_gap_is_reported_as_lag_and_the_stream_goes_on_to_its_end() {
    let end = "{\"ok\":true,\"end\":true}".to_owned();
    let (_dir, client) = scripted_daemon(vec![event_line(1), event_line(4), end]);
    let mut sub = client.subscribe().await.unwrap();
    assert_eq!(sub.next_event().await.unwrap().unwrap().seq, 1);
    let lag = sub.next_event().await.unwrap_err();
    assert!(
        matches!(lag, MembershipError::Lagged { missed: 2 }),
        "{lag}"
    );
    assert_eq!(sub.next_event().await.unwrap().unwrap().seq, 4);
    assert!(sub.next_event().await.unwrap().is_none());
    assert!(sub.next_event().await.unwrap().is_none());
}

/// A daemon that hangs up without `end` crashed: that is a failed stream, not its end.
#[tokio::test]
async fn a_hang_up_without_end_is_an_error_not_the_end() {
    let (_dir, client) = scripted_daemon(vec![event_line(1)]);
    let mut sub = client.subscribe().await.unwrap();
    assert_eq!(sub.next_event().await.unwrap().unwrap().seq, 1);
    let e = sub.next_event().await.unwrap_err();
    assert_eq!(e.kind(), MembershipErrorKind::Unavailable, "{e}");
}
