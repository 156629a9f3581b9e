//! What a node daemon records on its own: every view it installs and every node-death event
//! its fencer delivers, into its [`IncidentLog`].

use std::sync::Arc;

use ocf_fencing::{FenceEvent, Fencer};
use ocf_membership::{Membership, View};

use super::log::IncidentLog;
use super::record::{Note, NoteKind, ViewChange};

/// The detector's timers, as the notes of views give them.
#[derive(Debug, Clone, Copy)]
pub struct DetectorTimers {
    /// The probe period (ms).
    pub heartbeat_ms: u64,
    /// The silence after which a node is dead (ms).
    pub dead_ms: u64,
}

fn names(view: &View, ids: &[ocf_core::NodeId], prev: Option<&View>) -> Vec<String> {
    ids.iter()
        .map(|id| {
            view.member(*id)
                .or_else(|| prev.and_then(|p| p.member(*id)))
                .map_or_else(|| format!("node{id}"), |m| m.name.to_string())
        })
        .collect()
}

/// The note of `view` installed after `prev`.
pub fn view_note(view: &View, prev: Option<&View>, timers: DetectorTimers) -> ViewChange {
    let q = view.quorum();
    let member_names = |v: &View| v.members().iter().map(|m| m.name.to_string()).collect();
    ViewChange {
        view: view.id.to_string(),
        coordinator: view
            .member(view.id.coordinator)
            .or_else(|| prev.and_then(|p| p.member(view.id.coordinator)))
            .map_or_else(
                || format!("node{}", view.id.coordinator),
                |m| m.name.to_string(),
            ),
        members: member_names(view),
        previous: prev.map(|p| p.id.to_string()),
        previous_members: prev.map(member_names).unwrap_or_default(),
        left: names(view, view.left(), prev),
        joined: names(view, view.joined(), prev),
        votes: q.votes,
        expected_votes: q.expected_votes,
        threshold: q.threshold,
        quorate: q.quorate,
        heartbeat_ms: timers.heartbeat_ms,
        dead_ms: timers.dead_ms,
    }
}

/// Follows `membership`'s views and `fencer`'s node-death events into `log` until both
/// streams end (abort the task to stop it earlier).
pub fn spawn(
    log: Arc<IncidentLog>,
    membership: Arc<dyn Membership>,
    fencer: Option<Arc<dyn Fencer>>,
    timers: DetectorTimers,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let views = {
            let log = Arc::clone(&log);
            async move {
                let Ok(mut sub) = membership.subscribe().await else {
                    tracing::warn!("incident log: cannot follow the membership");
                    return;
                };
                let me = membership.local_node().await.ok();
                let mut last = sub.initial_view().cloned();
                loop {
                    match sub.next_event().await {
                        Ok(Some(ev)) => {
                            if last.as_ref().is_some_and(|l| l.id == ev.view.id) {
                                continue; // a lease change of the same view
                            }
                            let note = view_note(&ev.view, last.as_ref(), timers);
                            let mut note = Note::now(NoteKind::View(note));
                            if let Some(m) = me.and_then(|me| ev.view.member(me)) {
                                note = note.by(m.name.to_string());
                            }
                            log.append(note);
                            last = Some(ev.view);
                        }
                        Err(e) if e.kind() == ocf_membership::MembershipErrorKind::Lagged => {}
                        Ok(None) | Err(_) => return,
                    }
                }
            }
        };
        let deaths = async move {
            let Some(fencer) = fencer else { return };
            let Ok(mut stream) = fencer.subscribe().await else {
                tracing::warn!("incident log: cannot follow the fencer's events");
                return;
            };
            loop {
                match stream.next_event().await {
                    Ok(Some(FenceEvent::NodeDeath { death })) => {
                        log.append(Note::now(NoteKind::NodeDeath { death: *death }));
                    }
                    Ok(Some(_)) => {}
                    Err(e) if e.kind() == ocf_fencing::FenceErrorKind::Lagged => {}
                    Ok(None) | Err(_) => return,
                }
            }
        };
        tokio::join!(views, deaths);
    })
}
