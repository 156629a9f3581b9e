//! The membership suite: the promises of `ocf_membership`, checked on a live cluster.
//!
//! The implementation provides a [`MembershipCluster`]: a small cluster of at least three nodes
//! that it started for the test, a [`Membership`] handle per node, and (if it can) a way to kill
//! a node. The suite then checks, in order:
//!
//! | check | promise |
//! |---|---|
//! | `membership.local_ids` | every node reports its own, distinct id |
//! | `membership.converges` | all nodes install one view with every node, and it is quorate |
//! | `membership.agreement` | nodes that installed the same view id hold the same members |
//! | `membership.quorum_flags` | a quorate view holds at least its quorum threshold of votes |
//! | `membership.kill_detected` | after a kill, every survivor installs a view without it |
//! | `membership.subscribers_agree` | two subscribers on one node see the same events |
//! | `membership.events_ordered` | per subscriber: `seq` gapless, view ids strictly growing, `joined`/`left` match the previous view, event kinds match quorum changes |
//! | `membership.quorum_kept` | a majority that lost one node stays primary |
//! | `membership.stream_end` | once a node is shut down, its subscription answers `Ok(None)`, and again `Ok(None)` (after at most an `Evicted` and events in flight): the end is never an error |
//!
//! Lag (`Lagged { missed }`, then the stream goes on) cannot be provoked on a live cluster
//! without thousands of view changes; [`check_lag`] checks it on a source whose events the
//! harness can publish at will.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeId;
use ocf_membership::{EventKind, Membership, MembershipEvent, View, ViewId};

use crate::{Clock, Report, timeout};

/// A test cluster an implementation starts for the suite.
#[async_trait]
pub trait MembershipCluster: Send + Sync {
    /// A name for reports, such as `builtin (5 nodes on loopback)`.
    fn implementation(&self) -> String;

    /// One handle per node, index `i` for node `i`. At least three nodes.
    fn nodes(&self) -> Vec<Arc<dyn Membership>>;

    /// The clock the suite waits on.
    fn clock(&self) -> &dyn Clock;

    /// Kills node `index` abruptly (as `kill -9` would); `Err` when the implementation cannot.
    async fn kill(&self, index: usize) -> Result<(), String>;

    /// Shuts node `index` down cleanly, as an operator stopping its service would: its
    /// subscriptions must then end (`Ok(None)`). `Err` when the implementation cannot (the
    /// default): `membership.stream_end` is then skipped.
    async fn shut_down(&self, index: usize) -> Result<(), String> {
        Err(format!("the harness cannot shut node {index} down"))
    }
}

/// How long the suite waits for things to happen.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The longest time to wait for a view to settle (after start or after a kill).
    pub settle: Duration,
    /// How often to poll `current_view` while waiting.
    pub poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(20),
            poll: Duration::from_millis(50),
        }
    }
}

impl Options {
    /// Options with a given settle time.
    pub fn with_settle(settle: Duration) -> Self {
        Self {
            settle,
            ..Self::default()
        }
    }
}

const STREAM_END: &str =
    "once a node is shut down, its subscription answers Ok(None), and again Ok(None)";

/// Runs the membership suite against `cluster`.
pub async fn run(cluster: &dyn MembershipCluster, options: &Options) -> Report {
    let mut report = Report::new("membership", cluster.implementation());
    let nodes = cluster.nodes();
    if nodes.len() < 3 {
        report.record_result(
            "membership.setup",
            "the harness provides at least three nodes",
            Err(format!("got {} nodes", nodes.len())),
        );
        return report;
    }
    let Some((ids, first)) = check_start(&mut report, cluster, &nodes, options).await else {
        return report;
    };
    check_kill(&mut report, cluster, &nodes, &ids, first, options).await;
    check_stream_end(&mut report, cluster, &nodes[0], options).await;
    report
}

/// `local_ids`, `converges` and `quorum_flags`: the nodes' ids and the views they settled
/// on, if they did.
async fn check_start(
    report: &mut Report,
    cluster: &dyn MembershipCluster,
    nodes: &[Arc<dyn Membership>],
    options: &Options,
) -> Option<(Vec<NodeId>, Vec<View>)> {
    let ids = local_ids(nodes).await;
    report.record_result(
        "membership.local_ids",
        "every node reports its own, distinct id",
        ids.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let ids = ids.ok()?;
    let settled = settle(cluster, nodes, &ids, options).await;
    report.record_result(
        "membership.converges",
        "all nodes install one quorate view holding every node",
        settled.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let first = settled.ok()?;
    report.record_result(
        "membership.quorum_flags",
        "a quorate view holds at least its quorum threshold of votes",
        check_quorum_flags(&first),
    );
    Some((ids, first))
}

/// `kill_detected`, `quorum_kept`, `subscribers_agree`, `events_ordered` and `agreement`:
/// two subscribers on node 0 watch the last node being killed.
async fn check_kill(
    report: &mut Report,
    cluster: &dyn MembershipCluster,
    nodes: &[Arc<dyn Membership>],
    ids: &[NodeId],
    first: Vec<View>,
    options: &Options,
) {
    let watcher = &nodes[0];
    let (mut sub_a, mut sub_b) = match (watcher.subscribe().await, watcher.subscribe().await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            report.record_result(
                "membership.subscribers_agree",
                "two subscribers on one node see the same events",
                Err(format!("subscribe failed: {e}")),
            );
            return;
        }
    };
    let victim = nodes.len() - 1;
    if let Err(why) = cluster.kill(victim).await {
        report.record(
            "membership.kill_detected",
            "after a kill, every survivor installs a view without it",
            crate::CheckOutcome::Skip(format!("the harness cannot kill a node: {why}")),
        );
        return;
    }
    let survivors = &ids[..victim];
    let after = settle(cluster, &nodes[..victim], survivors, options).await;
    report.record_result(
        "membership.kill_detected",
        "after a kill, every survivor installs one view without it",
        after.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let Ok(after) = after else { return };
    report.record_result(
        "membership.quorum_kept",
        "a majority that lost one node stays primary",
        if after[0].is_quorate() {
            Ok(())
        } else {
            Err(format!("view {} is not quorate", after[0].id))
        },
    );
    let target = after[0].id;
    let clock = cluster.clock();
    let events_a = collect_until(clock, sub_a.as_mut(), target, options.settle).await;
    let events_b = collect_until(clock, sub_b.as_mut(), target, options.settle).await;
    record_events(report, sub_a.initial_view(), &events_a, &events_b);
    let mut views: Vec<View> = first;
    views.extend(after);
    if let Ok(evs) = &events_a {
        views.extend(evs.iter().map(|e| e.view.clone()));
    }
    report.record_result(
        "membership.agreement",
        "nodes that installed the same view id hold the same members",
        check_agreement(&views),
    );
}

type Events = Result<Vec<MembershipEvent>, String>;

/// `subscribers_agree` and `events_ordered`, from two subscribers' events.
fn record_events(report: &mut Report, initial: Option<&View>, a: &Events, b: &Events) {
    report.record_result(
        "membership.subscribers_agree",
        "two subscribers on one node see the same events in the same order",
        match (a, b) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Ok(a), Ok(b)) => Err(format!(
                "subscriber A saw {:?}, B saw {:?}",
                summary(a),
                summary(b)
            )),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        },
    );
    report.record_result(
        "membership.events_ordered",
        "seq is gapless, view ids grow, joined/left and kinds match the previous view",
        a.as_ref()
            .map_err(Clone::clone)
            .and_then(|evs| check_event_order(initial, evs)),
    );
}

/// `stream_end`: a subscription on `node` ends with `Ok(None)` twice once the harness shuts
/// the node down.
async fn check_stream_end(
    report: &mut Report,
    cluster: &dyn MembershipCluster,
    node: &Arc<dyn Membership>,
    options: &Options,
) {
    let mut sub = match node.subscribe().await {
        Ok(sub) => sub,
        Err(e) => {
            report.record_result(
                "membership.stream_end",
                STREAM_END,
                Err(format!("subscribe failed: {e}")),
            );
            return;
        }
    };
    if let Err(why) = cluster.shut_down(0).await {
        report.record(
            "membership.stream_end",
            STREAM_END,
            crate::CheckOutcome::Skip(why),
        );
        return;
    }
    let clock = cluster.clock();
    let result = async {
        let mut seen = Vec::new();
        // Events in flight and the `Evicted` of a leaving node may come first; a few at most.
        while seen.len() <= 8 {
            match timeout(clock, options.settle, sub.next_event()).await {
                None => {
                    return Err(format!(
                        "no end within {:?} of the shutdown; saw {:?}",
                        options.settle,
                        summary(&seen)
                    ));
                }
                Some(Err(e)) => return Err(format!("the stream failed rather than ended: {e}")),
                Some(Ok(Some(ev))) => seen.push(ev),
                Some(Ok(None)) => break,
            }
        }
        if seen.len() > 8 {
            return Err(format!(
                "events went on after the shutdown: {:?}",
                summary(&seen)
            ));
        }
        match timeout(clock, options.settle, sub.next_event()).await {
            Some(Ok(None)) => Ok(()),
            None => Err("the call after the end hung rather than answering Ok(None)".into()),
            Some(Ok(Some(ev))) => Err(format!("an event after the end: #{} {:?}", ev.seq, ev.kind)),
            Some(Err(e)) => Err(format!(
                "the call after the end gave an error, not Ok(None): {e}"
            )),
        }
    }
    .await;
    report.record_result("membership.stream_end", STREAM_END, result);
}

/// Checks that a subscriber that falls behind gets `Lagged { missed }` with `missed > 0` and
/// then the events after the gap, in order, up to the last one published: the stream goes on.
/// (A source that drains its subscriber's buffer while the events are still being published,
/// as a daemon forwarding them does, may lag more than once; each gap is reported.)
///
/// `source` must be idle (no events of its own while this runs). `publish(n)` makes it
/// publish `n` events at once and answers the `seq` of the last; `n` is `capacity * 4 + 8`,
/// where `capacity` is the most events the source buffers per subscriber (more than that, and
/// any socket buffers on the way, can hold).
///
/// # Errors
///
/// What was seen against what was promised.
pub async fn check_lag<F, Fut>(
    clock: &dyn Clock,
    source: &dyn Membership,
    capacity: usize,
    publish: F,
) -> Result<(), String>
where
    F: FnOnce(usize) -> Fut + Send,
    Fut: std::future::Future<Output = u64> + Send,
{
    let mut sub = source
        .subscribe()
        .await
        .map_err(|e| format!("subscribe failed: {e}"))?;
    let count = capacity * 4 + 8;
    let end = publish(count).await;
    let limit = Duration::from_secs(30);
    let mut lagged = false;
    let mut last: Option<u64> = None;
    let mut received = 0usize;
    loop {
        match timeout(clock, limit, sub.next_event()).await {
            None => {
                return Err(format!(
                    "after {count} events unread: lagged {lagged}, then {received} events"
                ));
            }
            Some(Err(ocf_membership::MembershipError::Lagged { missed })) if missed > 0 => {
                lagged = true;
                last = None;
            }
            Some(Err(e)) => return Err(format!("expected Lagged, then events; got {e}")),
            Some(Ok(None)) => {
                return Err("the stream ended instead of going on after the gap".into());
            }
            Some(Ok(Some(ev))) => {
                // Within a stretch (from the start, or from a Lagged) seq has no gap.
                if let Some(l) = last
                    && ev.seq != l + 1
                {
                    return Err(format!(
                        "seq jumped from {l} to {} with no Lagged between",
                        ev.seq
                    ));
                }
                last = Some(ev.seq);
                received += 1;
                if ev.seq >= end {
                    return if lagged {
                        Ok(())
                    } else {
                        Err(
                            "every event arrived although the subscriber never read: no Lagged"
                                .into(),
                        )
                    };
                }
            }
        }
    }
}

async fn local_ids(nodes: &[Arc<dyn Membership>]) -> Result<Vec<NodeId>, String> {
    let mut ids = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let id = n
            .local_node()
            .await
            .map_err(|e| format!("node {i}: local_node failed: {e}"))?;
        if ids.contains(&id) {
            return Err(format!(
                "node {i} reports id {id}, which another node reports too"
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Waits until every node in `nodes` reports the same view holding exactly `expected`.
async fn settle(
    cluster: &dyn MembershipCluster,
    nodes: &[Arc<dyn Membership>],
    expected: &[NodeId],
    options: &Options,
) -> Result<Vec<View>, String> {
    let clock = cluster.clock();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    let mut waited = Duration::ZERO;
    let mut last = String::from("no view yet");
    loop {
        let mut views = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            match n.current_view().await {
                Ok(Some(v)) => views.push(v),
                Ok(None) => last = format!("node {i} has no view yet"),
                Err(e) => last = format!("node {i}: current_view failed: {e}"),
            }
        }
        if views.len() == nodes.len() {
            let ids: Vec<NodeId> = views[0].member_ids().collect();
            let same = views.iter().all(|v| v.id == views[0].id);
            if same && ids == expected {
                return Ok(views);
            }
            last = format!(
                "views: {}",
                views
                    .iter()
                    .map(|v| format!("{} {:?}", v.id, v.member_ids().collect::<Vec<_>>()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if waited >= options.settle {
            return Err(format!(
                "no single view holding {expected:?} within {:?}; last seen {last}",
                options.settle
            ));
        }
        clock.sleep(options.poll).await;
        waited += options.poll;
    }
}

async fn collect_until(
    clock: &dyn Clock,
    sub: &mut dyn ocf_membership::Subscription,
    target: ViewId,
    limit: Duration,
) -> Result<Vec<MembershipEvent>, String> {
    let mut events = Vec::new();
    if sub.initial_view().is_some_and(|v| v.id >= target) {
        return Ok(events);
    }
    loop {
        match timeout(clock, limit, sub.next_event()).await {
            None => {
                return Err(format!(
                    "no event with view {target} within {limit:?}; saw {:?}",
                    summary(&events)
                ));
            }
            Some(Err(e)) => return Err(format!("next_event failed: {e}")),
            Some(Ok(None)) => return Err("the event stream ended".into()),
            Some(Ok(Some(ev))) => {
                let done = ev.view.id >= target;
                events.push(ev);
                if done {
                    return Ok(events);
                }
            }
        }
    }
}

fn summary(events: &[MembershipEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("#{} {:?} {}", e.seq, e.kind, e.view.id))
        .collect()
}

/// A quorate view holds at least its quorum threshold of votes.
///
/// # Errors
///
/// The first view that does not.
pub fn check_quorum_flags(views: &[View]) -> Result<(), String> {
    for v in views {
        let q = v.quorum();
        if q.quorate && q.votes < q.threshold {
            return Err(format!(
                "view {} is quorate with {} votes, below its threshold of {}",
                v.id, q.votes, q.threshold
            ));
        }
    }
    Ok(())
}

/// Same view id ⇒ same member list, across every view given (from any nodes).
pub fn check_agreement(views: &[View]) -> Result<(), String> {
    let mut seen: BTreeMap<ViewId, Vec<NodeId>> = BTreeMap::new();
    for v in views {
        let members: Vec<NodeId> = v.member_ids().collect();
        if let Some(before) = seen.get(&v.id) {
            if *before != members {
                return Err(format!(
                    "view {} installed with members {before:?} and with {members:?}",
                    v.id
                ));
            }
        } else {
            seen.insert(v.id, members);
        }
    }
    Ok(())
}

/// One subscriber's events: gapless `seq`, strictly growing view ids, `joined`/`left` derived
/// from the previous view, and kinds that match quorum transitions.
pub fn check_event_order(initial: Option<&View>, events: &[MembershipEvent]) -> Result<(), String> {
    let mut previous = initial.cloned();
    let mut last_seq: Option<u64> = None;
    for ev in events {
        if let Some(s) = last_seq {
            if ev.seq != s + 1 {
                return Err(format!("seq jumped from {s} to {}", ev.seq));
            }
        }
        last_seq = Some(ev.seq);
        if ev.kind == EventKind::Evicted {
            continue;
        }
        if let Some(p) = &previous {
            if ev.view.id <= p.id {
                return Err(format!("view {} followed view {}", ev.view.id, p.id));
            }
            let expected = View::new(
                ev.view.id,
                ev.view.members().to_vec(),
                Some(p),
                *ev.view.quorum(),
            );
            if expected.joined() != ev.view.joined() || expected.left() != ev.view.left() {
                return Err(format!(
                    "view {}: joined {:?} left {:?}, but against view {} they are {:?} and {:?}",
                    ev.view.id,
                    ev.view.joined(),
                    ev.view.left(),
                    p.id,
                    expected.joined(),
                    expected.left()
                ));
            }
        }
        let want = EventKind::for_transition(
            previous.as_ref().map(View::is_quorate),
            ev.view.is_quorate(),
        );
        if ev.kind != want {
            return Err(format!(
                "event #{} for view {} is {:?}, expected {want:?} from the quorum change",
                ev.seq, ev.view.id, ev.kind
            ));
        }
        previous = Some(ev.view.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_membership::{Member, Quorum};

    fn view(instance: u64, members: &[u32], prev: Option<&View>) -> View {
        let ms = members
            .iter()
            .map(|&i| Member::new(NodeId::new(i), format!("n{i}").parse().unwrap()))
            .collect();
        View::new(
            ViewId::new(instance, NodeId::new(1), 0),
            ms,
            prev,
            Quorum::majority(members.len() as u32, 3),
        )
    }

    #[test]
    fn agreement_catches_two_member_lists_under_one_id() {
        let a = view(1, &[1, 2, 3], None);
        let b = view(1, &[1, 2], None);
        assert!(check_agreement(&[a.clone(), a.clone()]).is_ok());
        assert!(
            check_agreement(&[a, b])
                .unwrap_err()
                .contains("installed with members")
        );
    }

    #[test]
    fn event_order_catches_gaps_regressions_and_wrong_kinds() {
        let v1 = view(1, &[1, 2, 3], None);
        let v2 = view(2, &[1, 2], Some(&v1));
        let v3 = view(3, &[1], Some(&v2));
        let good = vec![
            MembershipEvent::new(5, EventKind::NewMembership, v2.clone()),
            MembershipEvent::new(6, EventKind::NotPrimary, v3.clone()),
        ];
        check_event_order(Some(&v1), &good).unwrap();

        let gap = vec![
            MembershipEvent::new(5, EventKind::NewMembership, v2.clone()),
            MembershipEvent::new(7, EventKind::NotPrimary, v3.clone()),
        ];
        assert!(
            check_event_order(Some(&v1), &gap)
                .unwrap_err()
                .contains("seq jumped")
        );

        let wrong_kind = vec![MembershipEvent::new(
            1,
            EventKind::NewMembership,
            v3.clone(),
        )];
        assert!(
            check_event_order(Some(&v2), &wrong_kind)
                .unwrap_err()
                .contains("expected NotPrimary")
        );

        let backwards = vec![MembershipEvent::new(
            1,
            EventKind::NewMembership,
            v1.clone(),
        )];
        assert!(
            check_event_order(Some(&v2), &backwards)
                .unwrap_err()
                .contains("followed")
        );
    }
}
