//! A UDP relay for per-packet loss, delay and reordering (this kernel has no netem).
//!
//! Every node's config names each peer `j` by its relay alias `10.77.0.(100 + j)`, an address
//! the bridge's namespace holds; the relay, threads of the test process in that namespace,
//! takes each packet sent to an alias and forwards it to the real node `10.77.0.j` after the
//! link's delay (plus jitter, hence reordering), or drops it with the link's loss. With no
//! parameters set it forwards at once. The transport does not check source addresses, so the
//! receiving node sees the packet from the alias and answers through its own alias for the
//! sender. Cuts stay routes in the sender's namespace (towards the alias): see [`super::net`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::net;

/// What a directed link does to each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkParams {
    /// Chance of loss, in percent.
    pub loss_pct: u32,
    /// Added one-way delay (ms).
    pub delay_ms: u64,
    /// Extra random delay, uniform in `0..=jitter_ms` (ms): packets overtake each other.
    pub jitter_ms: u64,
}

/// Per directed link `(from, to)`; a missing link is clean.
type Links = BTreeMap<(u32, u32), LinkParams>;

/// Packets the relay forwarded and dropped, over the whole run.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Forwarded.
    pub forwarded: AtomicU64,
    /// Dropped as loss.
    pub dropped: AtomicU64,
}

/// The relay's threads, stopped and joined on drop (before the namespaces go).
pub struct Relay {
    links: Arc<Mutex<Links>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Counts.
    pub stats: Arc<RelayStats>,
}

/// Moves the calling thread into the named network namespace.
pub fn enter_netns(name: &str) {
    let file = std::fs::File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("open netns {name}: {e}"));
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {name}: {e}"));
}

impl Relay {
    /// Starts one thread per node in namespace `ns` (which holds the aliases); returns once
    /// every alias is bound. `seed` seeds the loss and jitter draws.
    pub fn start(ns: &str, size: u32, seed: u64) -> Self {
        let links: Arc<Mutex<Links>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let stats: Arc<RelayStats> = Arc::default();
        let (ready_tx, ready) = mpsc::channel();
        let threads = (1..=size)
            .map(|to| {
                let (ns, links, stop, stats, ready_tx) = (
                    ns.to_string(),
                    links.clone(),
                    stop.clone(),
                    stats.clone(),
                    ready_tx.clone(),
                );
                thread::spawn(move || {
                    enter_netns(&ns);
                    let bound = UdpSocket::bind((net::alias(to).as_str(), net::PORT));
                    let socket = match bound {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("relay for n{to}: {e}")));
                            return;
                        }
                    };
                    let rng = StdRng::seed_from_u64(seed ^ u64::from(to));
                    forward(&socket, to, &links, &stop, &stats, rng);
                })
            })
            .collect();
        let relay = Self {
            links,
            stop,
            threads,
            stats,
        };
        for _ in 1..=size {
            match ready.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("{e}"),
                Err(e) => panic!("the relay did not start: {e}"),
            }
        }
        relay
    }

    /// Sets every link's parameters (links not named are clean).
    pub fn set(&self, links: Links) {
        *self.links.lock().expect("relay links") = links;
    }

    /// Makes every link clean.
    pub fn clear(&self) {
        self.set(Links::new());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The sender of a packet from its source address, when it is one of the nodes.
fn sender(from: SocketAddr) -> Option<u32> {
    match from.ip() {
        IpAddr::V4(v4) if v4.to_string().starts_with(&format!("{}.", net::SUBNET)) => {
            Some(u32::from(v4.octets()[3]))
        }
        _ => None,
    }
}

/// The loop of the thread for node `to`: receive, drop or schedule, send what is due.
fn forward(
    socket: &UdpSocket,
    to: u32,
    links: &Mutex<Links>,
    stop: &AtomicBool,
    stats: &RelayStats,
    mut rng: StdRng,
) {
    let dest: SocketAddr = format!("{}:{}", net::addr(to), net::PORT)
        .parse()
        .expect("a node address");
    let mut queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while queue.peek().is_some_and(|Reverse((due, ..))| *due <= now) {
            if let Some(Reverse((_, _, packet))) = queue.pop() {
                let _ = socket.send_to(&packet, dest);
                stats.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
        let wait = queue
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((due, ..))| {
                due.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        let _ = socket.set_read_timeout(Some(wait));
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some(from) = sender(from) else {
            continue;
        };
        let p = links
            .lock()
            .expect("relay links")
            .get(&(from, to))
            .copied()
            .unwrap_or_default();
        if p.loss_pct > 0 && rng.gen_range(0..100) < p.loss_pct {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let delay = p.delay_ms + rng.gen_range(0..=p.jitter_ms);
        order += 1;
        queue.push(Reverse((
            Instant::now() + Duration::from_millis(delay),
            order,
            buf[..len].to_vec(),
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::super::net::Net;
    use super::*;

    /// Sends `count` datagrams from node 1's namespace to node 2's alias, and counts (and
    /// times) what node 2 receives within `listen`.
    fn probe(net: &Net, count: u32, listen: Duration) -> (u32, Duration) {
        let (ns1, ns2) = (net.ns(1).to_string(), net.ns(2).to_string());
        let receiver = thread::spawn(move || {
            enter_netns(&ns2);
            let s = UdpSocket::bind((net::addr(2).as_str(), net::PORT)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let start = Instant::now();
            let (mut got, mut first) = (0, None);
            let mut buf = [0u8; 64];
            while start.elapsed() < listen {
                if s.recv_from(&mut buf).is_ok() {
                    got += 1;
                    first.get_or_insert(start.elapsed());
                }
            }
            (got, first.unwrap_or(listen))
        });
        thread::sleep(Duration::from_millis(100));
        thread::spawn(move || {
            enter_netns(&ns1);
            let s = UdpSocket::bind((net::addr(1).as_str(), 0)).unwrap();
            for _ in 0..count {
                s.send_to(b"x", (net::alias(2).as_str(), net::PORT))
                    .unwrap();
            }
        })
        .join()
        .unwrap();
        receiver.join().unwrap()
    }

    #[test]
    fn relay_forwards_drops_and_delays() {
        if !super::super::can_run("relay_forwards_drops_and_delays") {
            return;
        }
        let mut net = Net::create(&format!("ocfr{}", std::process::id()), 2);
        let relay = Relay::start(net.bridge_ns(), 2, 7);
        assert_eq!(probe(&net, 20, Duration::from_millis(400)).0, 20, "clean");
        let lossy = LinkParams {
            loss_pct: 100,
            ..LinkParams::default()
        };
        relay.set(Links::from([((1, 2), lossy)]));
        assert_eq!(probe(&net, 20, Duration::from_millis(400)).0, 0, "all lost");
        let slow = LinkParams {
            delay_ms: 300,
            ..LinkParams::default()
        };
        relay.set(Links::from([((1, 2), slow)]));
        let (got, first) = probe(&net, 5, Duration::from_millis(1500));
        assert_eq!(got, 5);
        assert!(first >= Duration::from_millis(300), "held back: {first:?}");
        relay.clear();
        // A route cut towards the alias in the sender's namespace still cuts the link.
        net.set_cuts(&[(1, 2)].into());
        assert_eq!(probe(&net, 20, Duration::from_millis(400)).0, 0, "cut");
        net.heal();
        assert_eq!(probe(&net, 20, Duration::from_millis(400)).0, 20, "healed");
        drop(relay);
    }
}
