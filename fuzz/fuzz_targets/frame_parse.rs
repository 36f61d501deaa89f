//! Any octets, any FCS length: the frame view and `FrameRepr` must return a value or a typed
//! error, never panic, and every accessor of a checked view must be callable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpx::wire::{FcsLen, Frame, FrameRepr, MpxIeRepr, ParseOptions, PayloadIeGroup};

fuzz_target!(|data: &[u8]| {
    for fcs in [FcsLen::None, FcsLen::Two, FcsLen::Four] {
        let Ok(frame) = Frame::new_checked(data, fcs) else {
            continue;
        };
        let _ = (
            frame.frame_type(),
            frame.frame_version(),
            frame.sequence_number(),
        );
        let _ = (
            frame.dst_pan_id(),
            frame.dst_addr(),
            frame.src_pan_id(),
            frame.src_addr(),
        );
        let _ = (
            frame.fcs_ok(),
            frame.mic(),
            frame.private_payload(),
            frame.header_len(),
        );
        if let Some(aux) = frame.aux_security_header() {
            let _ = (
                aux.security_level(),
                aux.key_identifier(),
                aux.frame_counter(),
            );
        }
        for ie in frame.header_ies() {
            let _ = ie.content.len();
        }
        let _ = frame.payload_ies_and_payload();
        for unprotected in [false, true] {
            let opts = ParseOptions {
                check_fcs: false,
                unprotected,
            };
            if let Ok(repr) = FrameRepr::parse_with(&frame, opts) {
                for ie in repr.payload_ies() {
                    if ie.group == PayloadIeGroup::Mpx {
                        if let Ok(m) = MpxIeRepr::parse_bytes(ie.content) {
                            let _ = m.kmp_id();
                        }
                    }
                }
            }
        }
    }
});
