//! The checkers: each takes the recorded histories and names every violation of one promise
//! of the membership invariant of docs/src/concepts.md (and ALGORITHM.md's checkers of the same names).
//!
//! - [`agreement`]: every node that installs view id V installs the same member list.
//! - [`monotonic_views`]: within one process, installed view ids strictly increase, `seq` has
//!   no gaps, and an eviction carries the last installed view.
//! - [`no_two_primaries`]: at no instant are two nodes primary in different views of which
//!   the older one's holder is not a member of the newer one (split brain; see
//!   [`two_primaries`] for why a holder that *is* a member is a hand-over, not a split).
//! - [`convergence`]: after the final heal every running node holds one quorate view of all
//!   nodes within a bound.

use std::collections::BTreeMap;

use super::history::{Kind, ProcessHistory, ViewId, ViewRec};

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it.
    pub checker: &'static str,
    /// What happened, naming the processes, views and times.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.checker, self.detail)
    }
}

fn violation(checker: &'static str, detail: String) -> Violation {
    Violation { checker, detail }
}

/// `agreement`: every record of view id V, on every process, carries the same member list
/// (ids, names, votes and `born_on`). Lines that did not parse are violations too.
pub fn agreement(histories: &[ProcessHistory]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut first: BTreeMap<ViewId, (String, &ViewRec)> = BTreeMap::new();
    for h in histories {
        for m in &h.malformed {
            out.push(violation(
                "agreement",
                format!("{}: unreadable line {m}", h.name()),
            ));
        }
        for r in &h.records {
            match first.get(&r.view.id) {
                None => {
                    first.insert(r.view.id, (h.name(), &r.view));
                }
                Some((who, v)) if v.members_json != r.view.members_json => {
                    out.push(violation(
                        "agreement",
                        format!(
                            "view {:?}: {who} installed members {} but {} installed {}",
                            r.view.id,
                            v.members_json,
                            h.name(),
                            r.view.members_json
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    out
}

/// `monotonic_views`: per process, each installed view (initial view and events other than
/// `evicted`) has a larger id than the one before, `seq` goes up by one from the first event
/// seen, and an `evicted` event carries the last installed view.
pub fn monotonic_views(histories: &[ProcessHistory]) -> Vec<Violation> {
    let mut out = Vec::new();
    for h in histories {
        let mut installed: Option<ViewId> = None;
        let mut seq: Option<u64> = None;
        for r in &h.records {
            if r.kind != Kind::Initial {
                if let Some(prev) = seq
                    && r.seq != prev + 1
                {
                    out.push(violation(
                        "monotonic_views",
                        format!("{}: seq {} follows seq {prev}", h.name(), r.seq),
                    ));
                }
                seq = Some(r.seq);
            }
            if r.kind == Kind::Evicted {
                if installed.is_some_and(|v| v != r.view.id) {
                    out.push(violation(
                        "monotonic_views",
                        format!(
                            "{}: evicted (seq {}) with view {:?}, but the last installed is {:?}",
                            h.name(),
                            r.seq,
                            r.view.id,
                            installed
                        ),
                    ));
                }
                continue;
            }
            // A lease that lapses or comes back is reported with the same view.
            let primacy_only = matches!(r.kind, Kind::NotPrimary | Kind::PrimaryRestored);
            if let Some(prev) = installed
                && (r.view.id < prev || (r.view.id == prev && !primacy_only))
            {
                out.push(violation(
                    "monotonic_views",
                    format!(
                        "{}: installed view {:?} (seq {}) after view {prev:?}",
                        h.name(),
                        r.view.id,
                        r.seq
                    ),
                ));
            }
            installed = Some(installed.map_or(r.view.id, |p| p.max(r.view.id)));
        }
    }
    out
}

/// A stretch of time in which one process held itself primary in one view.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The node.
    pub node: u32,
    /// Its process (see [`ProcessHistory::generation`]).
    pub generation: u32,
    /// The view.
    pub view: ViewId,
    /// The view's members.
    pub members: Vec<u64>,
    /// From (µs since the epoch).
    pub start_us: u64,
    /// Until (µs since the epoch, exclusive).
    pub end_us: u64,
    /// Whether both ends are exact: the events' own `at_us`, or a kill or the end of the
    /// recording (not a recorder's receive time, which lags by its read latency).
    pub exact: bool,
}

impl Interval {
    fn name(&self) -> String {
        format!("n{}.{}", self.node, self.generation)
    }
}

/// The intervals in which process `h` was primary: from a record whose view is quorate (and
/// that is not an eviction) until its next record that leaves that view (another view, a
/// non-quorate one, `not_primary` or `evicted`), or until the process was killed, or `end_us`
/// (the end of the recording) for a process still running. A paused process stays primary:
/// it believes it is until it learns otherwise.
pub fn primary_intervals(h: &ProcessHistory, end_us: u64) -> Vec<Interval> {
    /// The open interval: view, members, start, whether the start is exact.
    type Open = Option<(ViewId, Vec<u64>, u64, bool)>;
    let mut out = Vec::new();
    let mut open: Open = None;
    let close = |open: &mut Open, at: u64, exact_end: bool, out: &mut Vec<Interval>| {
        if let Some((view, members, start_us, exact_start)) = open.take() {
            out.push(Interval {
                node: h.node,
                generation: h.generation,
                view,
                members,
                start_us,
                end_us: at.max(start_us),
                exact: exact_start && exact_end,
            });
        }
    };
    for r in &h.records {
        let primary = r.view.quorate && !matches!(r.kind, Kind::Evicted | Kind::NotPrimary);
        let same = open.as_ref().is_some_and(|(v, ..)| *v == r.view.id);
        if primary && same {
            continue;
        }
        // A node stops acting on its view when it accepts the next one, which the install
        // event says; before that the hand-over would look like an overlap.
        let until = r.prior_primary_until_us.map_or(r.at_us, |p| p.min(r.at_us));
        close(&mut open, until, r.stamped, &mut out);
        if primary {
            open = Some((r.view.id, r.view.members.clone(), r.at_us, r.stamped));
        }
    }
    close(&mut open, h.killed_us.unwrap_or(end_us), true, &mut out);
    out
}

/// How much of an overlap between inexact intervals ([`Interval::exact`]) the recorders'
/// read latency can explain: such overlaps up to this long are reported, not violations.
/// Events that carry `at_us` get no slack.
pub const RECEIVE_SLACK_US: u64 = 25_000;

/// Two processes primary at once in different views.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// The process holding the older view.
    pub older: Interval,
    /// The process holding the newer view.
    pub newer: Interval,
    /// When both were primary: from (µs since the epoch).
    pub from_us: u64,
    /// Until (exclusive).
    pub to_us: u64,
}

impl Overlap {
    /// Its length in milliseconds.
    pub fn ms(&self) -> f64 {
        (self.to_us - self.from_us) as f64 / 1000.0
    }

    /// Whether it is a split brain: the older view's holder is not a member of the newer
    /// view.
    pub fn split_brain(&self) -> bool {
        !self.newer.members.contains(&u64::from(self.older.node))
    }

    /// Whether receive-time lag could explain it: an end is not exact and it is no longer
    /// than [`RECEIVE_SLACK_US`].
    pub fn within_slack(&self) -> bool {
        !(self.older.exact && self.newer.exact) && self.to_us - self.from_us <= RECEIVE_SLACK_US
    }

    /// One line naming both sides.
    pub fn describe(&self) -> String {
        format!(
            "{:.1} ms: {} primary in {:?} {:?} while {} primary in {:?} {:?}",
            self.ms(),
            self.older.name(),
            self.older.view,
            self.older.members,
            self.newer.name(),
            self.newer.view,
            self.newer.members
        )
    }
}

/// Every pair of intervals of two different nodes, in different views, that overlap in time,
/// longest first.
///
/// Each is either a **split brain** ([`Overlap::split_brain`]: the holder of the older view is
/// not in the newer one, so two groups each believe they are the primary partition) or a
/// **hand-over**: the holder of the older view is a member of the newer one, so it accepted
/// the newer view's proposal (a view commits only after every member accepted) and has not
/// yet received the commit. Every ordinary view change has hand-overs of a few milliseconds
/// (the coordinator installs before its commit reaches the others); only split brains
/// violate "at most one partition is primary at a time".
pub fn two_primaries(histories: &[ProcessHistory], end_us: u64) -> Vec<Overlap> {
    let intervals: Vec<Interval> = histories
        .iter()
        .flat_map(|h| primary_intervals(h, end_us))
        .collect();
    let mut out = Vec::new();
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            if a.node == b.node || a.view == b.view {
                continue;
            }
            let from_us = a.start_us.max(b.start_us);
            let to_us = a.end_us.min(b.end_us);
            if from_us >= to_us {
                continue;
            }
            let (older, newer) = if a.view < b.view { (a, b) } else { (b, a) };
            out.push(Overlap {
                older: older.clone(),
                newer: newer.clone(),
                from_us,
                to_us,
            });
        }
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.to_us - o.from_us));
    out
}

/// `no_two_primaries`: one violation per split brain (see [`two_primaries`]), and per
/// hand-over whose both ends the nodes stamped themselves (`at_us`, and
/// `prior_primary_until_us` for when a node stopped acting on its old view): an engine that
/// says when each node stopped and started acting must show no overlap at all, at any
/// instant. Overlaps within the receive-time slack ([`Overlap::within_slack`]) are not
/// violations.
pub fn no_two_primaries(histories: &[ProcessHistory], end_us: u64) -> Vec<Violation> {
    two_primaries(histories, end_us)
        .into_iter()
        .filter(|o| (o.split_brain() || (o.older.exact && o.newer.exact)) && !o.within_slack())
        .map(|o| violation("no_two_primaries", o.describe()))
        .collect()
}

/// `convergence`: every node has a running process whose last record installs one and the
/// same quorate view with exactly `nodes` as members, and the last of them to install it did
/// so at most `bound_us` after `heal_us`. Returns how long after the heal that was (0 when it
/// was already installed before).
pub fn convergence(
    histories: &[ProcessHistory],
    heal_us: u64,
    bound_us: u64,
    nodes: &[u64],
) -> Result<u64, Violation> {
    let fail = |d: String| violation("convergence", d);
    let mut common: Option<ViewId> = None;
    let mut last_install = heal_us;
    for &node in nodes {
        let h = histories
            .iter()
            .find(|h| u64::from(h.node) == node && h.killed_us.is_none())
            .ok_or_else(|| fail(format!("n{node} has no running process")))?;
        let view = h
            .latest_view()
            .ok_or_else(|| fail(format!("{} ends holding no view (or evicted)", h.name())))?;
        let mut members = view.members.clone();
        members.sort_unstable();
        if members != nodes || !view.quorate {
            return Err(fail(format!(
                "{} ends in view {:?} with members {:?}, quorate {}",
                h.name(),
                view.id,
                view.members,
                view.quorate
            )));
        }
        if common.is_some_and(|c| c != view.id) {
            return Err(fail(format!(
                "{} ends in view {:?}, another node in {:?}",
                h.name(),
                view.id,
                common
            )));
        }
        common = Some(view.id);
        let installed = h
            .records
            .iter()
            .find(|r| r.view.id == view.id)
            .map_or(heal_us, |r| r.at_us);
        last_install = last_install.max(installed);
    }
    let took = last_install - heal_us;
    if took > bound_us {
        return Err(fail(format!(
            "the last node installed the final view {} ms after the final heal (bound {} ms)",
            took / 1000,
            bound_us / 1000
        )));
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::super::history::Record;
    use super::*;

    /// A view whose members carry only ids and names (enough for the checkers).
    fn view(id: ViewId, members: &[u64], quorate: bool) -> ViewRec {
        ViewRec {
            id,
            members: members.to_vec(),
            members_json: serde_json::json!(
                members
                    .iter()
                    .map(|m| serde_json::json!({"id": m, "name": format!("n{m}")}))
                    .collect::<Vec<_>>()
            ),
            quorate,
        }
    }

    /// A record at `ms` milliseconds.
    fn rec(ms: u64, seq: u64, kind: Kind, id: ViewId, members: &[u64], quorate: bool) -> Record {
        Record {
            at_us: ms * 1000,
            stamped: true,
            prior_primary_until_us: None,
            seq,
            kind,
            view: view(id, members, quorate),
        }
    }

    fn process(node: u32, killed_ms: Option<u64>, records: Vec<Record>) -> ProcessHistory {
        ProcessHistory {
            node,
            generation: 1,
            started_us: 0,
            killed_us: killed_ms.map(|ms| ms * 1000),
            records,
            malformed: Vec::new(),
        }
    }

    const ALL: [u64; 5] = [1, 2, 3, 4, 5];
    const V1: ViewId = (1, 1, 100);
    const V2: ViewId = (2, 1, 100);
    const V3: ViewId = (3, 1, 100);

    /// Five processes that installed V1 (all five) at 100 ms.
    fn formed() -> Vec<ProcessHistory> {
        (1..=5)
            .map(|n| {
                process(
                    n,
                    None,
                    vec![rec(100, 1, Kind::NewMembership, V1, &ALL, true)],
                )
            })
            .collect()
    }

    #[test]
    fn agreement_catches_one_id_with_two_member_lists() {
        let mut h = formed();
        assert!(agreement(&h).is_empty());
        h[4].records[0].view = view(V1, &[1, 2, 3, 5], true);
        let v = agreement(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("n5.1"), "{v:?}");
        h[4].records[0].view = view(V1, &ALL, true);
        h[2].malformed.push("not JSON: {".into());
        assert_eq!(agreement(&h).len(), 1);
    }

    #[test]
    fn monotonic_catches_a_step_back_a_gap_and_a_wrong_eviction() {
        let good = process(
            1,
            None,
            vec![
                rec(0, 0, Kind::Initial, V1, &ALL, true),
                rec(10, 4, Kind::NotPrimary, V2, &[1, 2], false),
                rec(20, 5, Kind::Evicted, V2, &[1, 2], false),
                rec(30, 6, Kind::PrimaryRestored, V3, &ALL, true),
            ],
        );
        assert!(monotonic_views(&[good]).is_empty());
        let back = process(
            1,
            None,
            vec![
                rec(10, 1, Kind::NewMembership, V2, &ALL, true),
                rec(20, 2, Kind::NewMembership, V1, &ALL, true),
            ],
        );
        let gap = process(
            2,
            None,
            vec![
                rec(10, 1, Kind::NewMembership, V1, &ALL, true),
                rec(20, 3, Kind::NewMembership, V2, &ALL, true),
            ],
        );
        let eviction = process(
            3,
            None,
            vec![
                rec(10, 1, Kind::NewMembership, V2, &ALL, true),
                rec(20, 2, Kind::Evicted, V1, &ALL, true),
            ],
        );
        for h in [back, gap, eviction] {
            assert_eq!(monotonic_views(std::slice::from_ref(&h)).len(), 1, "{h:?}");
        }
        // A restarted node is a new process: its seq and views start over.
        let mut again = process(
            1,
            None,
            vec![rec(50, 1, Kind::NewMembership, V3, &ALL, true)],
        );
        again.generation = 2;
        let first = process(
            1,
            Some(40),
            vec![rec(10, 7, Kind::NewMembership, (9, 1, 1), &ALL, true)],
        );
        assert!(monotonic_views(&[first, again]).is_empty());
    }

    #[test]
    fn intervals_end_at_not_primary_eviction_kill_or_the_end() {
        let h = process(
            5,
            Some(900),
            vec![
                rec(100, 1, Kind::NewMembership, V1, &ALL, true),
                rec(200, 2, Kind::NotPrimary, V2, &[5], false),
                rec(300, 3, Kind::PrimaryRestored, V3, &ALL, true),
            ],
        );
        let iv = primary_intervals(&h, 5000);
        let spans: Vec<_> = iv.iter().map(|i| (i.view, i.start_us, i.end_us)).collect();
        assert_eq!(spans, vec![(V1, 100_000, 200_000), (V3, 300_000, 900_000)]);
        let mut running = h.clone();
        running.killed_us = None;
        assert_eq!(primary_intervals(&running, 5_000_000)[1].end_us, 5_000_000);
        let evicted = process(
            4,
            None,
            vec![
                rec(100, 1, Kind::NewMembership, V1, &ALL, true),
                rec(150, 2, Kind::Evicted, V1, &ALL, true),
            ],
        );
        assert_eq!(primary_intervals(&evicted, 5000)[0].end_us, 150_000);
    }

    #[test]
    fn no_two_primaries_catches_a_mute_node_that_keeps_its_old_view() {
        // Node 5 goes mute at 1 s: nodes 1-4 install V2 without it at 2.0 s (node 1) and
        // 2.003 s (nodes 2-4, a hand-over), while node 5 stays primary in V1 until it learns
        // of V2 and is evicted at 2.9 s: 900 ms of split brain.
        let mut h = formed();
        h[0].records
            .push(rec(2000, 2, Kind::NewMembership, V2, &[1, 2, 3, 4], true));
        for p in &mut h[1..4] {
            p.records
                .push(rec(2003, 2, Kind::NewMembership, V2, &[1, 2, 3, 4], true));
        }
        // Until node 5 learns of V2 it stays primary in V1: a split brain to the end; and
        // nodes 2-4 act on V1 for 3 ms after node 1 acts on V2: stamped hand-overs count.
        assert_eq!(no_two_primaries(&h, 10_000_000).len(), 7);
        // Nodes 2-4 say they stopped acting on V1 when they accepted V2 (before node 1
        // committed it): no hand-over is left.
        for p in &mut h[1..4] {
            p.records[1].prior_primary_until_us = Some(1_999_000);
        }
        assert_eq!(no_two_primaries(&h, 10_000_000).len(), 4);
        for p in &mut h[1..4] {
            p.records[1].prior_primary_until_us = None;
        }
        h[4].records
            .push(rec(2900, 2, Kind::Evicted, V1, &ALL, true));
        let all = two_primaries(&h, 10_000_000);
        let split: Vec<_> = all.iter().filter(|o| o.split_brain()).collect();
        assert_eq!(split.len(), 4, "n5 against each of n1-n4: {all:#?}");
        assert_eq!(split[0].older.node, 5);
        assert!((split[0].ms() - 900.0).abs() < 0.01, "{}", split[0].ms());
        let handover = all.iter().find(|o| !o.split_brain()).unwrap();
        assert!((handover.ms() - 3.0).abs() < 0.01, "{}", handover.ms());
        assert_eq!(no_two_primaries(&h, 10_000_000).len(), 7);

        // When node 5 steps down before the others take over and nodes 2-4 stamp their
        // hand-over, nothing overlaps.
        h[4].records[1] = rec(1900, 2, Kind::NotPrimary, (1, 5, 7), &[5], false);
        for p in &mut h[1..4] {
            p.records[1].prior_primary_until_us = Some(1_999_000);
        }
        assert!(no_two_primaries(&h, 10_000_000).is_empty());
    }

    #[test]
    fn no_two_primaries_ends_a_killed_process_at_its_kill() {
        let mut h = formed();
        h[4].killed_us = Some(1_500_000);
        for p in &mut h[..4] {
            p.records
                .push(rec(2000, 2, Kind::NewMembership, V2, &[1, 2, 3, 4], true));
        }
        assert!(no_two_primaries(&h, 10_000_000).is_empty());
        h[4].killed_us = Some(2_100_000);
        let v = no_two_primaries(&h, 10_000_000);
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(v[0].detail.starts_with("100.0 ms"), "{v:?}");
    }

    #[test]
    fn only_receive_times_get_slack() {
        // n5 steps down at 2.010 s, 10 ms after the others took over at 2.0 s.
        let mut h = formed();
        for p in &mut h[..4] {
            p.records
                .push(rec(2000, 2, Kind::NewMembership, V2, &[1, 2, 3, 4], true));
        }
        h[4].records
            .push(rec(2010, 2, Kind::NotPrimary, (2, 5, 9), &[5], false));
        assert_eq!(no_two_primaries(&h, 10_000_000).len(), 4, "at_us: no slack");
        h[4].records[1].stamped = false;
        assert!(
            no_two_primaries(&h, 10_000_000).is_empty(),
            "10 ms by receive time is within the slack"
        );
        assert_eq!(two_primaries(&h, 10_000_000).len(), 4, "but still reported");
        h[4].records[1].at_us = 2_000_000 + RECEIVE_SLACK_US + 1;
        assert_eq!(no_two_primaries(&h, 10_000_000).len(), 4, "past the slack");
    }

    #[test]
    fn convergence_needs_one_full_quorate_view_in_time() {
        let mut h = formed();
        for p in &mut h {
            p.records
                .push(rec(5000, 2, Kind::NewMembership, V2, &ALL, true));
        }
        assert_eq!(convergence(&h, 4_000_000, 10_000_000, &ALL), Ok(1_000_000));
        assert!(
            convergence(&h, 4_000_000, 500_000, &ALL).is_err(),
            "too late"
        );
        let mut split = h.clone();
        split[0].records.pop();
        assert!(convergence(&split, 4_000_000, 10_000_000, &ALL).is_err());
        let mut evicted = h.clone();
        evicted[3]
            .records
            .push(rec(6000, 3, Kind::Evicted, V2, &ALL, true));
        assert!(convergence(&evicted, 4_000_000, 10_000_000, &ALL).is_err());
        let mut dead = h.clone();
        dead[2].killed_us = Some(7_000_000);
        assert!(convergence(&dead, 4_000_000, 10_000_000, &ALL).is_err());
        let mut short = h;
        for p in &mut short {
            p.records
                .push(rec(6000, 3, Kind::NewMembership, V3, &[1, 2, 3, 4], true));
        }
        assert!(convergence(&short, 4_000_000, 10_000_000, &ALL).is_err());
    }
}
