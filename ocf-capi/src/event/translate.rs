//! From ocf's membership stream to the deliveries a CCM client expects: which `OC_EV_MS_*`
//! code, with which membership, for each view the node installs. Pure, so the rules are
//! tested here without a daemon.
//!
//! The rules (heartbeat's CCM, as `oc_event.h` documents them):
//! - a view with quorum is `NEW_MEMBERSHIP`, or `PRIMARY_RESTORED` when it ends a time
//!   without quorum; its payload is the new membership;
//! - losing quorum is `NOT_PRIMARY`, whose payload is the last primary membership delivered
//!   (no longer valid), once;
//! - a view without quorum is delivered only to a client that asked with `oc_ev_special`, as
//!   `OC_EV_MS_INVALID` with that membership;
//! - `EVICTED` (this node removed, or its engine lost) has no payload;
//! - the first delivery to a client has everyone "in"; afterwards "in" and "out" are relative
//!   to the membership this client was last given, so they always add up for the client even
//!   if views without quorum were not shown to it.
//!
//! Members are sorted by (`node_born_on`, `node_id`), as CCM sorted them: the oldest first.

use ocf_membership::{EventKind, MembershipEvent, View};

/// `OC_EV_MEMB_CLASS`.
pub const OC_EV_MEMB_CLASS: u32 = 2;
/// `OC_EV_MS_INVALID`: a membership without quorum (only with `oc_ev_special`).
pub const OC_EV_MS_INVALID: u32 = OC_EV_MEMB_CLASS << 22;
/// `OC_EV_MS_NEW_MEMBERSHIP`: a membership with quorum.
pub const OC_EV_MS_NEW_MEMBERSHIP: u32 = OC_EV_MS_INVALID + 1;
/// `OC_EV_MS_NOT_PRIMARY`: quorum lost; the payload is the old membership.
pub const OC_EV_MS_NOT_PRIMARY: u32 = OC_EV_MS_INVALID + 2;
/// `OC_EV_MS_PRIMARY_RESTORED`: quorum regained; the payload is the new membership.
pub const OC_EV_MS_PRIMARY_RESTORED: u32 = OC_EV_MS_INVALID + 3;
/// `OC_EV_MS_EVICTED`: this node was removed; no payload.
pub const OC_EV_MS_EVICTED: u32 = OC_EV_MS_INVALID + 4;

/// One node of a membership, as `oc_node_t` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `node_uname`.
    pub uname: String,
    /// `node_id`.
    pub id: u32,
    /// `node_born_on`: the instance of the view the node joined in (0 when unknown).
    pub born_on: u32,
}

/// A membership payload, as `oc_ev_membership_t` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// `m_instance`: the view's instance number (its low 32 bits).
    pub instance: u32,
    /// The members, oldest first.
    pub members: Vec<Node>,
    /// Who left since the membership this client was last given.
    pub out: Vec<Node>,
    /// Who joined since then (all members on a client's first delivery).
    pub joined: Vec<Node>,
}

/// What the client is called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A membership event (`code` one of the `OC_EV_MS_*` with a payload).
    Membership {
        /// The event code.
        code: u32,
        /// The payload.
        membership: Membership,
    },
    /// `OC_EV_MS_EVICTED`, without payload.
    Evicted,
}

/// Turns one client's stream of views into its deliveries.
#[derive(Debug, Clone, Default)]
pub struct Translator {
    special: bool,
    /// The membership last given to this client (what "in" and "out" are relative to).
    last: Option<Membership>,
    /// The last membership with quorum given, until its `NOT_PRIMARY` was delivered.
    primary: Option<Membership>,
}

impl Translator {
    /// A translator; `special` delivers views without quorum as `OC_EV_MS_INVALID`.
    pub fn new(special: bool) -> Self {
        Self {
            special,
            ..Self::default()
        }
    }

    /// The deliveries for the view the subscription starts with (`None`: no view yet).
    ///
    /// ```
    /// use ocf::event::translate::{Translator, OC_EV_MS_NEW_MEMBERSHIP, Delivery};
    /// let view: ocf_membership::View = serde_json::from_str(r#"{"view_id":{"instance":7,"coordinator":1,"epoch":0},
    ///   "members":[{"id":1,"name":"a","votes":1,"born_on":null},{"id":2,"name":"b","votes":1,"born_on":null}],
    ///   "joined":[],"left":[],"quorum":{"quorate":true,"votes":2,"expected_votes":2,"threshold":2}}"#).unwrap();
    /// let d = Translator::new(false).first(Some(&view));
    /// let Delivery::Membership { code, membership } = &d[0] else { panic!() };
    /// assert_eq!(*code, OC_EV_MS_NEW_MEMBERSHIP);
    /// assert_eq!((membership.instance, membership.members.len(), membership.joined.len()), (7, 2, 2));
    /// ```
    pub fn first(&mut self, view: Option<&View>) -> Vec<Delivery> {
        match view {
            Some(v) if v.is_quorate() => vec![self.give(OC_EV_MS_NEW_MEMBERSHIP, v)],
            Some(v) if self.special => vec![self.give(OC_EV_MS_INVALID, v)],
            _ => Vec::new(),
        }
    }

    /// The deliveries for one event of the stream.
    pub fn event(&mut self, event: &MembershipEvent) -> Vec<Delivery> {
        let view = &event.view;
        match event.kind {
            EventKind::Evicted => vec![Delivery::Evicted],
            EventKind::PrimaryRestored if view.is_quorate() => {
                vec![self.give(OC_EV_MS_PRIMARY_RESTORED, view)]
            }
            EventKind::NotPrimary => {
                let mut out = Vec::new();
                if let Some(old) = self.primary.take() {
                    out.push(Delivery::Membership {
                        code: OC_EV_MS_NOT_PRIMARY,
                        membership: old,
                    });
                }
                if self.special {
                    out.push(self.give(OC_EV_MS_INVALID, view));
                }
                out
            }
            _ if view.is_quorate() => {
                // A client that missed the loss of quorum (it activated without quorum) is told
                // the primary is back.
                let code = if self.primary.is_none() && self.last.is_some() {
                    OC_EV_MS_PRIMARY_RESTORED
                } else {
                    OC_EV_MS_NEW_MEMBERSHIP
                };
                vec![self.give(code, view)]
            }
            _ if self.special => vec![self.give(OC_EV_MS_INVALID, view)],
            _ => Vec::new(),
        }
    }

    /// Delivers `view` with `code`, relative to the last membership given.
    fn give(&mut self, code: u32, view: &View) -> Delivery {
        let membership = membership_of(view, self.last.as_ref());
        self.last = Some(membership.clone());
        if code == OC_EV_MS_INVALID {
            self.primary = None;
        } else {
            self.primary = Some(membership.clone());
        }
        Delivery::Membership { code, membership }
    }
}

/// `view` as a payload, with "in" and "out" relative to `previous` (everyone in without one).
pub fn membership_of(view: &View, previous: Option<&Membership>) -> Membership {
    let mut members: Vec<Node> = view
        .members()
        .iter()
        .map(|m| Node {
            uname: m.name.as_str().to_owned(),
            id: m.id.get(),
            born_on: m.born_on.map_or(0, |b| b.instance as u32),
        })
        .collect();
    members.sort_by_key(|n| (n.born_on, n.id));
    let (joined, out) = match previous {
        None => (members.clone(), Vec::new()),
        Some(p) => (
            members
                .iter()
                .filter(|n| !p.members.iter().any(|o| o.id == n.id))
                .cloned()
                .collect(),
            p.members
                .iter()
                .filter(|o| !members.iter().any(|n| n.id == o.id))
                .cloned()
                .collect(),
        ),
    };
    Membership {
        instance: view.id.instance as u32,
        members,
        out,
        joined,
    }
}

#[cfg(test)]
mod tests {
    use ocf_core::{NodeId, NodeName};
    use ocf_membership::{Member, Quorum, ViewId};

    use super::*;

    fn view(instance: u64, ids: &[u32], quorate: bool) -> View {
        let members = ids
            .iter()
            .map(|&i| {
                Member::new(NodeId::new(i), NodeName::new(format!("n{i}")).unwrap())
                    .with_born_on(ViewId::new(u64::from(i), NodeId::new(1), 0))
            })
            .collect();
        let n = ids.len() as u32;
        let quorum: Quorum = serde_json::from_value(serde_json::json!({
            "quorate": quorate, "votes": n, "expected_votes": 5, "threshold": 3
        }))
        .unwrap();
        View::new(
            ViewId::new(instance, NodeId::new(1), 0),
            members,
            None,
            quorum,
        )
    }

    fn event(seq: u64, kind: EventKind, v: View) -> MembershipEvent {
        MembershipEvent::new(seq, kind, v)
    }

    fn codes(d: &[Delivery]) -> Vec<u32> {
        d.iter()
            .map(|d| match d {
                Delivery::Membership { code, .. } => *code,
                Delivery::Evicted => OC_EV_MS_EVICTED,
            })
            .collect()
    }

    #[test]
    fn losing_and_regaining_quorum_follows_ccm() {
        let mut t = Translator::new(false);
        assert_eq!(
            codes(&t.first(Some(&view(3, &[1, 2, 3], true)))),
            [OC_EV_MS_NEW_MEMBERSHIP]
        );
        let d = t.event(&event(1, EventKind::NotPrimary, view(4, &[1, 2], false)));
        assert_eq!(codes(&d), [OC_EV_MS_NOT_PRIMARY]);
        // The payload of NOT_PRIMARY is the old membership.
        let Delivery::Membership { membership, .. } = &d[0] else {
            panic!()
        };
        assert_eq!(membership.instance, 3);
        // Without quorum nothing more is said, unless special.
        assert!(
            t.event(&event(2, EventKind::NewMembership, view(5, &[1], false)))
                .is_empty()
        );
        let d = t.event(&event(
            3,
            EventKind::PrimaryRestored,
            view(6, &[1, 2, 4], true),
        ));
        assert_eq!(codes(&d), [OC_EV_MS_PRIMARY_RESTORED]);
        let Delivery::Membership { membership, .. } = &d[0] else {
            panic!()
        };
        // Relative to what this client was last given (instance 3: 1, 2, 3).
        assert_eq!(
            membership.joined.iter().map(|n| n.id).collect::<Vec<_>>(),
            [4]
        );
        assert_eq!(membership.out.iter().map(|n| n.id).collect::<Vec<_>>(), [3]);
        assert_eq!(
            codes(&t.event(&event(4, EventKind::Evicted, view(6, &[1, 2, 4], true)))),
            [OC_EV_MS_EVICTED]
        );
    }

    #[test]
    fn special_shows_views_without_quorum_as_invalid() {
        let mut t = Translator::new(true);
        assert_eq!(
            codes(&t.first(Some(&view(1, &[1], false)))),
            [OC_EV_MS_INVALID]
        );
        // A client that started without quorum is told when the primary comes back.
        assert_eq!(
            codes(&t.event(&event(
                1,
                EventKind::NewMembership,
                view(2, &[1, 2, 3], true)
            ))),
            [OC_EV_MS_PRIMARY_RESTORED]
        );
        assert_eq!(
            codes(&t.event(&event(2, EventKind::NotPrimary, view(3, &[1], false)))),
            [OC_EV_MS_NOT_PRIMARY, OC_EV_MS_INVALID]
        );
    }

    #[test]
    fn members_are_oldest_first_and_everyone_is_in_at_first() {
        let mut t = Translator::new(false);
        let v = view(9, &[3, 1, 2], true);
        let d = t.first(Some(&v));
        let Delivery::Membership { membership, .. } = &d[0] else {
            panic!()
        };
        assert_eq!(
            membership
                .members
                .iter()
                .map(|n| n.born_on)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(membership.joined.len(), 3);
        assert!(membership.out.is_empty());
        assert!(Translator::new(false).first(None).is_empty());
    }
}
