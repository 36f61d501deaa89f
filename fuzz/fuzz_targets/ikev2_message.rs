//! IKEv2 messages: parse never panics; whatever parses emits to a message that parses back to
//! the same representation and emits to the same octets again. The SK locator never panics
//! and agrees with the parsed SK payload.
#![no_main]

use kmp_ikev2::wire::{Message, Payload, sk_parts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sk = sk_parts(data);
    let Ok(m) = Message::parse(data) else { return };
    let out = m.emit();
    assert_eq!(out.len(), data.len(), "emit changes the length");
    let again = Message::parse(&out).expect("re-parse of an emitted message");
    assert_eq!(again, m);
    assert_eq!(again.emit(), out);
    if let Some(Payload::Encrypted(e)) = m.payloads.last() {
        let parts = sk.expect("sk_parts on a message ending in SK");
        assert_eq!(parts.body, &e.body[..]);
        assert_eq!(parts.first_inner, e.first_inner);
    }
});
