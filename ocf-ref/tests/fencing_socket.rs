#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The node daemon's socket serving a fencer: a real `LocalFencer` with native devices served
//! on a Unix socket in a temp dir, asked through `DaemonFencer`, through raw lines (hostile
//! ones too), and through the `ocf fence request/history/watch` binary; and the fencer
//! conformance suite run on `DaemonFencer`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ocf_conformance::fencing::{FencerHarness, FencerOptions, run_fencer};
use ocf_conformance::{CheckOutcome, Clock};
use ocf_core::{NodeId, NodeName};
use ocf_fencing::{
    AllowAll, DeviceId, DeviceMetadata, FenceAction, FenceDevice, FenceError, FenceErrorKind,
    FenceEvent, FenceEventStream, FenceRecord, FenceRequest, Fencer, FencerAdmin, FencingPolicy,
    HistoryFilter, IncidentId, PowerState, Targets, TopologyLevel,
};
use ocf_membership::Membership;
use ocf_ref::conformance::TokioClock;
use ocf_ref::fencing::daemon_fencer::DaemonFencer;
use ocf_ref::fencing::devices::native::{ManualDevice, NullDevice, SimulatedDevice, Step};
use ocf_ref::fencing::fencer::{FencerConfig, LocalFencer};
use ocf_ref::membership::daemon::local_api::MAX_REQUEST_LINE;
use ocf_ref::membership::daemon::{
    self, DaemonClient, NoMembership, ServeOptions, ServerHandle, local_socket,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// The most any step of a test waits before it fails (a bound against hangs, not a speed goal).
const LIMIT: Duration = Duration::from_secs(30);

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn req(target: &str, requester: &str) -> FenceRequest {
    FenceRequest::new(n(target), FenceAction::Reboot, requester.parse().unwrap())
        .with_timeout(Duration::from_secs(20))
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {LIMIT:?}"))
}

/// A fencer served on a socket in a temp dir; dropping it stops the server and removes all.
struct Served {
    server: Option<ServerHandle>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn new(fencer: Option<Arc<dyn Fencer>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let claim = local_socket::claim(&path, None).await.unwrap();
        let mut options = ServeOptions::default();
        if let Some(f) = fencer {
            options = options.with_fencer(f);
        }
        let server = daemon::serve_claimed(Arc::new(NoMembership(NodeId::new(1))), claim, options);
        Self {
            server: Some(server),
            path,
            _dir: dir,
        }
    }

    fn client(&self) -> DaemonFencer {
        DaemonFencer::new(&self.path)
    }

    async fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A fresh `LocalFencer` served, with its handle kept for the test to compare against.
async fn local() -> (LocalFencer, Served) {
    let fencer = LocalFencer::new();
    let served = Served::new(Some(Arc::new(fencer.clone()))).await;
    (fencer, served)
}

/// A device that counts its fence calls and passes them to `inner`.
struct Counted<D> {
    inner: D,
    calls: AtomicU64,
}

impl<D> Counted<D> {
    fn new(inner: D) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
        }
    }
    fn fence_calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl<D: FenceDevice> FenceDevice for Counted<D> {
    fn id(&self) -> &DeviceId {
        self.inner.id()
    }
    fn targets(&self) -> &Targets {
        self.inner.targets()
    }
    async fn metadata(&self, timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        self.inner.metadata(timeout).await
    }
    async fn list_targets(&self, timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        self.inner.list_targets(timeout).await
    }
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.fence(target, action, timeout).await
    }
    async fn status(&self, target: &NodeName, timeout: Duration) -> Result<PowerState, FenceError> {
        self.inner.status(target, timeout).await
    }
    async fn monitor(&self, timeout: Duration) -> Result<(), FenceError> {
        self.inner.monitor(timeout).await
    }
}

/// Polls `f` until it answers `Some`.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    within(what, async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_over_the_socket_returns_the_record() {
    let (fencer, served) = local().await;
    let dev = Arc::new(NullDevice::new("null".parse().unwrap(), [n("n2")]));
    fencer.register_device(dev.clone()).await.unwrap();
    let record = within("fence", served.client().fence(req("n2", "test@n1")))
        .await
        .unwrap();
    assert!(record.succeeded(), "{record:?}");
    assert_eq!(record.target, n("n2"));
    assert_eq!(record.requesters, vec!["test@n1".parse().unwrap()]);
    assert_eq!(dev.fence_calls(), 1);
    let history = fencer.history(&HistoryFilter::all()).await.unwrap();
    assert_eq!(history, vec![record]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_requests_make_one_device_call_and_get_one_record() {
    let (fencer, served) = local().await;
    let manual = ManualDevice::new("meat".parse().unwrap(), [n("n3")]);
    let dev = Arc::new(Counted::new(manual.clone()));
    fencer.register_device(dev.clone()).await.unwrap();
    let mut asks = Vec::new();
    for i in 0..10 {
        let client = served.client();
        asks.push(tokio::spawn(async move {
            client.fence(req("n3", &format!("r{i}@n1"))).await
        }));
    }
    // Hold the device until all ten joined the one incident, so none can start a second.
    eventually("ten requesters in the incident", || {
        let fencer = fencer.clone();
        async move {
            let h = fencer.history(&HistoryFilter::all()).await.unwrap();
            (h.len() == 1 && h[0].requesters.len() == 10).then_some(())
        }
    })
    .await;
    within("the device asked", manual.wait_pending()).await;
    assert!(manual.acknowledge(&n("n3")));
    let mut records = Vec::new();
    for a in asks {
        records.push(within("a requester's answer", a).await.unwrap().unwrap());
    }
    assert_eq!(dev.fence_calls(), 1, "one device call for ten requests");
    assert!(records[0].succeeded());
    assert!(records.iter().all(|r| *r == records[0]), "{records:?}");
    let history = served
        .client()
        .history(&HistoryFilter::all())
        .await
        .unwrap();
    assert_eq!(history, vec![records[0].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_over_the_socket_equals_the_fencers() {
    let (fencer, served) = local().await;
    fencer
        .register_device(Arc::new(NullDevice::new(
            "null".parse().unwrap(),
            [n("a"), n("b")],
        )))
        .await
        .unwrap();
    fencer
        .register_device(Arc::new(SimulatedDevice::constant(
            "bad".parse().unwrap(),
            [n("c")],
            Step::fail(Duration::ZERO),
        )))
        .await
        .unwrap();
    let client = served.client();
    for t in ["a", "b", "c", "a"] {
        let _ = within("fence", client.fence(req(t, "h@n1"))).await;
    }
    for filter in [
        HistoryFilter::all(),
        HistoryFilter::all().target(n("a")),
        HistoryFilter::all().limit(2),
        HistoryFilter::all().target(n("nobody")),
    ] {
        let direct = fencer.history(&filter).await.unwrap();
        let remote = within("history", client.history(&filter)).await.unwrap();
        assert_eq!(remote, direct, "{filter:?}");
    }
    assert_eq!(
        client.history(&HistoryFilter::all()).await.unwrap().len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_started_then_finished_and_the_end() {
    let (fencer, mut served) = local().await;
    fencer
        .register_device(Arc::new(NullDevice::new(
            "null".parse().unwrap(),
            [n("n2")],
        )))
        .await
        .unwrap();
    let mut stream = within("subscribe", served.client().subscribe())
        .await
        .unwrap();
    let record = served.client().fence(req("n2", "w@n1")).await.unwrap();
    let started = within("started", stream.next_event()).await.unwrap();
    match started {
        Some(FenceEvent::Started { record: r }) => {
            assert_eq!(r.id, record.id);
            assert!(r.is_pending());
        }
        other => panic!("expected Started, got {other:?}"),
    }
    let finished = within("finished", stream.next_event()).await.unwrap();
    match finished {
        Some(FenceEvent::Finished { record: r }) => assert_eq!(*r, record),
        other => panic!("expected Finished, got {other:?}"),
    }
    // The daemon stopping ends the stream cleanly, and it stays ended.
    served.shutdown().await;
    assert!(within("end", stream.next_event()).await.unwrap().is_none());
    assert!(stream.next_event().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_errors_cross_the_socket() {
    let (fencer, served) = local().await;
    let client = served.client();

    let e = client.fence(req("ghost", "e@n1")).await.unwrap_err();
    assert!(
        matches!(&e, FenceError::NoDevice { target } if *target == n("ghost")),
        "{e:?}"
    );

    fencer
        .register_device(Arc::new(SimulatedDevice::constant(
            "bad".parse().unwrap(),
            [n("c")],
            Step::fail(Duration::ZERO),
        )))
        .await
        .unwrap();
    let e = client.fence(req("c", "e@n1")).await.unwrap_err();
    let FenceError::Failed { target, record, .. } = &e else {
        panic!("expected Failed, got {e:?}");
    };
    assert_eq!(*target, n("c"));
    assert!(!record.succeeded());
    let history = fencer
        .history(&HistoryFilter::all().target(n("c")))
        .await
        .unwrap();
    assert_eq!(
        history,
        vec![(**record).clone()],
        "Failed carries the incident's record"
    );

    // A requester whose own timeout passes while it waits: TimedOut, and the incident goes on
    // for the one that started it.
    let manual = ManualDevice::new("meat".parse().unwrap(), [n("slow")]);
    fencer
        .register_device(Arc::new(manual.clone()))
        .await
        .unwrap();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.fence(req("slow", "first@n1")).await }
    });
    within("the device asked", manual.wait_pending()).await;
    let short = req("slow", "impatient@n1").with_timeout(Duration::from_millis(300));
    let e = within("timed out", client.fence(short)).await.unwrap_err();
    assert!(
        matches!(&e, FenceError::TimedOut { target, timeout_ms: 300, .. } if *target == n("slow")),
        "{e:?}"
    );
    assert!(manual.acknowledge(&n("slow")));
    let record = within("the first", first).await.unwrap().unwrap();
    assert!(record.succeeded(), "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_without_a_fencer_says_so_and_an_absent_one_is_unavailable() {
    let served = Served::new(None).await;
    let client = served.client();
    for e in [
        client.fence(req("n1", "x@n1")).await.unwrap_err(),
        client.history(&HistoryFilter::all()).await.unwrap_err(),
        client.subscribe().await.map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(e.kind(), FenceErrorKind::Unavailable, "{e:?}");
        assert!(e.to_string().contains("serves no fencer"), "{e}");
    }
    // Membership on the same socket is untouched.
    let members = DaemonClient::new(&served.path);
    assert_eq!(members.local_node().await.unwrap(), NodeId::new(1));

    let gone = DaemonFencer::new(served.path.with_file_name("nobody.sock"));
    let e = gone.fence(req("n1", "x@n1")).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Unavailable, "{e:?}");
    assert!(e.to_string().contains("nobody.sock"), "{e}");
}

/// A raw connection to the socket: lines in, JSON lines out.
struct Raw {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Raw {
    async fn connect(path: &Path) -> Self {
        let (r, w) = UnixStream::connect(path).await.unwrap().into_split();
        Self {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
    }

    /// The next reply line as JSON; `None` at end of stream.
    async fn reply(&mut self) -> Option<serde_json::Value> {
        let mut line = String::new();
        let n = within("a reply line", self.reader.read_line(&mut line))
            .await
            .unwrap_or(0);
        (n > 0).then(|| serde_json::from_str(&line).unwrap())
    }

    async fn ask(&mut self, line: &str) -> serde_json::Value {
        self.send(line).await;
        self.reply().await.expect("a reply")
    }
}

fn is_bad_request(v: &serde_json::Value) -> bool {
    v["ok"] == false
        && v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("bad request"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_lines_are_refused_and_nothing_is_fenced() {
    let (fencer, served) = local().await;
    let dev = Arc::new(NullDevice::new("null".parse().unwrap(), [n("n2")]));
    fencer.register_device(dev.clone()).await.unwrap();
    let mut raw = Raw::connect(&served.path).await;
    let long = "x".repeat(257);
    for line in [
        "garbage".to_owned(),
        "{\"op\":\"fence_everything\"}".to_owned(),
        "{\"op\":\"fence\"}".to_owned(),
        r#"{"op":"fence","request":{"target":"n2","action":"status","requester":"a@b","timeout_ms":1000}}"#.to_owned(),
        r#"{"op":"fence","request":{"target":"n2","action":"explode","requester":"a@b","timeout_ms":1000}}"#.to_owned(),
        r#"{"op":"fence","request":{"target":"bad name","action":"off","requester":"a@b","timeout_ms":1000}}"#.to_owned(),
        format!(r#"{{"op":"fence","request":{{"target":"n2","action":"off","requester":"{long}","timeout_ms":1000}}}}"#),
        format!(r#"{{"op":"fence","request":{{"target":"n2","action":"off","requester":"a@b","timeout_ms":1000,"incident":"{long}"}}}}"#),
        r#"{"op":"fence","request":{"target":"n2","action":"off","requester":"a b","timeout_ms":1000}}"#.to_owned(),
        r#"{"op":"fence_history","filter":{"target":17}}"#.to_owned(),
    ] {
        let reply = raw.ask(&line).await;
        assert!(is_bad_request(&reply), "{line}: {reply}");
    }
    // The connection still serves after all that.
    let reply = raw.ask(r#"{"op":"fence_history"}"#).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["records"], serde_json::json!([]));

    // The longest request (253-byte target, 256-byte ids, every byte escaped) fits the bound.
    let id = "\"".repeat(256);
    let target = "\"".repeat(253);
    fencer
        .register_device(Arc::new(NullDevice::new(
            "wide".parse().unwrap(),
            [n(&target)],
        )))
        .await
        .unwrap();
    let request = FenceRequest::new(n(&target), FenceAction::Off, id.parse().unwrap())
        .with_incident(IncidentId::new(id.clone()).unwrap())
        .with_timeout(Duration::from_secs(20));
    let line = serde_json::json!({"op":"fence","request":request}).to_string();
    assert!(
        line.len() > 1500 && line.len() < MAX_REQUEST_LINE,
        "{}",
        line.len()
    );
    let reply = raw.ask(&line).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["record"]["requesters"][0], id.as_str());
    assert_eq!(
        dev.fence_calls(),
        0,
        "no invalid request reached the device"
    );

    // A 1 MiB line: one error, then the daemon closes that connection.
    let mut huge = Raw::connect(&served.path).await;
    let writer = tokio::spawn(async move {
        let line = vec![b'x'; 1 << 20];
        let _ = huge.writer.write_all(&line).await;
        huge.reader
    });
    let mut reader = within("the writer", writer).await.unwrap();
    let mut line = String::new();
    within("the error line", reader.read_line(&mut line))
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than")),
        "{reply}"
    );
    line.clear();
    let n = within("the close", reader.read_line(&mut line)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?} {line}");

    // Other clients were not disturbed.
    let record = served.client().fence(req("n2", "after@n1")).await.unwrap();
    assert!(record.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_fence_frees_its_slot_and_the_incident_completes() {
    let (fencer, served) = local().await;
    let manual = ManualDevice::new("meat".parse().unwrap(), [n("n4")]);
    fencer
        .register_device(Arc::new(manual.clone()))
        .await
        .unwrap();
    let mut raw = Raw::connect(&served.path).await;
    let request = req("n4", "quitter@n1").with_incident(IncidentId::new("n4@test").unwrap());
    raw.send(&serde_json::json!({"op":"fence","request":request}).to_string())
        .await;
    within("the device asked", manual.wait_pending()).await;
    drop(raw);
    // The daemon notices at once: only the stats connection itself is left.
    let members = DaemonClient::new(&served.path);
    eventually("the slot freed", || {
        let members = members.clone();
        async move { (members.stats().await.unwrap().clients == 1).then_some(()) }
    })
    .await;
    // Another client meanwhile is served.
    let history = served
        .client()
        .history(&HistoryFilter::all())
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].is_pending(), "the incident goes on: {history:?}");
    assert!(manual.acknowledge(&n("n4")));
    let done = eventually("the incident finished", || {
        let client = served.client();
        async move {
            let h = client.history(&HistoryFilter::all()).await.unwrap();
            h.into_iter().find(|r| !r.is_pending())
        }
    })
    .await;
    assert!(done.succeeded(), "{done:?}");
    assert_eq!(done.requesters, vec!["quitter@n1".parse().unwrap()]);
    // Asking again for that incident gets its record: it really completed.
    let again = served
        .client()
        .fence(req("n4", "late@n1").with_incident(IncidentId::new("n4@test").unwrap()))
        .await
        .unwrap();
    assert_eq!(again.id, done.id);
}

/// One answer of a scripted event stream.
type Next = Result<Option<FenceEvent>, FenceError>;

/// A fencer whose answers and events the test scripts.
#[derive(Default)]
struct Scripted {
    streams: Mutex<Vec<mpsc::UnboundedSender<Next>>>,
}

struct ScriptedStream(mpsc::UnboundedReceiver<Next>);

#[async_trait]
impl FenceEventStream for ScriptedStream {
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
        self.0.recv().await.unwrap_or(Ok(None))
    }
}

#[async_trait]
impl Fencer for Scripted {
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        if request.target.as_str() == "hang" {
            // A fencer that ignores the request's timeout.
            std::future::pending::<()>().await;
        }
        Err(FenceError::NotQuorate {
            target: request.target,
            node: "n1".into(),
            reason: "1 of 3 votes".into(),
        })
    }
    async fn history(&self, _: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        Err(FenceError::Refused {
            target: n("all"),
            refusal: ocf_fencing::Refusal::new("test", "no history for you"),
        })
    }
    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.lock().unwrap().push(tx);
        Ok(Box::new(ScriptedStream(rx)))
    }
}

/// A `Started` event of incident `id` (fixed times, so two calls give equal events).
fn started(id: u64) -> FenceEvent {
    let mut record =
        FenceRecord::start(id, n("n5"), FenceAction::Off, "s@n1".parse().unwrap(), None);
    record.started_ms = 1_700_000_000_000;
    FenceEvent::Started {
        record: Box::new(record),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lags_errors_and_ends_of_a_stream_cross_the_socket() {
    let scripted = Arc::new(Scripted::default());
    let served = Served::new(Some(scripted.clone())).await;
    let client = served.client();
    let e = client.fence(req("n5", "s@n1")).await.unwrap_err();
    assert!(
        matches!(e, FenceError::NotQuorate { ref reason, .. } if reason == "1 of 3 votes"),
        "{e:?}"
    );
    let e = client.history(&HistoryFilter::all()).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Refused, "{e:?}");

    // A lag is reported and the stream goes on; another error ends it for good.
    let mut stream = client.subscribe().await.unwrap();
    let tx = scripted.streams.lock().unwrap()[0].clone();
    tx.send(Ok(Some(started(1)))).unwrap();
    tx.send(Err(FenceError::Lagged { missed: 3 })).unwrap();
    tx.send(Ok(Some(started(5)))).unwrap();
    tx.send(Err(FenceError::unavailable("worker gone")))
        .unwrap();
    assert_eq!(stream.next_event().await.unwrap(), Some(started(1)));
    assert!(matches!(
        stream.next_event().await,
        Err(FenceError::Lagged { missed: 3 })
    ));
    assert_eq!(stream.next_event().await.unwrap(), Some(started(5)));
    for _ in 0..2 {
        let e = within("the error", stream.next_event()).await.unwrap_err();
        assert!(e.to_string().contains("worker gone"), "{e}");
    }

    // The fencer's own end is `Ok(None)`, for ever.
    let mut stream = client.subscribe().await.unwrap();
    let tx = scripted.streams.lock().unwrap()[1].clone();
    tx.send(Ok(Some(started(6)))).unwrap();
    tx.send(Ok(None)).unwrap();
    assert_eq!(stream.next_event().await.unwrap(), Some(started(6)));
    assert!(
        within("the end", stream.next_event())
            .await
            .unwrap()
            .is_none()
    );
    assert!(stream.next_event().await.unwrap().is_none());
}

/// A fencer that never answers: the daemon answers `TimedOut` for it once the request's
/// timeout (and the grace) passed, and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fencer_that_never_answers_is_timed_out_by_the_daemon() {
    let served = Served::new(Some(Arc::new(Scripted::default()))).await;
    let client = served.client();
    let request = req("hang", "patient@n1").with_timeout(Duration::from_millis(100));
    let e = within("the daemon's timeout", client.fence(request))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FenceError::TimedOut { target, timeout_ms: 100, .. } if target.as_str() == "hang"),
        "{e:?}"
    );
    let e = client.fence(req("n5", "s@n1")).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::NotQuorate, "{e:?}");
}

/// A server that answers garbage, then one that hangs up, then one that never answers:
/// typed errors, never a panic or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_answers_garbage_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let answers: [&[u8]; 5] = [
        b"this is not json\n",
        b"{\"ok\":true}\n",
        b"{\"ok\":false,\"error\":\"nope\"}\n",
        b"{\"ok\":true,\"reco",
        b"",
    ];
    let server = tokio::spawn(async move {
        for answer in answers {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut line = String::new();
            BufReader::new(r).read_line(&mut line).await.unwrap();
            w.write_all(answer).await.unwrap();
        }
        // The last one reads the request and never answers (a long line without a newline
        // first, to check the bound is a line, not memory).
        let (s, _) = listener.accept().await.unwrap();
        let (_r, mut w) = s.into_split();
        let _ = w.write_all(&vec![b' '; 5 << 20]).await;
        std::future::pending::<()>().await;
    });
    let client = DaemonFencer::new(&path);
    for _ in 0..5 {
        let e = within("garbage", client.fence(req("n1", "g@n1")))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), FenceErrorKind::Unavailable, "{e:?}");
        assert!(e.to_string().contains("liar.sock"), "{e}");
    }
    let e = within("an endless line", client.history(&HistoryFilter::all()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("longer than"), "{e}");
    server.abort();
}

/// The fencer suite on `DaemonFencer`: configuration goes to the served `LocalFencer`,
/// fencing, history and events through the socket.
struct SocketHarness {
    served: Mutex<Vec<Arc<SocketFencer>>>,
}

struct SocketFencer {
    local: LocalFencer,
    client: DaemonFencer,
    served: tokio::sync::Mutex<Served>,
}

#[async_trait]
impl Fencer for SocketFencer {
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        self.client.fence(request).await
    }
    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        self.client.history(filter).await
    }
    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        self.client.subscribe().await
    }
}

#[async_trait]
impl FencerAdmin for SocketFencer {
    async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError> {
        self.local.register_device(device).await
    }
    async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError> {
        self.local.unregister_device(id).await
    }
    async fn devices(&self) -> Result<Vec<DeviceId>, FenceError> {
        self.local.devices().await
    }
    async fn set_topology(
        &self,
        target: &NodeName,
        levels: Vec<TopologyLevel>,
    ) -> Result<(), FenceError> {
        self.local.set_topology(target, levels).await
    }
    async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError> {
        self.local.topology(target).await
    }
}

impl SocketHarness {
    async fn make(&self, policy: Arc<dyn FencingPolicy>) -> Arc<dyn FencerAdmin> {
        let local = LocalFencer::with(FencerConfig::default(), policy);
        let served = Served::new(Some(Arc::new(local.clone()))).await;
        let fencer = Arc::new(SocketFencer {
            local,
            client: served.client(),
            served: tokio::sync::Mutex::new(served),
        });
        self.served.lock().unwrap().push(Arc::clone(&fencer));
        fencer
    }
}

#[async_trait]
impl FencerHarness for SocketHarness {
    fn implementation(&self) -> String {
        "ocf_ref DaemonFencer over a LocalFencer".into()
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(TokioClock::new())
    }
    async fn fencer(&self) -> Result<Arc<dyn FencerAdmin>, String> {
        Ok(self.make(Arc::new(AllowAll)).await)
    }
    fn replays_incidents(&self) -> bool {
        true
    }
    fn supports_policy(&self) -> bool {
        true
    }
    async fn fencer_with_policy(
        &self,
        policy: Arc<dyn FencingPolicy>,
    ) -> Result<Arc<dyn FencerAdmin>, String> {
        Ok(self.make(policy).await)
    }
    async fn shut_down(&self, fencer: Arc<dyn FencerAdmin>) {
        let mine = self
            .served
            .lock()
            .unwrap()
            .iter()
            .find(|f| std::ptr::addr_eq(Arc::as_ptr(f), Arc::as_ptr(&fencer)))
            .cloned();
        if let Some(f) = mine {
            f.served.lock().await.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_fencer_conforms() {
    let harness = SocketHarness {
        served: Mutex::new(Vec::new()),
    };
    let report = run_fencer(&harness, &FencerOptions::default()).await;
    report.assert_passed();
    for name in [
        "fencer.fence",
        "fencer.merging",
        "fencer.merged_record",
        "fencer.failure",
        "fencer.incident_replay",
        "fencer.no_device",
        "fencer.history",
        "fencer.policy_refusal",
        "fencer.events",
        "fencer.stream_end",
    ] {
        assert_eq!(
            report.outcome(name),
            Some(&CheckOutcome::Pass),
            "{name}: {report}"
        );
    }
    // A socket's buffers hide a slow reader from the fencer, so the suite cannot force a lag
    // through it; `lags_errors_and_ends_of_a_stream_cross_the_socket` checks the lag line.
    assert!(matches!(
        report.outcome("fencer.lag"),
        Some(CheckOutcome::Skip(_))
    ));
}

#[cfg(feature = "cli")]
mod cli {
    use std::process::Stdio;

    use tokio::process::Command;

    use super::*;

    /// A node.toml (in `dir`) whose `socket` is the served one (backend corosync: no key file
    /// needed to load it; the fence commands only read `socket`).
    fn node_toml(dir: &tempfile::TempDir, served: &Served) -> PathBuf {
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            format!(
                "cluster = \"c1\"\nbackend = \"corosync\"\nsocket = {:?}\n",
                served.path.display().to_string()
            ),
        )
        .unwrap();
        path
    }

    fn ocf(args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ocf"));
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(args: &[&str]) -> std::process::Output {
        within("ocf", ocf(args).output()).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ocf_fence_request_prints_the_record_and_exits_by_the_outcome() {
        let (fencer, served) = local().await;
        fencer
            .register_device(Arc::new(NullDevice::new(
                "null".parse().unwrap(),
                [n("n2")],
            )))
            .await
            .unwrap();
        fencer
            .register_device(Arc::new(SimulatedDevice::constant(
                "bad".parse().unwrap(),
                [n("n3")],
                Step::fail(Duration::ZERO),
            )))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = node_toml(&dir, &served);
        let config = config.to_str().unwrap();

        let out = run(&[
            "fence",
            "request",
            "n2",
            "--config",
            config,
            "--action",
            "off",
            "--incident",
            "n2@cli-1",
            "--requester",
            "cli@n1",
            "--timeout",
            "20",
            "--json",
        ])
        .await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let record: FenceRecord = serde_json::from_slice(&out.stdout).unwrap();
        assert!(record.succeeded());
        assert_eq!(record.action, FenceAction::Off);
        assert_eq!(record.incident, Some(IncidentId::new("n2@cli-1").unwrap()));
        assert_eq!(record.requesters, vec!["cli@n1".parse().unwrap()]);

        // Failure: exit 70, the record still printed, the reason on stderr.
        let out = run(&["fence", "request", "n3", "--config", config]).await;
        assert_eq!(out.status.code(), Some(70), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("n3") && text.contains("failed"), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("failed on every level"), "{err}");
        // The default requester names this host.
        let h = fencer
            .history(&HistoryFilter::all().target(n("n3")))
            .await
            .unwrap();
        assert!(
            h[0].requesters[0].as_str().starts_with("operator@"),
            "{h:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ocf_fence_request_refuses_bad_input_and_names_an_absent_daemon() {
        let (fencer, served) = local().await;
        fencer
            .register_device(Arc::new(NullDevice::new(
                "null".parse().unwrap(),
                [n("n2")],
            )))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = node_toml(&dir, &served);
        let config = config.to_str().unwrap();
        // Bad input: 64, and nothing reaches the fencer.
        let long = "x".repeat(257);
        for bad in [
            vec![
                "fence", "request", "n2", "--config", config, "--action", "status",
            ],
            vec![
                "fence", "request", "n2", "--config", config, "--action", "explode",
            ],
            vec!["fence", "request", "bad name", "--config", config],
            vec![
                "fence",
                "request",
                "n2",
                "--config",
                config,
                "--requester",
                &long,
            ],
            vec![
                "fence",
                "request",
                "n2",
                "--config",
                config,
                "--incident",
                "a b",
            ],
            vec![
                "fence",
                "request",
                "n2",
                "--config",
                config,
                "--timeout",
                "0",
            ],
            vec!["fence", "request", "n2"],
        ] {
            let out = run(&bad).await;
            assert_eq!(out.status.code(), Some(64), "{bad:?}: {out:?}");
            assert!(!out.stderr.is_empty(), "{bad:?}: a message");
        }
        assert!(
            fencer
                .history(&HistoryFilter::all())
                .await
                .unwrap()
                .is_empty()
        );

        // No daemon at the socket: 70, naming it.
        drop(served);
        let out = run(&["fence", "request", "n2", "--config", config]).await;
        assert_eq!(out.status.code(), Some(70), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("node.sock"),
            "{out:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ocf_fence_history_and_watch_over_the_socket() {
        let (fencer, served) = local().await;
        fencer
            .register_device(Arc::new(NullDevice::new(
                "null".parse().unwrap(),
                [n("a"), n("b")],
            )))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = node_toml(&dir, &served);
        let config = config.to_str().unwrap();

        let mut watcher = ocf(&["fence", "watch", "--config", config, "--json"])
            .spawn()
            .unwrap();
        let mut err = BufReader::new(watcher.stderr.take().unwrap());
        let mut line = String::new();
        within("the watcher subscribed", err.read_line(&mut line))
            .await
            .unwrap();
        assert!(line.contains("watching"), "{line}");

        let client = served.client();
        let a = client.fence(req("a", "h@n1")).await.unwrap();
        let b = client.fence(req("b", "h@n1")).await.unwrap();

        let mut out = BufReader::new(watcher.stdout.take().unwrap());
        let mut events = Vec::new();
        for _ in 0..4 {
            let mut line = String::new();
            within("an event line", out.read_line(&mut line))
                .await
                .unwrap();
            events.push(serde_json::from_str::<FenceEvent>(&line).unwrap());
        }
        let kinds: Vec<(&str, u64)> = events
            .iter()
            .map(|e| match e {
                FenceEvent::Started { record } => ("started", record.id),
                FenceEvent::Finished { record } => ("finished", record.id),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("started", a.id),
                ("finished", a.id),
                ("started", b.id),
                ("finished", b.id)
            ]
        );

        let out = run(&["fence", "history", "--config", config, "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let records: Vec<FenceRecord> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(records, vec![a.clone(), b.clone()]);
        let out = run(&["fence", "history", "--config", config, "--target", "b"]).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().filter(|l| l.starts_with('#')).count(),
            1,
            "{text}"
        );
        assert!(
            text.starts_with(&format!("#{} b reboot: succeeded", b.id)),
            "{text}"
        );

        // The daemon stopping ends the watch cleanly.
        let mut served = served;
        served.shutdown().await;
        let status = within("the watcher ends", watcher.wait()).await.unwrap();
        assert_eq!(status.code(), Some(0));
    }
}
