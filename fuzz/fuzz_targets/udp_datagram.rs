//! Datagrams of the UDP virtual radio (driver-udp): decoding never panics, and whatever
//! decodes re-encodes to the same octets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radio_drivers::udp::{decode_datagram, encode_datagram};

fuzz_target!(|data: &[u8]| {
    let Ok((kind, mpdu)) = decode_datagram(data) else { return };
    assert_eq!(encode_datagram(kind, mpdu), data);
});
