//! MPX IE content: parse must not panic; whatever parses must emit to the same octets and
//! parse back to the same representation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpx::wire::MpxIeRepr;

fuzz_target!(|data: &[u8]| {
    let Ok(repr) = MpxIeRepr::parse_bytes(data) else {
        return;
    };
    let _ = repr.kmp_id();
    let mut out = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut out).expect("a parsed MPX IE must emit");
    assert_eq!(n, repr.buffer_len());
    assert_eq!(&out[..n], data, "MPX IE emit differs from its input");
    assert_eq!(MpxIeRepr::parse_bytes(&out).expect("re-parse"), repr);
});
