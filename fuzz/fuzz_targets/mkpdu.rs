//! MKPDUs: parse never panics; whatever parses emits to octets that parse back to the same
//! representation and emit to the same octets again. A participant fed the raw input, and the
//! same PDU re-signed under its ICK and CKN (so it passes the ICV and reaches the protocol
//! logic), never panics and keeps answering its timers.
#![no_main]

use kmp_api::{Duration, Instant, RngHandle};
use kmp_mka::mka::wire::ALGORITHM_AGILITY_2010;
use kmp_mka::mka::{CakKeys, IcvCoverage, MkaConfig, Mkpdu, Participant, Sci};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = Mkpdu::parse(data);
    if let Ok(m) = &parsed {
        let out = m.emit().expect("emit of a parsed MKPDU");
        let again = Mkpdu::parse(&out).expect("re-parse of an emitted MKPDU");
        assert_eq!(&again, m);
        assert_eq!(again.emit().expect("second emit"), out);
    }

    let Ok(keys) = CakKeys::from_psk(&[0x11; 16], b"fuzz-ckn") else {
        return;
    };
    let cfg = MkaConfig::new(Sci([0, 1, 2, 3, 4, 5, 0, 1]));
    let Ok(mut p) = Participant::new(cfg, keys.clone(), RngHandle::seeded(1)) else {
        return;
    };
    let mut now = Instant::from_micros(1_000_000);
    p.start(now).expect("start");
    let _ = p.handle_mkpdu(now, data);
    if let Ok(mut m) = parsed {
        m.basic.ckn = keys.ckn().clone();
        m.basic.algorithm_agility = ALGORITHM_AGILITY_2010;
        if let Ok(signed) = m.emit_signed(keys.ick().expose(), IcvCoverage::default()) {
            now = now.checked_add(Duration::from_millis(10)).expect("time");
            let _ = p.handle_mkpdu(now, &signed);
            // Twice: the second is a replay.
            assert!(p.handle_mkpdu(now, &signed).is_err());
        }
    }
    for _ in 0..4 {
        while let Some(a) = p.poll_action() {
            drop(a);
        }
        let t = p
            .poll_timeout()
            .expect("a started participant has a deadline");
        assert!(t >= now);
        now = t;
        p.handle_timeout(now).expect("timeout");
    }
});
