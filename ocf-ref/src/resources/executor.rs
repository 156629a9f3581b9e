//! The executor: named resources, one operation at a time each, recurring operations,
//! bounded history and a broadcast of results, on tokio.
//!
//! Each resource has a worker task reading a FIFO queue, so its operations run strictly one
//! after another in submission order. Workers of different resources run in parallel, bounded
//! by a semaphore (the concurrency limit). A recurring operation is a task that enqueues one
//! run per interval and waits for it before the next, so a slow agent never piles up runs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ocf_resources::executor::{
    Executor, ExecutorAdmin, OpResult, Operation, OperationResult, RecurringId, ResourceSpec,
    ResultStream,
};
use ocf_resources::{ActionRequest, ResourceAgent, ResourceError};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::resources::AgentRegistry;

/// Limits of a [`LocalExecutor`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ExecutorConfig {
    /// How many operations may run at once across all resources (at least 1). Rule of thumb:
    /// a few per core for script agents, which mostly wait.
    pub concurrency: usize,
    /// How many results each resource keeps in its history (older ones are dropped).
    pub history_limit: usize,
    /// How many results a subscriber may fall behind before it misses some.
    pub subscriber_buffer: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            history_limit: 100,
            subscriber_buffer: 4096,
        }
    }
}

impl ExecutorConfig {
    /// Sets the concurrency limit.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the history bound per resource.
    #[must_use]
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n;
        self
    }

    /// Sets the subscriber buffer.
    #[must_use]
    pub fn subscriber_buffer(mut self, n: usize) -> Self {
        self.subscriber_buffer = n.max(1);
        self
    }
}

/// One queued run.
struct Job {
    call_id: u64,
    operation: Operation,
    recurring: Option<RecurringId>,
    cancelled: Option<Arc<AtomicBool>>,
    submitted: Instant,
    reply: Option<oneshot::Sender<OperationResult>>,
}

struct Recurring {
    task: JoinHandle<()>,
    cancelled: Arc<AtomicBool>,
}

impl Recurring {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

struct Resource {
    spec: ResourceSpec,
    queue: mpsc::UnboundedSender<Job>,
    history: Arc<Mutex<VecDeque<OperationResult>>>,
    recurring: HashMap<RecurringId, Recurring>,
}

struct Inner {
    registry: Arc<AgentRegistry>,
    config: ExecutorConfig,
    resources: Mutex<BTreeMap<String, Resource>>,
    slots: Arc<Semaphore>,
    results: broadcast::Sender<OperationResult>,
    next_call: Arc<AtomicU64>,
    next_recurring: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(resources) = self.resources.get_mut() {
            for r in resources.values() {
                for rec in r.recurring.values() {
                    rec.cancel();
                }
            }
        }
    }
}

/// The reference [`Executor`] and [`ExecutorAdmin`] on tokio.
///
/// Its result streams end (`Ok(None)`, for ever after) once the last handle is dropped and
/// the operations already queued have finished; a subscriber more than
/// [`ExecutorConfig::subscriber_buffer`] results behind gets one
/// [`ResourceError::Lagged`] and then the results after the gap.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ocf_resources::{Action, Executor, ExecutorAdmin, Operation, ResourceSpec};
/// use ocf_ref::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};
/// let registry = AgentRegistry::from_env();
/// registry.add_native(Arc::new(NativeDummy::new()));
/// let exec = LocalExecutor::new(Arc::new(registry), ExecutorConfig::default());
/// exec.register(ResourceSpec::new("web", "ocf:native:Dummy".parse().unwrap())).await.unwrap();
/// let r = exec.execute("web", Operation::new(Action::Start, Duration::from_secs(5))).await.unwrap();
/// assert!(r.succeeded());
/// assert_eq!(exec.history("web").await.unwrap().len(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct LocalExecutor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, ocf_core::millis::as_millis)
}

fn closed() -> ResourceError {
    ResourceError::Closed {
        what: "executor".to_owned(),
    }
}

impl LocalExecutor {
    /// An executor taking its agents from `registry`.
    pub fn new(registry: Arc<AgentRegistry>, config: ExecutorConfig) -> Self {
        let (results, _) = broadcast::channel(config.subscriber_buffer.max(1));
        Self {
            inner: Arc::new(Inner {
                registry,
                config,
                resources: Mutex::new(BTreeMap::new()),
                slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
                results,
                next_call: Arc::new(AtomicU64::new(1)),
                next_recurring: AtomicU64::new(1),
            }),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Resource>>, ResourceError> {
        self.inner.resources.lock().map_err(|_| closed())
    }

    fn queue_of(&self, name: &str) -> Result<mpsc::UnboundedSender<Job>, ResourceError> {
        self.lock()?
            .get(name)
            .map(|r| r.queue.clone())
            .ok_or_else(|| ResourceError::UnknownResource {
                name: name.to_owned(),
            })
    }
}

/// Runs one resource's queue until every sender is gone.
async fn worker(
    spec: ResourceSpec,
    agent: Arc<dyn ResourceAgent>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    history: Arc<Mutex<VecDeque<OperationResult>>>,
    history_limit: usize,
    slots: Arc<Semaphore>,
    results: broadcast::Sender<OperationResult>,
) {
    while let Some(job) = queue.recv().await {
        if job
            .cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
        {
            continue; // a recurring run cancelled while it waited: it never happened
        }
        // The semaphore is never closed, so a permit always comes.
        let Ok(permit) = slots.acquire().await else {
            break;
        };
        let queued = job.submitted.elapsed();
        let started_at_ms = unix_ms();
        let op = &job.operation;
        let mut request = ActionRequest::new(op.action, spec.name.clone(), op.timeout)
            .params(spec.params.clone())
            .interval(op.interval)
            .validate(op.validate);
        request.meta = spec.meta.clone();
        request.meta.extend(op.meta.clone());
        request.check_level = op.check_level;
        let result = match agent.execute(request).await {
            Ok(outcome) => OpResult::Completed { outcome },
            Err(e) => OpResult::Error {
                message: e.to_string(),
            },
        };
        drop(permit);
        let mut done = OperationResult::new(
            job.call_id,
            spec.name.clone(),
            spec.agent.clone(),
            op.action,
            result,
        );
        done.interval = op.interval;
        done.recurring = job.recurring;
        done.started_at_ms = started_at_ms;
        done.queued = queued;
        if let Ok(mut h) = history.lock() {
            if history_limit > 0 {
                if h.len() >= history_limit {
                    h.pop_front();
                }
                h.push_back(done.clone());
            }
        }
        // No subscriber is fine: the result is in the history.
        let _ = results.send(done.clone());
        if let Some(reply) = job.reply {
            let _ = reply.send(done);
        }
    }
}

/// Enqueues one run per interval, each after the previous one finished.
async fn recurring(
    queue: mpsc::UnboundedSender<Job>,
    operation: Operation,
    id: RecurringId,
    cancelled: Arc<AtomicBool>,
    next_call: Arc<AtomicU64>,
) {
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + operation.interval,
        operation.interval,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if cancelled.load(Ordering::SeqCst) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let job = Job {
            call_id: next_call.fetch_add(1, Ordering::Relaxed),
            operation: operation.clone(),
            recurring: Some(id),
            cancelled: Some(cancelled.clone()),
            submitted: Instant::now(),
            reply: Some(tx),
        };
        if queue.send(job).is_err() || rx.await.is_err() {
            return; // the resource is gone
        }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn execute(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<OperationResult, ResourceError> {
        let queue = self.queue_of(resource)?;
        let (tx, rx) = oneshot::channel();
        let job = Job {
            call_id: self.inner.next_call.fetch_add(1, Ordering::Relaxed),
            operation,
            recurring: None,
            cancelled: None,
            submitted: Instant::now(),
            reply: Some(tx),
        };
        queue.send(job).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())
    }

    async fn start_recurring(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<RecurringId, ResourceError> {
        if operation.interval.is_zero() {
            return Err(ResourceError::InvalidRequest {
                reason: format!(
                    "recurring {} on {resource} needs a non-zero interval",
                    operation.action
                ),
            });
        }
        let mut resources = self.lock()?;
        let r = resources
            .get_mut(resource)
            .ok_or_else(|| ResourceError::UnknownResource {
                name: resource.to_owned(),
            })?;
        let id = RecurringId(self.inner.next_recurring.fetch_add(1, Ordering::Relaxed));
        let cancelled = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(recurring(
            r.queue.clone(),
            operation,
            id,
            cancelled.clone(),
            self.inner.next_call.clone(),
        ));
        r.recurring.insert(id, Recurring { task, cancelled });
        Ok(id)
    }

    async fn cancel_recurring(&self, resource: &str, id: RecurringId) -> Result<(), ResourceError> {
        let mut resources = self.lock()?;
        let r = resources
            .get_mut(resource)
            .ok_or_else(|| ResourceError::UnknownResource {
                name: resource.to_owned(),
            })?;
        let rec = r
            .recurring
            .remove(&id)
            .ok_or(ResourceError::UnknownOperation {
                resource: resource.to_owned(),
                id: id.0,
            })?;
        rec.cancel();
        Ok(())
    }

    async fn history(&self, resource: &str) -> Result<Vec<OperationResult>, ResourceError> {
        let history = self
            .lock()?
            .get(resource)
            .map(|r| r.history.clone())
            .ok_or_else(|| ResourceError::UnknownResource {
                name: resource.to_owned(),
            })?;
        let h = history.lock().map_err(|_| closed())?;
        Ok(h.iter().cloned().collect())
    }

    async fn subscribe(&self) -> Result<Box<dyn ResultStream>, ResourceError> {
        Ok(Box::new(Subscription(self.inner.results.subscribe())))
    }
}

#[async_trait]
impl ExecutorAdmin for LocalExecutor {
    async fn register(&self, resource: ResourceSpec) -> Result<(), ResourceError> {
        // Names an agent could not see are refused here, before any operation is queued.
        ocf_resources::env::check_instance(&resource.name)?;
        for name in resource.params.keys() {
            ocf_resources::env::check_param_name(name)?;
        }
        for name in resource.meta.keys() {
            ocf_resources::env::check_meta_name(name)?;
        }
        let agent = self.inner.registry.resolve(&resource.agent)?;
        let mut resources = self.lock()?;
        if resources.contains_key(&resource.name) {
            return Err(ResourceError::AlreadyRegistered {
                name: resource.name,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let history = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(worker(
            resource.clone(),
            agent,
            rx,
            history.clone(),
            self.inner.config.history_limit,
            self.inner.slots.clone(),
            self.inner.results.clone(),
        ));
        resources.insert(
            resource.name.clone(),
            Resource {
                spec: resource,
                queue: tx,
                history,
                recurring: HashMap::new(),
            },
        );
        Ok(())
    }

    async fn unregister(&self, name: &str) -> Result<(), ResourceError> {
        let removed = self
            .lock()?
            .remove(name)
            .ok_or_else(|| ResourceError::UnknownResource {
                name: name.to_owned(),
            })?;
        for rec in removed.recurring.values() {
            rec.cancel();
        }
        // Dropping the queue's sender lets the worker finish what is queued, then end.
        Ok(())
    }

    async fn resources(&self) -> Result<Vec<ResourceSpec>, ResourceError> {
        Ok(self.lock()?.values().map(|r| r.spec.clone()).collect())
    }
}

/// A subscriber's stream of results.
struct Subscription(broadcast::Receiver<OperationResult>);

#[async_trait]
impl ResultStream for Subscription {
    async fn next_result(&mut self) -> Result<Option<OperationResult>, ResourceError> {
        match self.0.recv().await {
            Ok(r) => Ok(Some(r)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Err(ResourceError::Lagged { missed })
            }
        }
    }
}
