//! The cluster fencer's link over a Corosync CPG group, on three real corosync nodes in network
//! namespaces: addressing, the sender's node id, every pair of nodes, 1,000 messages in order,
//! garbage on the group dropped, a refused oversize payload, leaving on drop, and the end of
//! the incoming stream when corosync dies.
//!
//! Each node's link runs on a thread that has entered that node's network namespace (Corosync's
//! IPC is an abstract unix socket, which the network namespace scopes), on a tokio runtime of
//! its own, as the membership tests run their clients. The garbage comes from a second process
//! (a re-run of this test binary inside `ip netns exec`), because CPG admits one member per
//! process per group.

#![cfg(feature = "corosync")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corosync_support;

use std::process::Command;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use corosync_support::{Cluster, can_run, enter_netns, in_netns, runtime};
use ocf_core::NodeId;
use ocf_ref::fencing::cluster::link::{LinkEnds, LinkMessage, MAX_LINK_PAYLOAD};
use ocf_ref::membership::corosync::{CpgLink, CpgLinkError, LinkStats, cpg_link};
use tokio::sync::{mpsc, oneshot};

/// A hang guard, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

/// Set (to the group name) for the child process that puts garbage on the group.
const INJECT: &str = "OCF_FENCE_LINK_INJECT";

/// The garbage the child multicasts: each must be counted as malformed by every link.
fn garbage() -> Vec<Vec<u8>> {
    let mut too_big = b"OCFL\x01\0\0\0\x01".to_vec();
    too_big.resize(9 + MAX_LINK_PAYLOAD + 1, 0);
    vec![
        b"x".to_vec(),
        b"OCFL\x01\0\0".to_vec(),
        b"XXXX\x01\0\0\0\x01hi".to_vec(),
        b"OCFL\x09\0\0\0\x01hi".to_vec(),
        too_big,
    ]
}

/// The injecting half of the test below: it runs this binary again with only this test
/// selected. Without the variable it returns at once.
#[test]
fn child_injects_garbage() {
    let Some(group) = std::env::var_os(INJECT) else {
        return;
    };
    match inject::multicast(group.to_str().unwrap(), &garbage()) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("inject: {e}");
            std::process::exit(1);
        }
    }
}

/// A raw CPG client, so that the test can put on the group what no link would send.
#[allow(unsafe_code)]
mod inject {
    use std::ffi::{c_char, c_int, c_uint, c_void};

    #[repr(C)]
    struct CpgName {
        length: u32,
        value: [c_char; 128],
    }

    /// `cpg_callbacks_t` with no callbacks (this client never dispatches).
    #[repr(C)]
    struct Callbacks {
        deliver: *const c_void,
        confchg: *const c_void,
    }

    const CS_OK: c_int = 1;
    const CS_ERR_TRY_AGAIN: c_int = 6;
    const CPG_TYPE_AGREED: c_int = 2;

    #[link(name = "cpg")]
    unsafe extern "C" {
        fn cpg_initialize(handle: *mut u64, callbacks: *mut Callbacks) -> c_int;
        fn cpg_join(handle: u64, group: *const CpgName) -> c_int;
        fn cpg_mcast_joined(
            handle: u64,
            guarantee: c_int,
            iovec: *const libc::iovec,
            iov_len: c_uint,
        ) -> c_int;
        fn cpg_finalize(handle: u64) -> c_int;
    }

    fn again(what: &str, mut call: impl FnMut() -> c_int) -> Result<(), String> {
        for _ in 0..200 {
            match call() {
                CS_OK => return Ok(()),
                CS_ERR_TRY_AGAIN => std::thread::sleep(std::time::Duration::from_millis(25)),
                rc => return Err(format!("{what} failed: cs_error_t {rc}")),
            }
        }
        Err(format!("{what}: corosync stayed busy"))
    }

    /// Joins `group` and multicasts each of `messages` in agreed order.
    pub fn multicast(group: &str, messages: &[Vec<u8>]) -> Result<(), String> {
        let mut name = CpgName {
            length: group.len() as u32,
            value: [0; 128],
        };
        for (d, s) in name.value.iter_mut().zip(group.as_bytes()) {
            *d = *s as c_char;
        }
        let mut callbacks = Callbacks {
            deliver: std::ptr::null(),
            confchg: std::ptr::null(),
        };
        let mut handle = 0u64;
        // SAFETY: out-pointers valid for the call; the library copies the callbacks.
        again("cpg_initialize", || unsafe {
            cpg_initialize(&raw mut handle, &raw mut callbacks)
        })?;
        // SAFETY: live handle; `name` valid for the call.
        let result =
            again("cpg_join", || unsafe { cpg_join(handle, &raw const name) }).and_then(|()| {
                messages.iter().try_for_each(|m| {
                    let iov = libc::iovec {
                        iov_base: m.as_ptr().cast_mut().cast(),
                        iov_len: m.len(),
                    };
                    // SAFETY: live handle; one iovec over `m`, which outlives the call.
                    again("cpg_mcast_joined", || unsafe {
                        cpg_mcast_joined(handle, CPG_TYPE_AGREED, &raw const iov, 1)
                    })
                })
            });
        // SAFETY: the handle is finalized once.
        unsafe { cpg_finalize(handle) };
        result
    }
}

/// One node's link, opened on a thread inside the node's network namespace. The test thread
/// holds the `CpgLink` (for its stats and members) and the sending end; the node thread
/// forwards what arrives (`None` when the incoming stream ends).
struct Node {
    id: u32,
    link: Option<CpgLink>,
    out: mpsc::Sender<LinkMessage>,
    received: std_mpsc::Receiver<Option<LinkMessage>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Node {
    fn start(id: u32, netns: String, cluster: &str) -> Self {
        let (ready_tx, ready) = std_mpsc::channel();
        let (received_tx, received) = std_mpsc::channel();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let cluster = cluster.to_string();
        let thread = thread::spawn(move || {
            enter_netns(Some(&netns));
            runtime().block_on(async move {
                let mut link = match cpg_link(&cluster).await {
                    Ok(link) => link,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let LinkEnds {
                    outgoing,
                    mut incoming,
                } = link.take_ends().unwrap();
                assert!(link.take_ends().is_none(), "the ends are taken once");
                let _ = ready_tx.send(Ok((link, outgoing)));
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        m = incoming.recv() => {
                            let end = m.is_none();
                            let _ = received_tx.send(m);
                            if end {
                                // Keep the runtime (and the link's task) until told to stop.
                                let _ = (&mut stopped).await;
                                return;
                            }
                        }
                    }
                }
            });
        });
        let (link, out) = match ready.recv_timeout(LIMIT) {
            Ok(Ok(pair)) => pair,
            other => panic!("n{id}: the link did not open: {other:?}"),
        };
        Self {
            id,
            link: Some(link),
            out,
            received,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn link(&self) -> &CpgLink {
        self.link.as_ref().unwrap()
    }

    fn stats(&self) -> LinkStats {
        self.link().stats()
    }

    fn send(&self, to: u32, payload: impl Into<Vec<u8>>) {
        self.out
            .blocking_send(LinkMessage {
                peer: NodeId::new(to),
                payload: payload.into(),
            })
            .unwrap();
    }

    /// The next message delivered to this node's fencer.
    fn recv(&self) -> LinkMessage {
        match self.received.recv_timeout(LIMIT) {
            Ok(Some(m)) => m,
            other => panic!("n{}: expected a message, got {other:?}", self.id),
        }
    }

    /// Waits until the incoming stream has ended (after any messages still queued).
    fn wait_closed(&self) {
        loop {
            match self.received.recv_timeout(LIMIT) {
                Ok(None) => return,
                Ok(Some(m)) => eprintln!("n{}: late message {m:?}", self.id),
                Err(e) => panic!("n{}: the incoming stream did not end: {e}", self.id),
            }
        }
    }

    /// Waits until the group holds links of exactly `nodes`.
    fn wait_members(&self, nodes: &[u32]) {
        let want: Vec<NodeId> = nodes.iter().copied().map(NodeId::new).collect();
        let members = self.link().members();
        let deadline = Instant::now() + LIMIT;
        while *members.borrow() != want {
            assert!(
                Instant::now() < deadline,
                "n{}: group members {:?}, want {want:?}",
                self.id,
                *members.borrow()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.link.take());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn msg(peer: u32, payload: &[u8]) -> LinkMessage {
    LinkMessage {
        peer: NodeId::new(peer),
        payload: payload.to_vec(),
    }
}

#[test]
fn fence_link_over_cpg_on_three_nodes() {
    if !can_run("fence_link_over_cpg_on_three_nodes") {
        return;
    }
    let mut cluster = Cluster::start("fl", 3, 1000);
    cluster.wait_formed(3, LIMIT);
    let nodes: Vec<Node> = (1..=3)
        .map(|id| Node::start(id, cluster.ns(id), "fltest"))
        .collect();
    for n in &nodes {
        n.wait_members(&[1, 2, 3]);
        assert_eq!(n.link().local_node(), NodeId::new(n.id));
        assert_eq!(n.link().group(), "ocf-fence-fltest");
    }
    let [n1, n2, n3] = &nodes[..] else {
        unreachable!()
    };

    // n1 to n2 arrives at n2, from n1. Agreed order keeps one sender's messages in order at
    // every node, so n1 and n3 getting the later markers first proves "hello" skipped them.
    n1.send(2, "hello");
    assert_eq!(n2.recv(), msg(1, b"hello"));
    n1.send(3, "marker");
    n1.send(1, "to myself");
    assert_eq!(n3.recv(), msg(1, b"marker"));
    assert_eq!(n1.recv(), msg(1, b"to myself"));
    assert!(n3.stats().other_destination >= 1, "{:?}", n3.stats());

    // Every node to every node.
    for from in &nodes {
        for to in 1..=3 {
            from.send(to, format!("{}->{to}", from.id));
        }
    }
    for n in &nodes {
        let mut got: Vec<LinkMessage> = (0..3).map(|_| n.recv()).collect();
        got.sort_by_key(|m| m.peer);
        let want: Vec<LinkMessage> = (1..=3)
            .map(|from| msg(from, format!("{from}->{}", n.id).as_bytes()))
            .collect();
        assert_eq!(got, want, "n{}", n.id);
    }

    // 1,000 messages arrive, all and in order.
    for i in 0u32..1000 {
        n3.send(1, i.to_be_bytes());
    }
    for i in 0u32..1000 {
        assert_eq!(n1.recv(), msg(3, &i.to_be_bytes()), "message {i}");
    }

    // Garbage from another process on n2 is counted and dropped by every link; what n2's link
    // sends after it still arrives, and first.
    let before: Vec<u64> = nodes.iter().map(|n| n.stats().malformed).collect();
    let out = Command::new("ip")
        .args(["netns", "exec", &cluster.ns(2)])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child_injects_garbage", "--nocapture"])
        .env(INJECT, "ocf-fence-fltest")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "injector: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for n in &nodes {
        n2.send(n.id, "after garbage");
    }
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.recv(), msg(2, b"after garbage"), "n{}", n.id);
        let stats = n.stats();
        assert_eq!(
            stats.malformed - before[i],
            garbage().len() as u64,
            "n{}: {stats:?}",
            n.id
        );
    }

    // An oversize payload is refused at the sender; the next message goes through.
    n1.send(2, vec![7u8; MAX_LINK_PAYLOAD + 1]);
    n1.send(2, "small");
    assert_eq!(n2.recv(), msg(1, b"small"));
    assert_eq!(n1.stats().refused, 1);
    let max = vec![8u8; MAX_LINK_PAYLOAD];
    n1.send(2, max.clone());
    assert_eq!(n2.recv(), msg(1, &max));

    let stats = n1.stats();
    assert_eq!(stats.incoming_full, 0);
    assert_eq!(stats.send_gave_up, 0);
    eprintln!("n1 stats: {stats:?}");

    let mut nodes = nodes;
    // Dropping n3's link leaves the group: the others see it go, its fencer's stream ends.
    drop(nodes[2].link.take());
    nodes[2].wait_closed();
    nodes[0].wait_members(&[1, 2]);
    nodes[1].wait_members(&[1, 2]);

    // Corosync dies under n2's link: its fencer's stream ends, and sends fail once the task
    // is gone.
    cluster.kill9(2);
    nodes[1].wait_closed();
    nodes[0].wait_members(&[1]);

    // close() returns once the group is left and the connection closed: the stream has ended.
    let link = nodes[0].link.take().unwrap();
    runtime().block_on(link.close());
    nodes[0].wait_closed();
}

#[test]
fn without_corosync_the_link_is_unavailable() {
    if !can_run("without_corosync_the_link_is_unavailable") {
        return;
    }
    in_netns(None, || {
        let err = runtime().block_on(cpg_link("nobody")).unwrap_err();
        assert!(
            matches!(err, CpgLinkError::Unavailable { ref group, .. } if group == "ocf-fence-nobody"),
            "{err:?}"
        );
        assert!(err.to_string().contains("is corosync running"), "{err}");
    })
    .join()
    .unwrap();
}
