//! Fuzzes the membership packet decoder. Seed corpus: `../tests/corpus/membership_wire`
//! (`cargo +nightly fuzz run wire_decode ../tests/corpus/membership_wire -- -max_total_time=60`);
//! the same corpus is replayed by `cargo test -p ocf-ref --test membership_wire`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::wire::{Codec, decode_signed};

fuzz_target!(|data: &[u8]| {
    let codec = Codec::new("fuzz", &ClusterKey::from_bytes(vec![1u8; 32]));
    if let Ok((env, seq)) = codec.decode(data) {
        // Whatever authenticates must encode back to the same packet.
        assert_eq!(codec.encode(&env, seq).ok().as_deref(), Some(data));
    }
    // The parser behind the MAC, reached directly.
    if let Ok((env, seq)) = decode_signed(data) {
        let again = codec.encode(&env, seq).expect("a decoded envelope encodes");
        assert_eq!(&again[..again.len() - 32], data);
    }
});
