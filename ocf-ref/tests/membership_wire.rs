//! The packet decoder against hostile input: the checked-in fuzz corpus
//! (`tests/corpus/membership_wire/`, also the seed corpus of the cargo-fuzz target in
//! `ocf-ref/fuzz`), random bytes, and mutations of valid packets. The decoder must never
//! panic, must refuse every altered packet, and must round-trip every valid one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use ocf_core::NodeId;
use ocf_membership::ViewId;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::wire::{Codec, MAX_PACKET, ReplayGuard, decode_signed};
use ocf_ref::membership::protocol::{
    Body, CommittedView, Envelope, Proposal, ProposedMember, Update, ViewMember,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn codec() -> Codec {
    // The fuzz target uses the same cluster and key, so corpus packets authenticate there.
    Codec::new("fuzz", &ClusterKey::from_bytes(vec![1u8; 32]))
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/membership_wire")
}

fn view_id() -> impl Strategy<Value = ViewId> {
    (any::<u64>(), any::<u32>(), any::<u64>())
        .prop_map(|(i, c, e)| ViewId::new(i, NodeId::new(c), e))
}

fn body() -> impl Strategy<Value = Body> {
    let id = || any::<u32>().prop_map(NodeId::new);
    prop_oneof![
        any::<u32>().prop_map(|probe| Body::Ping { probe }),
        any::<u32>().prop_map(|probe| Body::Ack { probe }),
        (any::<u32>(), id()).prop_map(|(probe, target)| Body::PingReq { probe, target }),
        (any::<u32>(), id()).prop_map(|(probe, origin)| Body::RelayPing { probe, origin }),
        (any::<u32>(), id()).prop_map(|(probe, origin)| Body::RelayAck { probe, origin }),
        (any::<u32>(), id()).prop_map(|(probe, target)| Body::IndirectAck { probe, target }),
        Just(Body::Notice),
        (
            view_id(),
            proptest::collection::btree_map(any::<u32>(), any::<u64>(), 0..50)
        )
            .prop_map(|(id, m)| Body::Propose(Arc::new(Proposal {
                id,
                members: m
                    .into_iter()
                    .map(|(i, inc)| ProposedMember {
                        id: NodeId::new(i),
                        inc
                    })
                    .collect(),
            }))),
        (view_id(), proptest::option::of(view_id()))
            .prop_map(|(id, born_on)| Body::Accept { id, born_on }),
        (view_id(), view_id()).prop_map(|(id, highest)| Body::Reject { id, highest }),
        (
            view_id(),
            proptest::collection::btree_map(any::<u32>(), (any::<u64>(), view_id()), 0..50)
        )
            .prop_map(|(id, m)| Body::Commit(Arc::new(CommittedView {
                id,
                members: m
                    .into_iter()
                    .map(|(i, (inc, born_on))| ViewMember {
                        id: NodeId::new(i),
                        inc,
                        born_on
                    })
                    .collect(),
            }))),
        view_id().prop_map(|id| Body::ViewReq { id }),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        proptest::option::of(view_id()),
        proptest::collection::vec(
            (any::<u32>(), any::<u64>(), any::<u32>(), any::<bool>()).prop_map(
                |(n, inc, refute, dead)| Update {
                    node: NodeId::new(n),
                    inc,
                    refute,
                    dead,
                },
            ),
            0..8,
        ),
        body(),
    )
        .prop_map(|(from, inc, refute, view, gossip, body)| Envelope {
            from: NodeId::new(from),
            inc,
            refute,
            view,
            gossip,
            body,
        })
}

#[test]
fn corpus_replays_without_panic() {
    let c = codec();
    let mut files = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = c.decode(&bytes);
        let _ = decode_signed(&bytes);
        if bytes.len() > 32 {
            let _ = decode_signed(&bytes[..bytes.len() - 32]);
        }
        files += 1;
    }
    assert!(
        files >= 12,
        "the corpus lost its seed packets ({files} files)"
    );
}

/// Rewrites the seed corpus: `OCF_WRITE_CORPUS=1 cargo test -p ocf-ref --test membership_wire`.
#[test]
fn write_seed_corpus_on_request() {
    if std::env::var_os("OCF_WRITE_CORPUS").is_none() {
        return;
    }
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let c = codec();
    for i in 0..48u64 {
        let env = envelope().new_tree(&mut runner).unwrap().current();
        let bytes = c.encode(&env, i).unwrap();
        std::fs::write(dir.join(format!("seed-{i:02}")), bytes).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_packets_round_trip(env in envelope(), seq in any::<u64>()) {
        let c = codec();
        let bytes = c.encode(&env, seq).unwrap();
        prop_assert!(bytes.len() <= MAX_PACKET);
        prop_assert_eq!(c.decode(&bytes).unwrap(), (env, seq));
    }

    #[test]
    fn altered_packets_are_refused(env in envelope(), seq in any::<u64>(), at in any::<usize>(), bit in 0u8..8) {
        let c = codec();
        let mut bytes = c.encode(&env, seq).unwrap();
        let i = at % bytes.len();
        bytes[i] ^= 1 << bit;
        prop_assert!(c.decode(&bytes).is_err());
        let cut = at % bytes.len();
        prop_assert!(c.decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = codec().decode(&bytes);
        let _ = decode_signed(&bytes);
    }

    #[test]
    fn mutated_payloads_never_panic(env in envelope(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        // Past the MAC: mutate the signed part directly, as a buggy or newer peer might.
        let mut bytes = codec().encode(&env, 1).unwrap();
        bytes.truncate(bytes.len() - 32);
        for (at, value) in edits {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        if let Ok((env, seq)) = decode_signed(&bytes) {
            // The encoding is canonical: what parses encodes back to the same bytes.
            let again = codec().encode(&env, seq).unwrap();
            prop_assert_eq!(&again[..again.len() - 32], &bytes[..]);
        }
        let _ = decode_signed(&bytes[..cut % (bytes.len() + 1)]);
    }

    #[test]
    fn replay_guard_accepts_each_sequence_once(seqs in proptest::collection::vec(0u64..200, 1..100)) {
        let mut g = ReplayGuard::default();
        let mut accepted = std::collections::HashSet::new();
        for s in seqs {
            if g.check(NodeId::new(1), 7, s).is_ok() {
                prop_assert!(accepted.insert(s), "sequence {} accepted twice", s);
            }
        }
    }
}
