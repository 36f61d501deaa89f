//! parse → emit → parse: a representation that parsed from arbitrary octets must emit without
//! error into `buffer_len()` octets and parse back to the same representation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpx::wire::{FcsLen, Frame, FrameRepr, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions {
        check_fcs: false,
        unprotected: true,
    };
    for fcs in [FcsLen::Two, FcsLen::Four] {
        let Ok(frame) = Frame::new_checked(data, fcs) else {
            continue;
        };
        let Ok(repr) = FrameRepr::parse_with(&frame, opts) else {
            continue;
        };
        let mut out = vec![0u8; repr.buffer_len(fcs)];
        let n = repr.emit(&mut out, fcs).expect("a parsed frame must emit");
        assert_eq!(n, out.len());
        let again = Frame::new_checked(&out[..], fcs).expect("emitted frame must check");
        assert!(again.fcs_ok());
        let repr2 = FrameRepr::parse_with(&again, opts).expect("emitted frame must parse");
        assert_eq!(repr, repr2);
    }
});
