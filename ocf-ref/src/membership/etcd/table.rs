//! The member table: the member keys as etcd holds them, changed revision by revision, and the
//! views made from it. Pure: the engine feeds it what it read and watched.
//!
//! Invariant (what makes "same view id ⇒ same members" hold across nodes): the table after
//! applying every change up to revision `r` is the set of member keys etcd holds at `r`, so
//! every node that installs view `r` installs the same members.

use std::collections::BTreeMap;

use ocf_core::NodeId;
use ocf_membership::{Member, Quorum, View, ViewId};

use super::keys::{KeyLayout, MemberRecord};

/// One member key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    /// The record it holds.
    pub record: MemberRecord,
    /// The lease it is attached to.
    pub lease: i64,
    /// The revision that created it (the member's `born_on`).
    pub create_revision: i64,
}

/// One change to the member keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A member key was written.
    Put {
        /// Whose.
        id: NodeId,
        /// The key's entry after the write.
        entry: MemberEntry,
    },
    /// A member key was deleted (by a delete, a revoke or an expired lease).
    Delete {
        /// Whose.
        id: NodeId,
    },
}

impl Change {
    /// The change an etcd key-value pair makes: a put of a member record, or a delete; `None`
    /// for a key that is not a member key or a value that is not a record.
    pub fn from_kv(layout: &KeyLayout, kv: &etcd_client::KeyValue, deleted: bool) -> Option<Self> {
        let id = layout.member_id(kv.key())?;
        if deleted {
            return Some(Self::Delete { id });
        }
        let record = MemberRecord::from_value(kv.value())?;
        if record.id != id.get() {
            return None;
        }
        Some(Self::Put {
            id,
            entry: MemberEntry {
                record,
                lease: kv.lease(),
                create_revision: kv.create_revision(),
            },
        })
    }
}

/// The member keys of one cluster, as of the last revision applied.
#[derive(Debug, Clone, Default)]
pub struct MemberTable {
    entries: BTreeMap<NodeId, MemberEntry>,
    cluster_id: u64,
    expected_votes: u32,
}

impl MemberTable {
    /// An empty table for the etcd cluster `cluster_id`, reporting `expected_votes` (the
    /// configured nodes' votes) in its views.
    pub fn new(cluster_id: u64, expected_votes: u32) -> Self {
        Self {
            entries: BTreeMap::new(),
            cluster_id,
            expected_votes,
        }
    }

    /// Applies one change; true when the members (who, or what their records say) changed.
    /// A put that only moves a key to another lease changes no member.
    pub fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Put { id, entry } => match self.entries.get_mut(&id) {
                Some(old) if old.record == entry.record => {
                    let moved = old.create_revision != entry.create_revision;
                    *old = entry;
                    moved
                }
                _ => {
                    self.entries.insert(id, entry);
                    true
                }
            },
            Change::Delete { id } => self.entries.remove(&id).is_some(),
        }
    }

    /// Replaces the whole table (a fresh read); true when the members changed.
    pub fn replace(&mut self, entries: impl IntoIterator<Item = (NodeId, MemberEntry)>) -> bool {
        let new: BTreeMap<NodeId, MemberEntry> = entries.into_iter().collect();
        let same = new.len() == self.entries.len()
            && new.iter().zip(&self.entries).all(|((a, x), (b, y))| {
                a == b && x.record == y.record && x.create_revision == y.create_revision
            });
        self.entries = new;
        !same
    }

    /// The entry of `id`.
    pub fn get(&self, id: NodeId) -> Option<&MemberEntry> {
        self.entries.get(&id)
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no member.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The id of the view at `revision` of this etcd cluster.
    pub fn view_id(&self, revision: i64) -> ViewId {
        ViewId::new(
            u64::try_from(revision).unwrap_or(0),
            NodeId::new(0),
            self.cluster_id,
        )
    }

    /// The view of the members as of `revision`, with `joined`/`left` against `previous`.
    /// Quorum is etcd's: `quorate` is this node's primacy (it reaches a quorate etcd and holds
    /// its lease); votes are reported, and no vote threshold applies (threshold 0).
    pub fn view(&self, revision: i64, previous: Option<&View>, quorate: bool) -> View {
        let members: Vec<Member> = self
            .entries
            .iter()
            .map(|(&id, e)| {
                Member::new(id, e.record.name.clone())
                    .with_votes(e.record.votes)
                    .with_born_on(self.view_id(e.create_revision))
            })
            .collect();
        let votes = members.iter().map(|m| m.votes).sum();
        View::new(
            self.view_id(revision),
            members,
            previous,
            Quorum::reported(quorate, votes, self.expected_votes, 0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: u32, lease: i64, rev: i64) -> Change {
        Change::Put {
            id: NodeId::new(id),
            entry: MemberEntry {
                record: MemberRecord {
                    id,
                    name: format!("n{id}").parse().unwrap(),
                    votes: 1,
                    inc: 1,
                },
                lease,
                create_revision: rev,
            },
        }
    }

    #[test]
    fn changes_make_views_with_joined_and_left() {
        let mut t = MemberTable::new(77, 3);
        assert!(t.apply(put(1, 10, 5)));
        assert!(t.apply(put(2, 11, 6)));
        let v6 = t.view(6, None, true);
        assert_eq!(v6.id, ViewId::new(6, NodeId::new(0), 77));
        assert_eq!(v6.joined(), &[NodeId::new(1), NodeId::new(2)]);
        assert_eq!(
            v6.members()[0].born_on,
            Some(ViewId::new(5, NodeId::new(0), 77))
        );
        // The same record under the same key, re-put: no member change.
        assert!(!t.apply(put(2, 11, 6)));
        assert!(t.apply(Change::Delete { id: NodeId::new(1) }));
        assert!(!t.apply(Change::Delete { id: NodeId::new(1) }));
        let v9 = t.view(9, Some(&v6), false);
        assert_eq!(v9.left(), &[NodeId::new(1)]);
        assert!(!v9.is_quorate());
        assert_eq!(t.get(NodeId::new(2)).map(|e| e.lease), Some(11));
        // A fresh read with the same members is no change; a different one is.
        let same: Vec<_> = [(NodeId::new(2), t.get(NodeId::new(2)).unwrap().clone())].into();
        assert!(!t.replace(same));
        assert!(t.replace(Vec::new()));
        assert!(t.is_empty());
    }
}
