#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `oc_event.h` from C: a CCM-style client, written only against the header, runs beside three
//! `ocf node` processes and receives the same views in the same order as
//! `ocf members --watch --json` on its node, through a kill -9 and a rejoin; the class ends
//! when its node goes away. Under valgrind: no invalid access, no definite leak.

mod capi_support;
mod nodes_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capi_support::{VALGRIND_ERROR, checked, report};
use nodes_support::{Layout, Nodes, ocf};
use ocf_membership::{EventKind, MembershipEvent, View};

/// A child whose stdout lines are collected by a thread; killed and reaped on drop.
struct Lines {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `ok` holds for the lines so far (60 s hang guard).
    fn wait_for(&self, what: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = self.snapshot();
            if ok(&lines) {
                return lines;
            }
            assert!(Instant::now() < deadline, "never {what}: {lines:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the child to exit (30 s hang guard).
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running: {:#?}",
                self.snapshot()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One delivery as the C client printed it: (event, instance, member ids, in, out, me).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivered {
    event: String,
    instance: u32,
    members: Vec<u32>,
    joined: Vec<u32>,
    out: Vec<u32>,
    me: i64,
}

fn ids(text: &str) -> Vec<u32> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.split(':').next().unwrap().parse().unwrap())
        .collect()
}

fn parse_delivery(line: &str) -> Option<Delivered> {
    let rest = line.strip_prefix("EV ")?;
    let mut words = rest.split(' ');
    let event = words.next()?.to_owned();
    let mut d = Delivered {
        event,
        instance: 0,
        members: vec![],
        joined: vec![],
        out: vec![],
        me: -1,
    };
    for w in words {
        let (k, v) = w.split_once('=')?;
        match k {
            "instance" => d.instance = v.parse().ok()?,
            "members" => d.members = ids(v),
            "in" => d.joined = ids(v),
            "out" => d.out = ids(v),
            "me" => d.me = v.parse().ok()?,
            _ => {}
        }
    }
    Some(d)
}

/// What CCM's rules make of the watch's lines (its first view, then its events), derived here
/// on their own: a view with quorum is NEW_MEMBERSHIP (PRIMARY_RESTORED when it ends a time
/// without quorum the client was told of, or follows a first view without quorum); losing
/// quorum is NOT_PRIMARY with the last primary membership, once; views without quorum are not
/// shown; EVICTED has no membership. Members as ids, oldest first.
fn expected(watch: &[String]) -> Vec<(String, u32, Vec<u32>)> {
    let ids = |view: &View| {
        let mut members: Vec<(u64, u32)> = view
            .members()
            .iter()
            .map(|m| (m.born_on.map_or(0, |b| b.instance), m.id.get()))
            .collect();
        members.sort_unstable();
        (
            view.id.instance as u32,
            members.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
        )
    };
    let mut out = Vec::new();
    let mut primary: Option<(u32, Vec<u32>)> = None;
    let mut given_any = false;
    for (i, line) in watch.iter().enumerate() {
        let (kind, view): (Option<EventKind>, View) = if i == 0 {
            let first: serde_json::Value = serde_json::from_str(line).unwrap();
            match first.get("initial_view").filter(|v| !v.is_null()) {
                Some(v) => (None, serde_json::from_value(v.clone()).unwrap()),
                None => continue,
            }
        } else {
            let event: MembershipEvent = serde_json::from_str(line).unwrap();
            (Some(event.kind), event.view)
        };
        match kind {
            Some(EventKind::Evicted) => out.push(("EVICTED".to_owned(), 0, Vec::new())),
            Some(EventKind::NotPrimary) => {
                if let Some((instance, members)) = primary.take() {
                    out.push(("NOT_PRIMARY".to_owned(), instance, members));
                }
            }
            _ if view.is_quorate() => {
                let restored =
                    kind == Some(EventKind::PrimaryRestored) || (primary.is_none() && given_any);
                let (instance, members) = ids(&view);
                let name = if restored {
                    "PRIMARY_RESTORED"
                } else {
                    "NEW_MEMBERSHIP"
                };
                out.push((name.to_owned(), instance, members.clone()));
                primary = Some((instance, members));
                given_any = true;
            }
            _ => {}
        }
    }
    out
}

/// `ocf members --watch --json` and the C client (under valgrind), both on node 1.
struct Observed {
    watch: Lines,
    client: Lines,
    log: std::path::PathBuf,
}

/// Starts the watch and the client on node 1 and waits for their first view.
fn observe(nodes: &Nodes, bin: &Path) -> Observed {
    let mut watch_cmd = Command::new(ocf());
    watch_cmd
        .args(["members", "--watch", "--json", "--config"])
        .arg(&nodes.nodes[0].config);
    let watch = Lines::start(watch_cmd);
    let log = nodes.dir.path().join("valgrind.log");
    let mut c_cmd = checked(bin, &log);
    c_cmd.env("OCF_SOCKET", &nodes.nodes[0].socket);
    let client = Lines::start(c_cmd);
    watch.wait_for("the watch's first view", |l| !l.is_empty());
    client.wait_for("the client's first membership", |l| {
        l.iter().any(|l| l.starts_with("EV "))
    });
    Observed { watch, client, log }
}

/// Waits until both saw the view of `last_instance`, kills node 1 (the class must end and the
/// client exit cleanly, without a memory error), and checks the client was given exactly what
/// CCM's rules make of the watch's lines. Returns the deliveries.
fn finish(nodes: &mut Nodes, mut seen: Observed, last_instance: u32) -> Vec<Delivered> {
    seen.client.wait_for("the client's last view", |l| {
        l.iter()
            .filter_map(|l| parse_delivery(l))
            .any(|d| d.instance == last_instance)
    });
    let watched = seen.watch.wait_for("the watch's last view", |l| {
        l.iter()
            .any(|l| l.contains(&format!("\"instance\":{last_instance},")))
    });
    nodes.nodes[0].kill9();
    let status = seen.client.wait_exit();
    let lines = seen.client.snapshot();
    assert_ne!(status.code(), Some(VALGRIND_ERROR), "{}", report(&seen.log));
    assert!(status.success(), "{lines:#?}");
    let end = lines
        .iter()
        .find(|l| l.starts_with("END "))
        .expect("an END line");
    assert!(end.contains("n1.sock"), "the end says which node: {end}");
    let delivered: Vec<Delivered> = lines.iter().filter_map(|l| parse_delivery(l)).collect();
    let got: Vec<(String, u32, Vec<u32>)> = delivered
        .iter()
        .map(|d| (d.event.clone(), d.instance, d.members.clone()))
        .collect();
    assert_eq!(
        got,
        expected(&watched),
        "client: {lines:#?}\nwatch: {watched:#?}"
    );
    check_in_and_out(&delivered);
    eprintln!(
        "event order: {} deliveries, the same as `ocf members --watch` ({:?})",
        got.len(),
        got.iter()
            .map(|(e, i, m)| (e.as_str(), *i, m.len()))
            .collect::<Vec<_>>()
    );
    delivered
}

#[test]
fn a_ccm_client_sees_what_ocf_members_watch_sees_through_a_kill_and_a_rejoin() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut nodes = Nodes::start(3, &Layout::default());
    rt.block_on(nodes.wait_for_view(&[0, 1, 2]));
    let dir = nodes.dir.path().to_owned();
    let bin = capi_support::compile_ocf("membership_client.c", &dir.join("membership_client"));
    let seen = observe(&nodes, &bin);

    unregister_inside_the_first_callback(&bin, &dir, &nodes.nodes[1].config);

    // Kill -9 n3, then bring it back.
    nodes.nodes[2].kill9();
    rt.block_on(nodes.wait_for_view(&[0, 1]));
    nodes.spawn(2);
    let last = rt.block_on(nodes.wait_for_view(&[0, 1, 2]));
    let delivered = finish(&mut nodes, seen, last.id.instance as u32);
    assert!(
        delivered.len() >= 3,
        "a kill and a rejoin make at least three views: {delivered:?}"
    );
    assert!(
        delivered.iter().all(|d| d.event == "NEW_MEMBERSHIP"),
        "two of three keep quorum: {delivered:?}"
    );
    assert!(
        delivered.iter().any(|d| d.out == [3]),
        "n3's loss: {delivered:?}"
    );
    assert!(
        delivered.iter().skip(1).any(|d| d.joined == [3]),
        "n3's return: {delivered:?}"
    );
}

/// Quorum lost and regained, from C: n2 and n3 are killed, so n1 alone has no quorum
/// (NOT_PRIMARY with the old membership, then nothing while it is alone), and they come back
/// (PRIMARY_RESTORED).
#[test]
fn a_ccm_client_is_told_when_quorum_goes_and_comes_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut nodes = Nodes::start(3, &Layout::default());
    let first = rt.block_on(nodes.wait_for_view(&[0, 1, 2]));
    let bin = capi_support::compile_ocf(
        "membership_client.c",
        &nodes.dir.path().join("membership_client"),
    );
    let seen = observe(&nodes, &bin);

    nodes.nodes[1].kill9();
    nodes.nodes[2].kill9();
    rt.block_on(nodes.wait_for_views("n1 alone, without quorum", &[0], |v| {
        v[0].as_ref()
            .is_some_and(|v| !v.is_quorate() && v.members().len() == 1)
    }));
    seen.client.wait_for("NOT_PRIMARY", |l| {
        l.iter().any(|l| l.starts_with("EV NOT_PRIMARY"))
    });
    nodes.spawn(1);
    nodes.spawn(2);
    let last = rt.block_on(nodes.wait_for_view(&[0, 1, 2]));
    let delivered = finish(&mut nodes, seen, last.id.instance as u32);

    let not_primary = delivered
        .iter()
        .find(|d| d.event == "NOT_PRIMARY")
        .expect("NOT_PRIMARY");
    assert_eq!(
        (not_primary.instance, not_primary.members.len()),
        (first.id.instance as u32, 3),
        "NOT_PRIMARY carries the last primary membership: {delivered:?}"
    );
    assert!(
        delivered.iter().any(|d| d.event == "PRIMARY_RESTORED"),
        "{delivered:?}"
    );
    assert!(
        delivered.iter().all(|d| d.members.len() >= 2),
        "a membership without quorum is not shown: {delivered:?}"
    );
}

/// A second client finds its node through OCF_NODE_CONFIG (n2) and unregisters inside its
/// first callback: it must exit cleanly with nothing leaked.
fn unregister_inside_the_first_callback(bin: &Path, dir: &Path, config: &Path) {
    let log2 = dir.join("valgrind-unregister.log");
    let mut second = checked(bin, &log2);
    second
        .args(["--unregister-after", "1"])
        .env_remove("OCF_SOCKET")
        .env("OCF_NODE_CONFIG", config);
    let second = second.output().unwrap();
    let second_out = String::from_utf8_lossy(&second.stdout).into_owned();
    assert_ne!(
        second.status.code(),
        Some(VALGRIND_ERROR),
        "{}",
        report(&log2)
    );
    assert!(second.status.success(), "{second_out}");
    let only = second_out
        .lines()
        .filter(|l| l.starts_with("EV "))
        .collect::<Vec<_>>();
    assert_eq!(only.len(), 1, "{second_out}");
    assert_eq!(parse_delivery(only[0]).unwrap().me, 2, "{second_out}");
}

/// "in" and "out" add up from one delivery to the next (everyone is in at first), and the
/// client's own node is recognised.
fn check_in_and_out(delivered: &[Delivered]) {
    let mut previous: Vec<u32> = Vec::new();
    // NOT_PRIMARY repeats the last membership as it was given; EVICTED carries none.
    for d in delivered
        .iter()
        .filter(|d| d.event != "NOT_PRIMARY" && d.event != "EVICTED")
    {
        let joined: Vec<u32> = d
            .members
            .iter()
            .copied()
            .filter(|m| !previous.contains(m))
            .collect();
        let left: Vec<u32> = previous
            .iter()
            .copied()
            .filter(|m| !d.members.contains(m))
            .collect();
        let (mut j, mut o) = (d.joined.clone(), d.out.clone());
        j.sort_unstable();
        o.sort_unstable();
        let (mut jw, mut ow) = (joined, left);
        jw.sort_unstable();
        ow.sort_unstable();
        assert_eq!((j, o), (jw, ow), "{d:?}");
        assert_eq!(
            d.me, 1,
            "n1 is always a member here and is this client's node: {d:?}"
        );
        previous.clone_from(&d.members);
    }
}

#[test]
fn activation_without_a_node_says_which_socket_it_tried() {
    let dir = tempfile::tempdir().unwrap();
    let bin = capi_support::compile_ocf("membership_client.c", &dir.path().join("client"));
    let log = dir.path().join("valgrind.log");
    let missing = dir.path().join("nobody.sock");
    let out = checked(&bin, &log)
        .env("OCF_SOCKET", &missing)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(VALGRIND_ERROR), "{}", report(&log));
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ACTIVATE "))
        .expect("ACTIVATE line");
    assert!(
        line.starts_with(&format!("ACTIVATE {} ", libc::ENOENT)),
        "{line}"
    );
    assert!(
        line.contains("nobody.sock") && line.contains("OCF_SOCKET"),
        "{line}"
    );

    // A node.toml that cannot be read is named too.
    let out = Command::new(&bin)
        .env_remove("OCF_SOCKET")
        .env("OCF_NODE_CONFIG", dir.path().join("missing.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("missing.toml") && text.contains("OCF_NODE_CONFIG"),
        "{text}"
    );
}
