//! IKEv2 payload chains (the plaintext inside SK): parse never panics on any first type and
//! octets; whatever parses emits to a chain that parses back to the same payloads.
#![no_main]

use kmp_ikev2::wire::{emit_payloads, parse_payloads};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(ps) = parse_payloads(first, rest) else {
        return;
    };
    let (f, out) = emit_payloads(&ps);
    assert_eq!(out.len(), rest.len(), "emit changes the length");
    assert_eq!(parse_payloads(f, &out).expect("re-parse"), ps);
});
