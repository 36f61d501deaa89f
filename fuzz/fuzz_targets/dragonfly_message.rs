//! Dragonfly PDUs: parse never panics; whatever parses emits to the same octets and parses back
//! to the same representation.
#![no_main]

use kmp_dragonfly::wire::MessageRepr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = MessageRepr::parse_bytes(data) else { return };
    let out = m.to_vec().expect("a parsed message must emit");
    assert_eq!(out, data, "emit differs from the input");
    assert_eq!(MessageRepr::parse_bytes(&out).expect("re-parse"), m);
});
