//! Arbitrary sequences of MPX IEs from a few sources into the MPX data service, with time
//! advancing and transmit statuses answered: no panic, and the buffered octets never exceed the
//! configured bound.
//!
//! Input: a sequence of records `[source (1), time step (1), len (1), content (len)]`.
#![no_main]

use libfuzzer_sys::fuzz_target;

use kmp_api::addr::{Address, ExtendedAddress, PanId};
use kmp_api::primitives::MacStatus;
use kmp_api::security::SecurityParams;
use kmp_api::time::{Duration, Instant};
use mpx::service::{MpxConfig, MpxService, RxFrameInfo};

const BOUND: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let me = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
    let mut config = MpxConfig::new(me, PanId(0xabcd));
    config.max_buffered_octets = BOUND;
    config.max_concurrent_reassemblies = 4;
    config.reassembly_timeout = Duration::from_millis(50);
    let Ok(mut svc) = MpxService::new(config) else {
        return;
    };
    let mut now = Instant::from_micros(1);
    let mut rest = data;
    while rest.len() >= 3 {
        let (src, step, len) = (rest[0], rest[1], usize::from(rest[2]));
        rest = &rest[3..];
        let content = &rest[..len.min(rest.len())];
        rest = &rest[content.len()..];
        now += Duration::from_millis(u64::from(step));
        if svc.poll_timeout().is_some_and(|t| t <= now) {
            svc.handle_timeout(now);
        }
        let info = RxFrameInfo {
            src_pan: None,
            src_addr: Address::Extended(ExtendedAddress([2, 0, 0, 0, 0, 0, 1, src % 4])),
            dst_pan: Some(PanId(0xabcd)),
            dst_addr: Address::Extended(me),
            dsn: Some(src),
            security: SecurityParams::NONE,
            lqi: 255,
        };
        svc.receive_mpx_ie(now, &info, content);
        assert!(svc.buffered_octets() <= BOUND);
        while let Some(tx) = svc.poll_transmit(now) {
            svc.handle_tx_status(now, tx.token, MacStatus::Success);
        }
        while svc.poll_event().is_some() {}
    }
});
