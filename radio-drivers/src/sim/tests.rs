use super::*;

/// A data frame with the given sequence number, `len` octets in all.
fn frame(seq: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0x61, 0x88, seq];
    f.resize(len, 0xa5);
    f
}

/// Runs the medium until nothing is pending and returns every event.
fn run(m: &mut Medium) -> Vec<MediumEvent> {
    let mut out = Vec::new();
    loop {
        while let Some(e) = m.poll_event() {
            out.push(e);
        }
        match m.poll_timeout() {
            Some(t) => m.handle_timeout(t),
            None => break,
        }
    }
    while let Some(e) = m.poll_event() {
        out.push(e);
    }
    out
}

fn rx_of(events: &[MediumEvent], who: RadioId) -> Vec<(RadioId, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            MediumEvent::Rx {
                to, from, frame, ..
            } if *to == who => Some((*from, frame.clone())),
            _ => None,
        })
        .collect()
}

fn done(events: &[MediumEvent]) -> Vec<(RadioId, TxToken, MacStatus)> {
    events
        .iter()
        .filter_map(|e| match e {
            MediumEvent::TxDone {
                from,
                token,
                status,
                ..
            } => Some((*from, *token, *status)),
            _ => None,
        })
        .collect()
}

fn medium(seed: u64) -> Medium {
    Medium::new(MediumConfig {
        seed,
        range_m: 30.0,
        loss: 0.0,
    })
}

#[test]
fn broadcast_reaches_exactly_radios_in_range() {
    let mut m = medium(1);
    let a = m.add_radio((0.0, 0.0));
    let near = [
        m.add_radio((10.0, 0.0)),
        m.add_radio((0.0, -29.0)),
        m.add_radio((21.0, 21.0)),
    ];
    let far = [
        m.add_radio((31.0, 0.0)),
        m.add_radio((22.0, 22.0)),
        m.add_radio((500.0, 0.0)),
    ];
    let t = m
        .transmit(Instant::ZERO, a, frame(1, 20), false, None)
        .unwrap();
    let ev = run(&mut m);
    for r in near {
        assert_eq!(rx_of(&ev, r), vec![(a, frame(1, 20))], "{r:?}");
    }
    for r in far {
        assert!(rx_of(&ev, r).is_empty(), "{r:?}");
    }
    assert!(rx_of(&ev, a).is_empty(), "a radio does not hear itself");
    assert_eq!(done(&ev), vec![(a, t, MacStatus::Success)]);
    let s = m.stats();
    assert_eq!((s.frames, s.acks, s.delivered), (1, 0, 3));
    assert_eq!(s.air_time, air_time(20));
    assert_eq!(s.octets_on_air, 26);
}

#[test]
fn rx_time_is_backoff_cca_turnaround_and_air_time() {
    let mut m = medium(9);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((5.0, 0.0));
    m.transmit(Instant::from_micros(1000), a, frame(1, 127), false, None)
        .unwrap();
    let ev = run(&mut m);
    let at = ev
        .iter()
        .find_map(|e| match e {
            MediumEvent::Rx { to, at, lqi, .. } if *to == b => {
                assert!(*lqi > 200, "close radios have a high LQI");
                Some(at.as_micros())
            }
            _ => None,
        })
        .unwrap();
    let after_backoff = at - 1000 - CCA_US - TURNAROUND_US - 4256;
    assert_eq!(after_backoff % UNIT_BACKOFF_US, 0);
    assert!(after_backoff <= 7 * UNIT_BACKOFF_US);
}

#[test]
fn unicast_with_ar_is_acknowledged() {
    let mut m = medium(2);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((10.0, 0.0));
    let c = m.add_radio((0.0, 10.0));
    let t = m
        .transmit(Instant::ZERO, a, frame(7, 40), true, Some(b))
        .unwrap();
    let ev = run(&mut m);
    assert_eq!(rx_of(&ev, b), vec![(a, frame(7, 40))]);
    // The PHY delivers to everyone in range; c simply does not acknowledge.
    assert_eq!(rx_of(&ev, c).len(), 1);
    assert_eq!(done(&ev), vec![(a, t, MacStatus::Success)]);
    let s = m.stats();
    assert_eq!((s.frames, s.acks, s.acks_received), (1, 1, 1));
    // Success is reported when the ack's last octet arrives: turnaround + 352 µs after the frame.
    let rx_at = ev.iter().find_map(|e| match e {
        MediumEvent::Rx { at, .. } => Some(*at),
        _ => None,
    });
    let done_at = ev.iter().find_map(|e| match e {
        MediumEvent::TxDone { at, .. } => Some(*at),
        _ => None,
    });
    assert_eq!(
        done_at.unwrap() - rx_at.unwrap(),
        Duration::from_micros(192 + 352)
    );
}

#[test]
fn total_loss_gives_no_ack_after_three_retries() {
    let mut m = Medium::new(MediumConfig {
        seed: 3,
        range_m: 30.0,
        loss: 1.0,
    });
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((10.0, 0.0));
    let t = m
        .transmit(Instant::ZERO, a, frame(1, 30), true, Some(b))
        .unwrap();
    let ev = run(&mut m);
    assert_eq!(done(&ev), vec![(a, t, MacStatus::NoAck)]);
    assert!(rx_of(&ev, b).is_empty());
    let s = m.stats();
    assert_eq!(s.frames, 1 + u64::from(MAX_FRAME_RETRIES));
    assert_eq!((s.acks, s.no_acks, s.losses), (0, 1, 4));
}

#[test]
fn lost_acks_make_the_sender_retry() {
    let mut m = medium(4);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((10.0, 0.0));
    m.set_link_loss(b, a, 1.0).unwrap();
    let t = m
        .transmit(Instant::ZERO, a, frame(1, 30), true, Some(b))
        .unwrap();
    let ev = run(&mut m);
    assert_eq!(done(&ev), vec![(a, t, MacStatus::NoAck)]);
    // b got every copy (duplicate filtering is the MAC's business) and acked each.
    assert_eq!(rx_of(&ev, b).len(), 4);
    assert_eq!(m.stats().acks, 4);
    assert_eq!(
        m.set_link_loss(a, b, 1.5),
        Err(MediumError::InvalidLoss("1.5".into()))
    );
}

#[test]
fn simultaneous_transmitters_collide_at_a_common_receiver() {
    // All three hear each other: CSMA-CA avoids most collisions, but when both pick the same
    // backoff slot neither senses the other and b loses both frames.
    let (mut collided, mut clean) = (0, 0);
    for seed in 0..100 {
        let mut m = medium(seed);
        let a = m.add_radio((0.0, 0.0));
        let b = m.add_radio((10.0, 0.0));
        let c = m.add_radio((20.0, 0.0));
        m.transmit(Instant::ZERO, a, frame(1, 50), false, None)
            .unwrap();
        m.transmit(Instant::ZERO, c, frame(2, 50), false, None)
            .unwrap();
        let ev = run(&mut m);
        if m.stats().collisions > 0 {
            collided += 1;
            assert!(rx_of(&ev, b).is_empty(), "seed {seed}");
            // Half-duplex: a and c were transmitting and hear nothing either.
            assert!(rx_of(&ev, a).is_empty() && rx_of(&ev, c).is_empty());
            assert_eq!(m.stats().collisions, 4);
        } else {
            clean += 1;
            assert_eq!(rx_of(&ev, b).len(), 2, "seed {seed}");
        }
        // A broadcast succeeds once on air, collided or not.
        assert!(done(&ev).iter().all(|d| d.2 == MacStatus::Success));
    }
    assert!(
        collided > 0 && clean > collided,
        "collided {collided}, clean {clean}"
    );
}

#[test]
fn hidden_terminals_collide_and_retries_recover() {
    // a and c cannot hear each other; b in the middle hears both.
    let mut m = medium(5);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((25.0, 0.0));
    let c = m.add_radio((50.0, 0.0));
    assert!(!m.in_range(a, c) && m.in_range(a, b) && m.in_range(b, c));
    // Broadcasts of 127 octets (4256 µs) overlap whatever the backoffs (at most 2240 µs).
    m.transmit(Instant::ZERO, a, frame(1, 127), false, None)
        .unwrap();
    m.transmit(Instant::ZERO, c, frame(2, 127), false, None)
        .unwrap();
    let ev = run(&mut m);
    assert!(rx_of(&ev, b).is_empty());
    assert_eq!(m.stats().collisions, 2);
    assert!(
        done(&ev).iter().all(|d| d.2 == MacStatus::Success),
        "CCA cannot see hidden nodes"
    );

    // With AR both senders retry with fresh backoffs; over seeds, most frames get through.
    let mut ok = 0;
    for seed in 0..50 {
        let mut m = medium(seed);
        let a = m.add_radio((0.0, 0.0));
        let b = m.add_radio((25.0, 0.0));
        let c = m.add_radio((50.0, 0.0));
        m.transmit(Instant::ZERO, a, frame(1, 20), true, Some(b))
            .unwrap();
        m.transmit(Instant::ZERO, c, frame(2, 20), true, Some(b))
            .unwrap();
        let ev = run(&mut m);
        ok += done(&ev)
            .iter()
            .filter(|d| d.2 == MacStatus::Success)
            .count();
    }
    assert!(ok > 50, "{ok} of 100 hidden-terminal frames acknowledged");
}

#[test]
fn csma_backoff_spreads_contending_transmitters() {
    let mut delivered = 0;
    let mut busy_ccas = false;
    for seed in 0..50 {
        let mut m = medium(seed);
        let sink = m.add_radio((0.0, 0.0));
        let senders: Vec<RadioId> = (0..5)
            .map(|i| m.add_radio((5.0 + f64::from(i), 5.0)))
            .collect();
        for (i, s) in senders.iter().enumerate() {
            m.transmit(
                Instant::ZERO,
                *s,
                frame(u8::try_from(i).unwrap(), 30),
                true,
                Some(sink),
            )
            .unwrap();
        }
        let ev = run(&mut m);
        let rx = rx_of(&ev, sink);
        delivered += rx.len();
        // Receptions at the sink never overlap: each is at least one frame time apart.
        let times: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                MediumEvent::Rx { to, at, .. } if *to == sink => Some(at.as_micros()),
                _ => None,
            })
            .collect();
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= air_time(30).as_micros(),
                "seed {seed}: {times:?}"
            );
        }
        let statuses = done(&ev);
        assert_eq!(statuses.len(), 5);
        busy_ccas |= statuses.iter().all(|d| d.2 == MacStatus::Success) && m.stats().frames > 5;
        busy_ccas |= m.stats().csma_failures > 0;
    }
    // Five contenders over 8 slots: without backoff none would get through.
    assert!(delivered >= 200, "{delivered} of 250 delivered");
    assert!(busy_ccas);
}

#[test]
fn channel_access_failure_when_the_channel_stays_busy() {
    // c sends a long queue of back-to-back broadcasts; a, in range, tries to send meanwhile
    // and sometimes finds the channel busy five times in a row.
    let mut failures = 0;
    for seed in 0..20 {
        let mut m = medium(seed);
        let a = m.add_radio((0.0, 0.0));
        let c = m.add_radio((10.0, 0.0));
        for i in 0..40 {
            m.transmit(Instant::ZERO, c, frame(i, 127), false, None)
                .unwrap();
        }
        m.transmit(Instant::from_micros(1), a, frame(99, 20), false, None)
            .unwrap();
        let ev = run(&mut m);
        failures += done(&ev)
            .iter()
            .filter(|d| d.0 == a && d.2 == MacStatus::ChannelAccessFailure)
            .count();
    }
    assert!(failures > 0);
}

#[test]
fn same_seed_same_run_different_seed_different_run() {
    fn scenario(seed: u64) -> Vec<MediumEvent> {
        let mut m = Medium::new(MediumConfig {
            seed,
            range_m: 30.0,
            loss: 0.2,
        });
        let radios: Vec<RadioId> = (0..20)
            .map(|i| m.add_radio((f64::from(i % 5) * 12.0, f64::from(i / 5) * 12.0)))
            .collect();
        for (i, r) in radios.iter().enumerate() {
            let dst = radios[(i + 1) % radios.len()];
            let dst = m.in_range(*r, dst).then_some(dst);
            m.transmit(
                Instant::ZERO,
                *r,
                frame(u8::try_from(i).unwrap(), 40),
                dst.is_some(),
                dst,
            )
            .unwrap();
        }
        run(&mut m)
    }
    let a = scenario(42);
    assert!(a.len() > 20);
    assert_eq!(a, scenario(42));
    assert_ne!(a, scenario(43));
}

#[test]
fn multi_hop_line() {
    let mut m = medium(6);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((20.0, 0.0));
    let c = m.add_radio((40.0, 0.0));
    assert!(!m.in_range(a, c));
    m.transmit(Instant::ZERO, a, frame(1, 30), true, Some(b))
        .unwrap();
    let ev = run(&mut m);
    assert_eq!(rx_of(&ev, b), vec![(a, frame(1, 30))]);
    assert!(rx_of(&ev, c).is_empty(), "c cannot hear a");
    // b relays.
    let now = m.now();
    let t = m.transmit(now, b, frame(2, 30), true, Some(c)).unwrap();
    let ev = run(&mut m);
    assert_eq!(rx_of(&ev, c), vec![(b, frame(2, 30))]);
    assert_eq!(
        rx_of(&ev, a),
        vec![(b, frame(2, 30))],
        "a overhears b's relay"
    );
    assert_eq!(done(&ev), vec![(b, t, MacStatus::Success)]);
}

#[test]
fn frames_of_one_radio_go_out_in_order_and_long_frames_fail() {
    let mut m = medium(8);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((1.0, 0.0));
    let long = m
        .transmit(Instant::ZERO, a, frame(0, 128), false, None)
        .unwrap();
    let t1 = m
        .transmit(Instant::ZERO, a, frame(1, 10), true, Some(b))
        .unwrap();
    let t2 = m
        .transmit(Instant::ZERO, a, frame(2, 10), true, Some(b))
        .unwrap();
    let ev = run(&mut m);
    assert_eq!(
        done(&ev),
        vec![
            (a, long, MacStatus::FrameTooLong),
            (a, t1, MacStatus::Success),
            (a, t2, MacStatus::Success)
        ]
    );
    assert_eq!(rx_of(&ev, b), vec![(a, frame(1, 10)), (a, frame(2, 10))]);
    assert_eq!(
        m.transmit(Instant::ZERO, RadioId(9), vec![], false, None),
        Err(MediumError::UnknownRadio(RadioId(9)))
    );
}

#[test]
fn ack_frame_has_a_valid_fcs() {
    assert_eq!(
        crc16_kermit(&[0x02, 0x00, 0x05]).to_le_bytes(),
        [0x15, 0xe2]
    );
}

#[test]
fn thousand_radios_run_on_virtual_time() {
    let mut m = medium(10);
    let radios: Vec<RadioId> = (0..1000)
        .map(|i| m.add_radio((f64::from(i % 40) * 20.0, f64::from(i / 40) * 20.0)))
        .collect();
    for r in &radios {
        m.transmit(Instant::ZERO, *r, frame(1, 60), false, None)
            .unwrap();
    }
    let ev = run(&mut m);
    assert_eq!(done(&ev).len(), 1000);
    assert!(m.stats().delivered > 0);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn scenario(
        seed: u64,
        loss: f64,
        pos: &[(f64, f64)],
        sends: &[(usize, usize, bool, u8, u16)],
    ) -> (Vec<MediumEvent>, Medium, Vec<(RadioId, TxToken)>) {
        let mut m = Medium::new(MediumConfig {
            seed,
            range_m: 30.0,
            loss,
        });
        let radios: Vec<RadioId> = pos.iter().map(|p| m.add_radio(*p)).collect();
        let mut tokens = Vec::new();
        let mut sends = sends.to_vec();
        sends.sort_by_key(|s| s.4);
        for (from, to, ar, len, at) in sends {
            let (from, to) = (radios[from % radios.len()], radios[to % radios.len()]);
            let now = Instant::from_micros(u64::from(at));
            m.handle_timeout(now);
            let t = m
                .transmit(now, from, frame(0, usize::from(len)), ar, Some(to))
                .unwrap();
            tokens.push((from, t));
        }
        (run(&mut m), m, tokens)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every transmit ends in exactly one TxDone; nobody hears a radio out of range or
        /// itself; a run replays exactly from its seed.
        #[test]
        fn medium_invariants(
            seed in any::<u64>(),
            loss in prop_oneof![Just(0.0), 0.0..1.0f64],
            pos in prop::collection::vec((0.0..100.0f64, 0.0..100.0f64), 2..12),
            sends in prop::collection::vec(
                (0..12usize, 0..12usize, any::<bool>(), 3..=130u8, 0..20_000u16), 1..30),
        ) {
            let (ev, m, tokens) = scenario(seed, loss, &pos, &sends);
            let mut done_tokens: Vec<(RadioId, TxToken)> =
                done(&ev).iter().map(|d| (d.0, d.1)).collect();
            done_tokens.sort();
            let mut want = tokens.clone();
            want.sort();
            prop_assert_eq!(done_tokens, want);
            for e in &ev {
                if let MediumEvent::Rx { to, from, .. } = e {
                    prop_assert!(m.in_range(*from, *to));
                }
            }
            let s = m.stats();
            prop_assert!(s.acks_received <= s.acks && s.acks <= s.delivered);
            prop_assert_eq!(&ev, &scenario(seed, loss, &pos, &sends).0);
        }
    }
}

/// The medium's captured PPDUs make a pcap Wireshark decodes: the data frame and its Imm-Ack,
/// both with a good FCS.
#[test]
fn captured_exchange_decodes_in_tshark() {
    use crate::pcap::PcapWriter;
    // spec/mpx-wire-format.md §6 Ex 1: AR set, sequence number 5, valid FCS.
    let ex1 = hex::decode("21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4")
        .unwrap();
    let mut m = medium(11);
    m.set_capture(true);
    let a = m.add_radio((0.0, 0.0));
    let b = m.add_radio((10.0, 0.0));
    m.transmit(Instant::ZERO, a, ex1.clone(), true, Some(b))
        .unwrap();
    let ev = run(&mut m);
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let mut on_air = Vec::new();
    for e in &ev {
        if let MediumEvent::OnAir {
            from, frame, start, ..
        } = e
        {
            w.write_frame(*start, frame).unwrap();
            on_air.push((*from, frame.clone()));
        }
    }
    assert_eq!(
        on_air,
        vec![(a, ex1), (b, hex::decode("02000515e2").unwrap())]
    );
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("tshark not installed; skipping");
        return;
    }
    let path = std::env::temp_dir().join(format!("radio-drivers-sim-{}.pcap", std::process::id()));
    std::fs::write(&path, w.into_inner()).unwrap();
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args([
            "-T",
            "fields",
            "-e",
            "wpan.frame_type",
            "-e",
            "wpan.seq_no",
            "-e",
            "wpan.fcs_ok",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows,
        vec![vec!["0x0001", "5", "1"], vec!["0x0002", "5", "1"]],
        "{text}"
    );
}
