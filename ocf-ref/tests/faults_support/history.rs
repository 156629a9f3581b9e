//! What a recorder saw: the lines of `ocf members --watch --json`, parsed into one history per
//! process of a node (a restarted node is a new process with its own history and its own
//! `seq`).
//!
//! The time of a record is the event's `at_us` (microseconds since the Unix epoch, the instant
//! the event took effect on its node) when the event carries one, else the instant the
//! recorder read the line. All processes run on one machine, so they share that clock.

use serde_json::Value;

/// A view id as `(instance, coordinator, epoch)`, ordered as the protocol orders ids.
pub type ViewId = (u64, u64, u64);

/// The parts of a view the checkers need.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRec {
    /// Its id.
    pub id: ViewId,
    /// The member ids, in the view's order.
    pub members: Vec<u64>,
    /// The whole member list as sent (ids, names, votes, `born_on`): what agreement compares.
    pub members_json: Value,
    /// Whether the view was quorate (primary) when installed.
    pub quorate: bool,
}

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The view the node held when the recorder subscribed (`initial_view`).
    Initial,
    /// `new_membership`.
    NewMembership,
    /// `not_primary`.
    NotPrimary,
    /// `primary_restored`.
    PrimaryRestored,
    /// `evicted` (the view is the last one installed).
    Evicted,
}

/// One line of a recorder, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it took effect (µs since the epoch): `at_us`, or the receive time.
    pub at_us: u64,
    /// Whether `at_us` came from the event (not the receive time).
    pub stamped: bool,
    /// For an install: when the node stopped acting on its previous view (it accepted this
    /// one), if it was primary until then (`prior_primary_until_us`).
    pub prior_primary_until_us: Option<u64>,
    /// The event's `seq` (0 for the initial view).
    pub seq: u64,
    /// What happened.
    pub kind: Kind,
    /// The view it carries.
    pub view: ViewRec,
}

/// Everything one process of one node did, as its recorder saw it.
#[derive(Debug, Clone, Default)]
pub struct ProcessHistory {
    /// The node id.
    pub node: u32,
    /// 1 for the first process of the node, 2 after its first restart, ...
    pub generation: u32,
    /// When the process was started (µs since the epoch).
    pub started_us: u64,
    /// When it was killed and reaped (`None`: it ran to the end of the run).
    pub killed_us: Option<u64>,
    /// Its records, in the order received.
    pub records: Vec<Record>,
    /// Lines that could not be parsed, with the reason (each is a violation).
    pub malformed: Vec<String>,
}

impl ProcessHistory {
    /// Parses a recorder's `(receive time, line)` pairs.
    pub fn from_lines(
        node: u32,
        generation: u32,
        started_us: u64,
        killed_us: Option<u64>,
        lines: &[(u64, String)],
    ) -> Self {
        let mut h = Self {
            node,
            generation,
            started_us,
            killed_us,
            ..Self::default()
        };
        for (recv_us, line) in lines {
            match parse_line(line, *recv_us) {
                Ok(Some(r)) => h.records.push(r),
                Ok(None) => {}
                Err(e) => h.malformed.push(format!("{e}: {line}")),
            }
        }
        h
    }

    /// `n<node>.<generation>`, how reports name a process.
    pub fn name(&self) -> String {
        format!("n{}.{}", self.node, self.generation)
    }

    /// The view the process holds after its last record (`None` when it holds none, or its
    /// last record is an eviction).
    pub fn latest_view(&self) -> Option<&ViewRec> {
        self.records
            .last()
            .filter(|r| r.kind != Kind::Evicted)
            .map(|r| &r.view)
    }
}

fn view_id(v: &Value) -> Option<ViewId> {
    Some((
        v.get("instance")?.as_u64()?,
        v.get("coordinator")?.as_u64()?,
        v.get("epoch")?.as_u64()?,
    ))
}

fn parse_view(v: &Value) -> Result<ViewRec, String> {
    let id = v
        .get("view_id")
        .or_else(|| v.get("id"))
        .and_then(view_id)
        .ok_or("view without a well-formed view_id")?;
    let members_json = v.get("members").cloned().ok_or("view without members")?;
    let members = members_json
        .as_array()
        .ok_or("members is not a list")?
        .iter()
        .map(|m| m.get("id").and_then(Value::as_u64))
        .collect::<Option<Vec<u64>>>()
        .ok_or("a member without a numeric id")?;
    let quorate = v
        .get("quorate")
        .and_then(Value::as_bool)
        .ok_or("view without quorate")?;
    Ok(ViewRec {
        id,
        members,
        members_json,
        quorate,
    })
}

/// Parses one line of `ocf members --watch --json` read at `recv_us`: `Ok(None)` for an
/// `initial_view` of `null` (the node held no view yet).
pub fn parse_line(line: &str, recv_us: u64) -> Result<Option<Record>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    // `at_us` on the event; or, should it be put on the view, there.
    let stamp = v
        .get("at_us")
        .or_else(|| v.get("view").and_then(|w| w.get("at_us")))
        .or_else(|| v.get("initial_view").and_then(|w| w.get("at_us")))
        .and_then(Value::as_u64);
    let at_us = stamp.unwrap_or(recv_us);
    let prior_primary_until_us = v.get("prior_primary_until_us").and_then(Value::as_u64);
    if let Some(initial) = v.get("initial_view") {
        if initial.is_null() {
            return Ok(None);
        }
        return Ok(Some(Record {
            at_us,
            stamped: stamp.is_some(),
            prior_primary_until_us: None,
            seq: 0,
            kind: Kind::Initial,
            view: parse_view(initial)?,
        }));
    }
    let seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("event without seq")?;
    let kind = match v.get("kind").and_then(Value::as_str) {
        Some("new_membership") => Kind::NewMembership,
        Some("not_primary") => Kind::NotPrimary,
        Some("primary_restored") => Kind::PrimaryRestored,
        Some("evicted") => Kind::Evicted,
        other => return Err(format!("unknown event kind {other:?}")),
    };
    let view = parse_view(v.get("view").ok_or("event without view")?)?;
    Ok(Some(Record {
        at_us,
        stamped: stamp.is_some(),
        prior_primary_until_us,
        seq,
        kind,
        view,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"seq":3,"kind":"not_primary","view":{"view_id":{"instance":7,"coordinator":1,"epoch":99},"members":[{"id":1,"name":"n1","votes":1,"born_on":{"instance":1,"coordinator":1,"epoch":99}},{"id":2,"name":"n2","votes":1,"born_on":null}],"joined":[],"left":[3],"quorum":{"quorate":false,"votes":2,"expected_votes":5,"threshold":3},"quorate":false}}"#;

    #[test]
    fn parses_an_event_with_and_without_at_us() {
        let r = parse_line(EVENT, 42).unwrap().unwrap();
        assert_eq!(
            (r.at_us, r.stamped, r.seq, r.kind),
            (42, false, 3, Kind::NotPrimary)
        );
        assert_eq!(r.view.id, (7, 1, 99));
        assert_eq!(r.view.members, vec![1, 2]);
        assert!(!r.view.quorate);
        let stamped = EVENT.replacen("{\"seq\"", "{\"at_us\":1000,\"seq\"", 1);
        let r = parse_line(&stamped, 42).unwrap().unwrap();
        assert_eq!((r.at_us, r.stamped), (1000, true));
        let on_view = EVENT.replacen("\"view\":{", "\"view\":{\"at_us\":2000,", 1);
        let r = parse_line(&on_view, 42).unwrap().unwrap();
        assert_eq!((r.at_us, r.stamped), (2000, true));
    }

    #[test]
    fn parses_initial_views_and_rejects_garbage() {
        assert_eq!(parse_line(r#"{"initial_view":null}"#, 5).unwrap(), None);
        let view = EVENT.split_once("\"view\":").unwrap().1;
        let view = &view[..view.len() - 1];
        let r = parse_line(&format!("{{\"initial_view\":{view}}}"), 5)
            .unwrap()
            .unwrap();
        assert_eq!((r.kind, r.seq, r.at_us), (Kind::Initial, 0, 5));
        assert!(parse_line("not json", 1).is_err());
        assert!(parse_line(r#"{"seq":1,"kind":"bogus","view":{}}"#, 1).is_err());
    }
}
