//! A running engine on loopback under hostile packets: garbage, forgeries and replays are
//! dropped and counted, and the node keeps working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use ocf_core::NodeId;
use ocf_ref::membership::builtin::BuiltinEngine;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::wire::Codec;
use ocf_ref::membership::config::NodeConfig;
use ocf_ref::membership::protocol::{Body, Envelope};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packets_are_dropped_and_counted() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "cluster = \"t\"\nnode_id = 1\nkey_file = \"/unused\"\n[[nodes]]\nid = 1\nname = \"n1\"\naddress = \"127.0.0.1:{port}\"\n[[nodes]]\nid = 2\nname = \"n2\"\naddress = \"{peer_addr}\"\n"
    );
    let config = NodeConfig::parse(&text, std::path::Path::new("t.toml")).unwrap();
    let key = ClusterKey::random();
    let engine = BuiltinEngine::start(&config, &key).await.unwrap();
    let target = engine.address();
    let stats = engine.stats().clone();

    let ping = Envelope {
        from: NodeId::new(2),
        inc: 42,
        refute: 0,
        view: None,
        gossip: Vec::new(),
        body: Body::Ping { probe: 9 },
    };
    let good = Codec::new("t", &key).encode(&ping, 1).unwrap();
    let forged = Codec::new("t", &ClusterKey::random())
        .encode(&ping, 2)
        .unwrap();
    let other_cluster = Codec::new("u", &key).encode(&ping, 3).unwrap();
    let mut stranger = ping.clone();
    stranger.from = NodeId::new(77);
    let stranger = Codec::new("t", &key).encode(&stranger, 4).unwrap();

    peer.send_to(b"not a packet at all", target).unwrap();
    peer.send_to(&vec![0u8; 60_000], target).unwrap();
    peer.send_to(&forged, target).unwrap();
    peer.send_to(&other_cluster, target).unwrap();
    peer.send_to(&stranger, target).unwrap();
    peer.send_to(&good, target).unwrap();
    peer.send_to(&good, target).unwrap();

    // The genuine ping is answered (the node still works), once.
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 70_000];
    let codec = Codec::new("t", &key);
    let mut answered = false;
    while !answered {
        let (n, _) = peer
            .recv_from(&mut buf)
            .expect("the node answers the genuine ping");
        if let Ok((env, _)) = codec.decode(&buf[..n]) {
            answered = matches!(env.body, Body::Ack { probe: 9 });
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.replayed.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stats.malformed.load(Ordering::Relaxed),
        2,
        "garbage and zeros"
    );
    assert_eq!(
        stats.forged.load(Ordering::Relaxed),
        2,
        "wrong key, wrong cluster"
    );
    assert_eq!(stats.unknown_sender.load(Ordering::Relaxed), 1);
    assert_eq!(stats.replayed.load(Ordering::Relaxed), 1);
    assert!(stats.received.load(Ordering::Relaxed) >= 1);
    engine.shutdown().await;
}
