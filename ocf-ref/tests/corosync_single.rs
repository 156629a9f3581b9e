//! One corosync on 127.0.0.1 (in a private network and mount namespace): the view through our
//! API matches corosync's own tools; corosync absent, refusing, killed and restarted.

#![cfg(feature = "corosync")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corosync_support;

use std::time::Duration;

use corosync_support::{
    Client, Corosync, can_run, corosync_conf, in_netns, quorumtool_members, quorumtool_ring,
    runtime, workdir, write,
};
use ocf_core::NodeId;
use ocf_membership::{EventKind, Membership, MembershipError};
use ocf_ref::membership::corosync::CorosyncMembership;

const LIMIT: Duration = Duration::from_secs(30);

fn wait_ready(netns: Option<&str>) {
    let deadline = std::time::Instant::now() + LIMIT;
    while quorumtool_members(netns).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "corosync never came up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn single_node_view_eviction_and_reconnect() {
    if !can_run("single_node_view_eviction_and_reconnect") {
        return;
    }
    in_netns(None, || {
        let dir = workdir();
        let conf = dir.path().join("corosync.conf");
        let nodes = [(1, "n1".to_string(), "127.0.0.1".to_string())];
        write(&conf, &corosync_conf("ocfsingle", 1000, &nodes));

        // Nothing runs in this fresh namespace yet: a typed error naming corosync.
        let err = runtime()
            .block_on(CorosyncMembership::connect())
            .unwrap_err();
        assert!(
            matches!(err, MembershipError::Unavailable { ref engine, .. } if engine == "corosync"),
            "{err:?}"
        );
        assert!(err.to_string().contains("is corosync running"), "{err}");

        let mut first = Corosync::start(
            None,
            &conf,
            &dir.path().join("state"),
            &dir.path().join("first.log"),
        );
        wait_ready(None);
        let mut client = Client::start("n1", None);
        let view = client
            .wait_until("the first view", LIMIT, |v, _| v.is_some())
            .unwrap();
        assert!(view.is_quorate(), "{view:?}");
        let ours: Vec<(u32, String)> = view
            .members()
            .iter()
            .map(|m| (m.id.get(), m.name.to_string()))
            .collect();
        assert_eq!(ours, vec![(1, "n1".to_string())]);
        assert_eq!(ours, quorumtool_members(None));
        let (rep, seq) = quorumtool_ring(None);
        assert_eq!(
            (view.id.coordinator, view.id.instance),
            (NodeId::new(rep), seq)
        );
        assert_eq!(view.quorum().expected_votes, 1);
        assert_eq!(view.quorum().threshold, 1);

        let local = runtime().block_on(async {
            let m = CorosyncMembership::connect().await.unwrap();
            let json = serde_json::to_value(m.current_view().await.unwrap().unwrap()).unwrap();
            assert_eq!(json["members"][0]["name"], "n1");
            assert_eq!(json["quorate"], true);
            m.local_node().await.unwrap()
        });
        assert_eq!(local, NodeId::new(1));

        // corosync dies under the client: evicted, with the last view.
        first.kill9();
        client.wait_until("evicted", LIMIT, |_, e| {
            e.is_some_and(|e| e.kind == EventKind::Evicted && e.view.id == view.id)
        });

        // It comes back: the client reconnects by itself and installs a view again.
        let _second = Corosync::start(
            None,
            &conf,
            &dir.path().join("state"),
            &dir.path().join("second.log"),
        );
        let again = client
            .wait_until("a view after the restart", LIMIT, |v, _| {
                v.is_some_and(ocf_membership::View::is_quorate)
            })
            .unwrap();
        assert_eq!(again.member_ids().collect::<Vec<_>>(), vec![NodeId::new(1)]);
        // corosync kept its ring sequence in its state directory: the view id still grows.
        assert!(again.id > view.id, "{} after {}", again.id, view.id);
        let seqs: Vec<u64> = client.events.iter().map(|e| e.seq).collect();
        for pair in seqs.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "gapless sequence: {seqs:?}");
        }
    })
    .join()
    .unwrap();
}

/// Set for the child process of [`non_root_client_is_refused_with_the_way_out`].
const CHILD: &str = "OCF_COROSYNC_TEST_CHILD";

/// The unprivileged half of [`non_root_client_is_refused_with_the_way_out`]: that test runs
/// this binary again, as `nobody`, with only this test selected. Without the variable it
/// returns at once.
#[test]
fn child_connects_and_reports() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    match runtime().block_on(CorosyncMembership::connect()) {
        Ok(_) => println!("CHILD-RESULT connected"),
        Err(e) => println!("CHILD-RESULT {e:?} / {e}"),
    }
}

#[test]
fn non_root_client_is_refused_with_the_way_out() {
    use std::os::unix::process::CommandExt;
    if !can_run("non_root_client_is_refused_with_the_way_out") {
        return;
    }
    in_netns(None, || {
        let dir = workdir();
        let conf = dir.path().join("corosync.conf");
        let nodes = [(1, "n1".to_string(), "127.0.0.1".to_string())];
        write(&conf, &corosync_conf("ocfnonroot", 1000, &nodes));
        let _corosync = Corosync::start(
            None,
            &conf,
            &dir.path().join("state"),
            &dir.path().join("corosync.log"),
        );
        wait_ready(None);
        // Spawned from this thread, the child shares its network namespace (and so the
        // corosync above); `uid` also drops root's supplementary groups.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_connects_and_reports", "--nocapture"])
            .env(CHILD, "1")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("CHILD-RESULT"))
            .unwrap_or_else(|| {
                panic!(
                    "no result from the child: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(line.contains("PermissionDenied"), "{line}");
        assert!(line.contains("uidgid"), "{line}");
        assert!(line.contains("uid 65534"), "{line}");
    })
    .join()
    .unwrap();
}

#[test]
fn without_a_quorum_provider_views_come_from_the_cpg_totem_ring() {
    if !can_run("without_a_quorum_provider_views_come_from_the_cpg_totem_ring") {
        return;
    }
    in_netns(None, || {
        let dir = workdir();
        let conf = dir.path().join("corosync.conf");
        let nodes = [(3, "solo".to_string(), "127.0.0.1".to_string())];
        let text = corosync_conf("ocfnoquorum", 1000, &nodes)
            .replace("quorum {\n  provider: corosync_votequorum\n}\n", "");
        assert!(!text.contains("votequorum"), "{text}");
        write(&conf, &text);
        let _corosync = Corosync::start(
            None,
            &conf,
            &dir.path().join("state"),
            &dir.path().join("corosync.log"),
        );
        // quorumtool needs a provider; cmapctl answers as soon as corosync serves clients.
        let deadline = std::time::Instant::now() + LIMIT;
        while !std::process::Command::new("corosync-cmapctl")
            .arg("runtime.members")
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "corosync never came up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The view arrives only through CPG's initial totem configuration (delivered on join
        // because ocf asks for it), since no quorum notifications come without a provider.
        let mut client = Client::start("solo", None);
        let view = client
            .wait_until("a view from the totem ring", LIMIT, |v, _| v.is_some())
            .unwrap();
        assert_eq!(view.member_ids().collect::<Vec<_>>(), vec![NodeId::new(3)]);
        assert_eq!(view.id.coordinator, NodeId::new(3));
        assert!(
            view.is_quorate(),
            "without a provider corosync counts every ring as quorate"
        );
        assert_eq!(view.members()[0].name.as_str(), "solo");
    })
    .join()
    .unwrap();
}

#[test]
fn two_local_subscribers_see_the_same_sequence_across_a_restart() {
    if !can_run("two_local_subscribers_see_the_same_sequence_across_a_restart") {
        return;
    }
    in_netns(None, || {
        let dir = workdir();
        let conf = dir.path().join("corosync.conf");
        let state = dir.path().join("state");
        let nodes = [(2, "n2".to_string(), "127.0.0.1".to_string())];
        write(&conf, &corosync_conf("ocftwosubs", 1000, &nodes));
        let mut first = Corosync::start(None, &conf, &state, &dir.path().join("first.log"));
        wait_ready(None);
        runtime().block_on(async {
            let options = corosync_support::test_options();
            let m = CorosyncMembership::connect_with(options).await.unwrap();
            let mut a = m.subscribe().await.unwrap();
            let mut b = m.subscribe().await.unwrap();
            assert_eq!(a.initial_view(), b.initial_view());
            assert!(a.initial_view().is_some());
            first.kill9();
            let _second = Corosync::start(None, &conf, &state, &dir.path().join("second.log"));
            let mut seen = [Vec::new(), Vec::new()];
            for (sub, seen) in [&mut a, &mut b].into_iter().zip(seen.iter_mut()) {
                loop {
                    let e = tokio::time::timeout(LIMIT, sub.next_event())
                        .await
                        .expect("events keep coming")
                        .unwrap()
                        .unwrap();
                    let done = e.kind != EventKind::Evicted;
                    seen.push(e);
                    if done {
                        break;
                    }
                }
            }
            assert_eq!(seen[0], seen[1]);
            let kinds: Vec<EventKind> = seen[0].iter().map(|e| e.kind).collect();
            assert_eq!(kinds, vec![EventKind::Evicted, EventKind::NewMembership]);
        });
    })
    .join()
    .unwrap();
}
