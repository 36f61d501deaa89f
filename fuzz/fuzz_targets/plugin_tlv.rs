//! Actions as a dynamically loaded plugin hands them over the C ABI (TLV): decoding never
//! panics, and whatever decodes re-encodes to octets that decode to the same action.
#![no_main]

use kmp_api::plugin::tlv::{decode_action, encode_action};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(action) = decode_action(data) else { return };
    let again = encode_action(&action).expect("a decoded action must encode");
    assert_eq!(decode_action(&again).expect("re-decode"), action);
});
