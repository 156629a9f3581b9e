#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The cluster fencer across real `ocf node` processes on loopback, with a spy fence agent:
//! a node is shot once, whoever asks and from whichever node.

mod nodes_support;

use std::time::Duration;

use nodes_support::{Layout, Nodes, OCF};
use ocf_fencing::{FenceAction, FenceErrorKind, FenceRequest, Fencer, HistoryFilter};

fn request(target: &str, who: &str) -> FenceRequest {
    FenceRequest::new(
        target.parse().unwrap(),
        FenceAction::Reboot,
        who.parse().unwrap(),
    )
    .with_timeout(Duration::from_secs(40))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_requesters_on_five_nodes_cause_one_agent_call() {
    let c = Nodes::start(
        5,
        &Layout {
            with_device: vec![1, 2, 3, 4],
            delay_s: 1,
            ..Layout::default()
        },
    );
    c.wait_for_view(&[0, 1, 2, 3, 4]).await;
    let mut asks = Vec::new();
    for n in &c.nodes {
        for who in ["ha", "hpc"] {
            let f = n.fencer();
            let r = request("n5", &format!("{who}@{}", n.name));
            asks.push(tokio::spawn(async move { f.fence(r).await }));
        }
    }
    let mut records = Vec::new();
    for a in asks {
        match a.await.unwrap() {
            Ok(r) => records.push(r),
            Err(e) => panic!("a requester failed: {e}\n{}", c.logs()),
        }
    }
    let calls = c.calls();
    assert_eq!(
        calls,
        vec![("reboot".to_owned(), "n5".to_owned())],
        "{records:#?}"
    );
    println!(
        "device calls for the incident of ten requesters on five nodes: {}",
        calls.len()
    );
    let first = &records[0];
    assert!(records.iter().all(|r| r.id == first.id && r.succeeded()));
    let all = records.iter().max_by_key(|r| r.requesters.len()).unwrap();
    assert_eq!(all.requesters.len(), 10, "{all:#?}");
    assert_ne!(first.executions[0].node.as_str(), "n5");
    // The history is the same on n1–n4.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h1 = c.nodes[0]
        .fencer()
        .history(&HistoryFilter::all())
        .await
        .unwrap();
    assert!(h1.iter().any(|r| r.id == first.id));
    for n in &c.nodes[1..4] {
        assert_eq!(
            n.fencer().history(&HistoryFilter::all()).await.unwrap(),
            h1,
            "{}",
            n.name
        );
    }
    // A late request through the CLI, without an incident id: answered from history.
    let out = std::process::Command::new(OCF)
        .args([
            "fence",
            "request",
            "n5",
            "--requester",
            "late@n3",
            "--json",
            "--config",
        ])
        .arg(&c.nodes[2].config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let late: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(late["id"], first.id, "{late}");
    assert_eq!(c.calls().len(), 1, "a late request shot again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_killed_mid_fence_is_replaced_and_everyone_gets_one_outcome() {
    let mut c = Nodes::start(
        5,
        &Layout {
            with_device: vec![1, 2, 3, 4],
            delay_s: 4,
            ..Layout::default()
        },
    );
    c.wait_for_view(&[0, 1, 2, 3, 4]).await;
    let mut asks = Vec::new();
    for n in &c.nodes {
        let f = n.fencer();
        let r = request("n5", &format!("ha@{}", n.name));
        asks.push((
            n.name.clone(),
            tokio::spawn(async move { f.fence(r).await }),
        ));
    }
    // The executor is whoever the spy saw first; find it in the history.
    let mut executor = None;
    for _ in 0..100 {
        let h = c.nodes[4]
            .fencer()
            .history(&HistoryFilter::all())
            .await
            .unwrap();
        if let Some(e) = h.last().and_then(|r| r.executions.first()) {
            executor = Some(e.node.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let executor = executor.expect("assigned");
    let idx = c.nodes.iter().position(|n| n.name == executor).unwrap();
    c.nodes[idx].kill9();
    let mut outcome = None;
    for (who, a) in asks {
        let r = a.await.unwrap();
        if who == executor {
            // Its node died: the connection broke.
            assert!(r.is_err());
            continue;
        }
        let r = r.unwrap_or_else(|e| panic!("{who}: {e}\n{}", c.logs()));
        assert_eq!(r.executions.len(), 2, "{r:#?}");
        assert_eq!(r.executions[0].node.as_str(), executor);
        assert!(r.succeeded());
        let o = (r.id, r.outcome.clone());
        assert!(outcome.as_ref().is_none_or(|p| *p == o));
        outcome = Some(o);
    }
    let n5: Vec<_> = c.calls().into_iter().filter(|(_, p)| p == "n5").collect();
    assert_eq!(
        n5.len(),
        2,
        "one call by the dead executor, one by its successor"
    );
    println!(
        "device calls for n5 with the executor killed mid-fence: {}",
        n5.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_on_the_socket_and_cli_are_typed_errors() {
    let c = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 0,
            ..Layout::default()
        },
    );
    c.wait_for_view(&[0, 1, 2]).await;
    // A target no device knows.
    let e = c.nodes[0]
        .fencer()
        .fence(request("nosuch", "ha@n1"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::NoDevice, "{e}");
    // Bad input on the CLI: nothing sent, usage error.
    for args in [
        vec!["fence", "request", "n2", "--action", "explode"],
        vec!["fence", "request", "bad name"],
        vec!["fence", "request", "n2", "--incident", &"x".repeat(300)],
    ] {
        let out = std::process::Command::new(OCF)
            .args(&args)
            .arg("--config")
            .arg(&c.nodes[0].config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
    }
    assert!(c.calls().is_empty());
    // Garbage on the socket does not disturb the node.
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&c.nodes[0].socket).unwrap();
        s.write_all(b"{\"op\":\"fence\",\"request\":{\"target\":\"n2\"}}\nnot json\n")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.lines().all(|l| l.contains("\"ok\":false")), "{reply}");
    }
    let r = c.nodes[1]
        .fencer()
        .fence(request("n3", "ha@n2"))
        .await
        .unwrap();
    assert!(r.succeeded());
    assert_eq!(c.calls().len(), 1);
}

/// "What machines can you reset?": each node answers for its own devices, a configured host
/// list as it is and a device without one by asking it (here cluster-glue's `null` plugin,
/// which lower-cases its host list).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_says_what_its_own_devices_can_fence() {
    let glue =
        "[[devices]]\nid = \"glue\"\nagent = \"stonith:null\"\nparams = { hostlist = \"N7 n8\" }\n";
    let c = Nodes::start_with(
        2,
        &Layout {
            with_device: vec![1],
            ..Layout::default()
        },
        glue,
    );
    c.wait_for_view(&[0, 1]).await;
    let (n1, errors) = c.nodes[0].fencer().targets().await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let names = |v: &[ocf_core::NodeName]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(names(&n1), ["n1", "n2", "n7", "n8"]);
    let out = std::process::Command::new(OCF)
        .args(["fence", "targets", "--json", "--config"])
        .arg(&c.nodes[1].config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["targets"], serde_json::json!(["n7", "n8"]));
    assert_eq!(json["errors"], serde_json::json!([]));
}

/// The cluster fencer answers a requester that asks again from history, and lists it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_asking_again_is_answered_from_history_and_listed_once() {
    let c = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2],
            ..Layout::default()
        },
    );
    c.wait_for_view(&[0, 1, 2]).await;
    let mut last = None;
    for round in 0..5 {
        let node = &c.nodes[round % 2];
        let r = node
            .fencer()
            .fence(request("n3", "slurm@ctl"))
            .await
            .unwrap();
        last = Some(r);
    }
    let record = last.unwrap();
    let names: Vec<String> = record.requesters.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["slurm@ctl"], "{record:#?}");
    assert_eq!(c.calls().len(), 1, "asked five times, shot once");
}
