//! EAPOL PDUs: parse never panics; whatever parses emits to the same octets, and the KDEs of a
//! key frame's data parse without panicking.
#![no_main]

use kmp_mka::eapol::{EapolBody, EapolRepr, Kde};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Kde::parse_all(data);
    let Ok(r) = EapolRepr::parse_bytes(data) else {
        return;
    };
    let out = r.to_vec().expect("a parsed PDU must emit");
    assert_eq!(out, data, "emit differs from the input");
    assert_eq!(EapolRepr::parse_bytes(&out).expect("re-parse"), r);
    if let EapolBody::Key(k) = &r.body
        && let Ok(kdes) = Kde::parse_all(k.key_data)
    {
        let _ = Kde::emit_all(&kdes);
    }
});
