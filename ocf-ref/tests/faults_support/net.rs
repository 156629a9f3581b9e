//! The fault test's network: one network namespace per node, joined through a bridge (itself
//! in a namespace of its own), and the cuts the schedule makes.
//!
//! Node `k` is `10.77.0.k/24` on its `eth0`. Its peers reach it through its relay alias
//! `10.77.0.(100 + k)`, held by the bridge's namespace (see [`super::relay`]). A cut of the
//! directed link `from → to` is a route in `from`'s namespace that sends `to`'s alias
//! (`/32`) into a *sink*: a veth pair inside
//! that namespace whose far end takes the frames and drops them (wrong MAC). The sender's
//! `sendto` succeeds, as on a real network that loses packets; a `blackhole` route would make
//! it fail with `EINVAL`, which tells the sender that it is cut off. `to → from` is untouched,
//! so one route is one one-way cut. Flapping takes the node's port on the bridge down and up.
//!
//! Without the relay ([`Net::create_direct`], the fencer's partition test), peers send to each
//! other's own address `10.77.0.k`, and a cut routes that address (`/32`) into the sink.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};

/// The first three octets of the nodes' subnet.
pub const SUBNET: &str = "10.77.0";
/// The UDP port every node listens on (each in its own namespace).
pub const PORT: u16 = 7400;
/// The sink's link-local next hop (the far end of the sink pair, never answering).
const SINK_HOP: &str = "169.254.77.2";

/// Runs `args`, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip -n <ns> -batch -` with `lines`, panicking when it fails.
fn ip_batch(ns: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ip -batch in {ns}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let text = lines.join("\n") + "\n";
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("ip -batch in {ns}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("ip -batch in {ns}: {e}"));
    assert!(
        out.status.success(),
        "ip -n {ns} -batch {lines:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The address of node `id`.
pub fn addr(id: u32) -> String {
    format!("{SUBNET}.{id}")
}

/// The relay alias of node `id`: the address its peers send to.
pub fn alias(id: u32) -> String {
    format!("{SUBNET}.{}", 100 + id)
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    /// Its name (`ip netns list`).
    pub name: String,
}

impl Netns {
    /// Creates `name` (deleting a leftover of that name first) with its loopback up.
    pub fn add(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&["ip", "netns", "add", name]);
        let ns = Self { name: name.into() };
        sh(&["ip", "-n", name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The namespaces, the bridge and the cuts in force. Dropping it deletes every namespace (and
/// with them the veths and the bridge); the processes inside must be gone first.
pub struct Net {
    /// Index `i` is node `i + 1`.
    nodes: Vec<Netns>,
    bridge: Netns,
    cuts: BTreeSet<(u32, u32)>,
    ports_down: BTreeSet<u32>,
    /// Peers send to each other's own address, not to the relay's alias.
    direct: bool,
}

impl Net {
    /// Builds `size` node namespaces named `<prefix>n<k>` and the bridge `<prefix>br`.
    pub fn create(prefix: &str, size: u32) -> Self {
        let bridge = Netns::add(&format!("{prefix}br"));
        let mut net = Self {
            nodes: Vec::new(),
            bridge,
            cuts: BTreeSet::new(),
            ports_down: BTreeSet::new(),
            direct: false,
        };
        let br = net.bridge.name.clone();
        let mut bridge_setup = vec!["link add br0 type bridge".to_string()];
        bridge_setup.extend((1..=size).map(|id| format!("addr add {}/24 dev br0", alias(id))));
        bridge_setup.push("link set br0 up".into());
        ip_batch(&br, &bridge_setup);
        for id in 1..=size {
            let ns = Netns::add(&format!("{prefix}n{id}"));
            let name = ns.name.clone();
            net.nodes.push(ns);
            sh(&[
                "ip",
                "-n",
                &name,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &format!("p{id}"),
                "netns",
                &br,
            ]);
            ip_batch(
                &br,
                &[
                    format!("link set p{id} master br0"),
                    format!("link set p{id} up"),
                ],
            );
            ip_batch(
                &name,
                &[
                    format!("addr add {}/24 dev eth0", addr(id)),
                    "link set eth0 up".into(),
                    "link add sink type veth peer name sinkp".into(),
                    "link set sink up".into(),
                    "link set sinkp up".into(),
                    "addr add 169.254.77.1/30 dev sink".into(),
                    format!("neigh add {SINK_HOP} lladdr 02:00:00:00:00:01 dev sink nud permanent"),
                ],
            );
        }
        net
    }

    /// Like [`Net::create`], for nodes that name each peer by its own address [`addr`] (no
    /// relay): a cut of `from → to` routes `to`'s own address into `from`'s sink. (The
    /// fencer's partition test uses it; the fault test does not.)
    #[allow(dead_code)]
    pub fn create_direct(prefix: &str, size: u32) -> Self {
        let mut net = Self::create(prefix, size);
        net.direct = true;
        net
    }

    /// The address node `from` sends to to reach `to`, and which a cut of `from → to` routes.
    fn target(&self, to: u32) -> String {
        if self.direct { addr(to) } else { alias(to) }
    }

    /// The namespace of node `id`.
    pub fn ns(&self, id: u32) -> &str {
        &self.nodes[id as usize - 1].name
    }

    /// The bridge's namespace (where the relay runs).
    pub fn bridge_ns(&self) -> &str {
        &self.bridge.name
    }

    /// Every namespace's name (the nodes' and the bridge's).
    pub fn names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .chain(std::iter::once(&self.bridge))
            .map(|n| n.name.clone())
            .collect()
    }

    /// Makes the directed cuts exactly `cuts` (`(from, to)`: packets from `from` to `to` are
    /// lost), changing only the routes that differ, one `ip -batch` per sender.
    pub fn set_cuts(&mut self, cuts: &BTreeSet<(u32, u32)>) {
        let mut per_sender: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for &(from, to) in self.cuts.difference(cuts) {
            per_sender
                .entry(from)
                .or_default()
                .push(format!("route del {}/32", self.target(to)));
        }
        for &(from, to) in cuts.difference(&self.cuts) {
            per_sender.entry(from).or_default().push(format!(
                "route add {}/32 via {SINK_HOP} dev sink",
                self.target(to)
            ));
        }
        for (from, lines) in per_sender {
            let ns = self.ns(from).to_string();
            ip_batch(&ns, &lines);
        }
        self.cuts.clone_from(cuts);
    }

    /// Takes node `id`'s port on the bridge down (`up = false`) or up: both directions at once,
    /// and the node's `eth0` loses its carrier.
    pub fn set_port(&mut self, id: u32, up: bool) {
        let state = if up { "up" } else { "down" };
        let br = self.bridge.name.clone();
        ip_batch(&br, &[format!("link set p{id} {state}")]);
        if up {
            self.ports_down.remove(&id);
        } else {
            self.ports_down.insert(id);
        }
    }

    /// Removes every cut and brings every port up.
    pub fn heal(&mut self) {
        self.set_cuts(&BTreeSet::new());
        for id in std::mem::take(&mut self.ports_down) {
            self.set_port(id, true);
        }
    }
}
