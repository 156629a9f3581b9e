//! The notes a node keeps and the explanation built from them (pure: no I/O here).

use ocf_fencing::{FenceRecord, NodeDeath};
use serde::{Deserialize, Serialize};

/// One thing a node saw, as kept in its [`IncidentLog`](super::IncidentLog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Note {
    /// When the node recorded it (ms since the Unix epoch, the node's clock).
    pub noted_at_ms: u64,
    /// The node that recorded it, when it knows its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noted_by: Option<String>,
    /// What it saw.
    #[serde(flatten)]
    pub kind: NoteKind,
}

impl Note {
    /// A note of `kind` stamped now.
    pub fn now(kind: NoteKind) -> Self {
        Self {
            noted_at_ms: now_ms(),
            noted_by: None,
            kind,
        }
    }

    /// The same, recorded by `node`.
    #[must_use]
    pub fn by(mut self, node: impl Into<String>) -> Self {
        self.noted_by = Some(node.into());
        self
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, ocf_core::millis::as_millis)
}

/// What a note says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoteKind {
    /// The node installed a view.
    View(ViewChange),
    /// The node's fencer delivered a node-death event.
    NodeDeath {
        /// The event.
        death: NodeDeath,
    },
    /// A manager restarted (or failed to restart) a resource after an incident.
    Recovery(Recovery),
}

/// A view installed, with what changed and the quorum arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ViewChange {
    /// The view's id (`instance.coordinator.epoch`).
    pub view: String,
    /// The node that proposed it.
    pub coordinator: String,
    /// Its members, by name.
    pub members: Vec<String>,
    /// The previous view this node installed, if any.
    pub previous: Option<String>,
    /// The previous view's members.
    pub previous_members: Vec<String>,
    /// Members that left since the previous view.
    pub left: Vec<String>,
    /// Members that joined.
    pub joined: Vec<String>,
    /// Votes present.
    pub votes: u32,
    /// Votes expected.
    pub expected_votes: u32,
    /// Votes needed for quorum.
    pub threshold: u32,
    /// Whether it was quorate (primary).
    pub quorate: bool,
    /// The detector's timers on this cluster: probe period (ms); 0 when the engine detects
    /// failures with timers of its own (Corosync).
    pub heartbeat_ms: u64,
    /// Silence after which a node is declared dead (ms).
    pub dead_ms: u64,
}

/// A recovery a manager noted for an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recovery {
    /// The incident it recovers from.
    pub incident: String,
    /// The resource.
    pub resource: String,
    /// Where it was started.
    pub node: String,
    /// The operation (`start`).
    pub action: String,
    /// The agent's exit code, when it ran.
    pub exit_code: Option<i32>,
    /// Who did it (the manager).
    pub by: String,
    /// When (ms since the Unix epoch, the manager's clock).
    pub at_ms: u64,
}

impl Recovery {
    /// A recovery of `resource` on `node` after `incident`, by `by`, now.
    pub fn new(
        incident: impl Into<String>,
        resource: impl Into<String>,
        node: impl Into<String>,
        exit_code: Option<i32>,
        by: impl Into<String>,
    ) -> Self {
        Self {
            incident: incident.into(),
            resource: resource.into(),
            node: node.into(),
            action: "start".into(),
            exit_code,
            by: by.into(),
            at_ms: now_ms(),
        }
    }
}

/// How the lost node was detected: from the agreed view without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Detection {
    /// The node lost.
    pub target: String,
    /// The node that proposed the view without it.
    pub by: String,
    /// The evidence, in words: the detector's rule with this cluster's timers.
    pub evidence: String,
}

/// The fencer's decision, from its replicated history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FenceDecision {
    /// The record.
    pub record: FenceRecord,
    /// Its duration (ms), when it ended.
    pub duration_ms: Option<u64>,
}

/// The explanation of one incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The incident.
    pub incident: String,
    /// The node it is about.
    pub target: String,
    /// How the node was found lost (absent for an incident a client asked for).
    pub detection: Option<Detection>,
    /// The view without it.
    pub view_change: Option<ViewChange>,
    /// When each node asked installed that view (ms since the Unix epoch, each node's own
    /// clock): the one local part of an explanation, merged across nodes by
    /// [`Explanation::merge`].
    pub installed: std::collections::BTreeMap<String, u64>,
    /// The fence decision.
    pub fence: Option<FenceDecision>,
    /// The node-death event.
    pub node_death: Option<NodeDeath>,
    /// What was restarted after it.
    pub recoveries: Vec<Recovery>,
}

impl Explanation {
    /// Whether `other` tells the same incident the same way (all but the install times).
    pub fn agrees_with(&self, other: &Self) -> bool {
        let strip = |e: &Self| Self {
            installed: std::collections::BTreeMap::new(),
            ..e.clone()
        };
        strip(self) == strip(other)
    }

    /// Adds `other`'s install times.
    pub fn merge(&mut self, other: &Self) {
        self.installed
            .extend(other.installed.iter().map(|(k, v)| (k.clone(), *v)));
    }
}

/// The newest incident: the newest fence record with an incident, or node-death event.
pub fn last_incident(notes: &[Note], records: &[FenceRecord]) -> Option<String> {
    let from_records = records
        .iter()
        .filter_map(|r| Some((r.started_ms, r.incident.as_ref()?.to_string())));
    let from_deaths = notes.iter().filter_map(|n| match &n.kind {
        NoteKind::NodeDeath { death } => Some((death.at_ms, death.incident.to_string())),
        _ => None,
    });
    from_records
        .chain(from_deaths)
        .max_by_key(|(at, _)| *at)
        .map(|(_, i)| i)
}

/// The explanation of `incident` from a node's `notes` and its fence history `records`;
/// `None` when neither knows it.
pub fn explain(incident: &str, notes: &[Note], records: &[FenceRecord]) -> Option<Explanation> {
    let record = records
        .iter()
        .rev()
        .find(|r| r.incident.as_ref().is_some_and(|i| i.as_str() == incident));
    let death = notes.iter().rev().find_map(|n| match &n.kind {
        NoteKind::NodeDeath { death } if death.incident.as_str() == incident => Some(death.clone()),
        _ => None,
    });
    let target = record
        .map(|r| r.target.to_string())
        .or_else(|| death.as_ref().map(|d| d.target.to_string()))
        // The lost-node name: `<node>@left-view-<view>`.
        .or_else(|| {
            incident
                .split_once("@left-view-")
                .map(|(n, _)| n.to_owned())
        })?;
    let lost_in = incident
        .split_once("@left-view-")
        .map(|(_, v)| v.to_owned())
        .or_else(|| death.as_ref().and_then(|d| d.view.clone()));
    let view_notes: Vec<(&Note, &ViewChange)> = lost_in
        .as_deref()
        .map(|v| {
            notes
                .iter()
                .filter_map(|n| match &n.kind {
                    NoteKind::View(c) if c.view == v => Some((n, c)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let view_change = view_notes.first().map(|(_, c)| (*c).clone());
    let installed = view_notes
        .iter()
        .filter_map(|(n, _)| Some((n.noted_by.clone()?, n.noted_at_ms)))
        .collect();
    let recoveries: Vec<Recovery> = {
        let mut r: Vec<Recovery> = notes
            .iter()
            .filter_map(|n| match &n.kind {
                NoteKind::Recovery(r) if r.incident == incident => Some(r.clone()),
                _ => None,
            })
            .collect();
        r.sort_by(|a, b| (a.at_ms, &a.resource, &a.node).cmp(&(b.at_ms, &b.resource, &b.node)));
        r.dedup();
        r
    };
    if record.is_none() && death.is_none() && view_change.is_none() && recoveries.is_empty() {
        return None;
    }
    let detection = view_change
        .as_ref()
        .filter(|c| c.left.contains(&target))
        .map(|c| Detection {
            target: target.clone(),
            by: c.coordinator.clone(),
            evidence: if c.heartbeat_ms == 0 {
                format!(
                    "{target} was a member of view {} and the membership engine (Corosync's \
                     totem) agreed on view {} without it, proposed by {}",
                    c.previous.as_deref().unwrap_or("?"),
                    c.view,
                    c.coordinator
                )
            } else {
                format!(
                "{target} was a member of view {} and stopped answering: the detector probes one \
                 peer every {} ms, suspects a node whose probe and indirect probes go unanswered, \
                 and declares it dead after {} ms of silence ({} ms when helpers confirm it); \
                 {} then proposed view {} without it",
                c.previous.as_deref().unwrap_or("?"),
                c.heartbeat_ms,
                2 * c.dead_ms.saturating_sub(c.heartbeat_ms),
                c.dead_ms.saturating_sub(c.heartbeat_ms),
                c.coordinator,
                c.view
            )
            },
        });
    Some(Explanation {
        incident: incident.to_owned(),
        target,
        detection,
        view_change,
        installed,
        fence: record.map(|r| FenceDecision {
            duration_ms: r.ended_ms.map(|e| e.saturating_sub(r.started_ms)),
            record: r.clone(),
        }),
        node_death: death,
        recoveries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(v: &str, members: &[&str], prev: &[&str], left: &[&str]) -> Note {
        let s = |x: &[&str]| x.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        Note::now(NoteKind::View(ViewChange {
            view: v.into(),
            coordinator: "n1".into(),
            members: s(members),
            previous: Some("1.1.1".into()),
            previous_members: s(prev),
            left: s(left),
            joined: vec![],
            votes: 2,
            expected_votes: 3,
            threshold: 2,
            quorate: true,
            heartbeat_ms: 100,
            dead_ms: 500,
        }))
    }

    #[test]
    fn a_lost_node_is_explained_from_its_view_and_recoveries_and_unknown_ones_are_not() {
        let notes = vec![
            view("1.1.1", &["n1", "n2", "n3"], &[], &[]),
            view("2.1.5", &["n1", "n2"], &["n1", "n2", "n3"], &["n3"]),
            Note::now(NoteKind::Recovery(Recovery::new(
                "n3@left-view-2.1.5",
                "web",
                "n1",
                Some(0),
                "failover@node-1",
            ))),
        ];
        let e = explain("n3@left-view-2.1.5", &notes, &[]).unwrap();
        assert_eq!(e.target, "n3");
        let d = e.detection.unwrap();
        assert_eq!(d.by, "n1");
        assert!(d.evidence.contains("400 ms"), "{}", d.evidence);
        assert_eq!(e.recoveries.len(), 1);
        assert!(explain("n9@left-view-7.1.1", &notes, &[]).is_none());
        assert_eq!(last_incident(&notes, &[]), None);
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::membership::daemon::local_api::Request;

    #[test]
    fn a_note_request_roundtrips() {
        let note = Note::now(NoteKind::Recovery(Recovery::new(
            "i",
            "r",
            "n1",
            Some(0),
            "m",
        )));
        let line = serde_json::to_string(&Request::IncidentNote { note: note.clone() }).unwrap();
        let back: Request = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back, Request::IncidentNote { note });
    }
}
