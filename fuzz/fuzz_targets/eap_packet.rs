//! EAP packets: `Packet::parse` never panics; whatever parses emits to exactly the input octets
//! and parses back to the same representation. `parse_padded` agrees with `parse` on the
//! declared length and never panics either.
#![no_main]

use eap::wire::Packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::parse_padded(data) {
        let len = p.buffer_len();
        assert!(len <= data.len(), "parse_padded read past the input");
        assert_eq!(Packet::parse(&data[..len]), Ok(p));
    }
    let Ok(p) = Packet::parse(data) else { return };
    let out = p.to_vec();
    assert_eq!(out, data, "emit differs from the parsed octets");
    assert_eq!(Packet::parse(&out), Ok(p));
});
