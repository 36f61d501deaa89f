//! End to end over the runtime actors on the simulated medium: the gateway's and nodes' KMP
//! hosts, MPX actors and PIB actors, with the real Dragonfly KMP and CCM* data frames.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use examples::sim::{SimOptions, SimReport, run};

fn sim(opts: SimOptions) -> SimReport {
    run(&opts, &|_| {}).unwrap()
}

fn assert_complete(r: &SimReport, nodes: usize, data_frames: usize) {
    assert_eq!(r.joins_completed, nodes, "{r:?}");
    assert_eq!(r.joins_failed, 0, "{r:?}");
    assert_eq!(r.join_latencies_us.len(), nodes);
    assert_eq!(r.data_sent, nodes * data_frames, "{r:?}");
    assert_eq!(r.data_failed, 0, "{r:?}");
    // A frame whose ack was lost arrives but is confirmed NoAck and sent again, so the gateway
    // may see more than were confirmed; never fewer.
    assert!(r.data_received >= r.data_sent, "{r:?}");
}

#[test]
fn two_nodes_join_and_exchange_protected_data() {
    let r = sim(SimOptions {
        nodes: 2,
        ..SimOptions::default()
    });
    assert_complete(&r, 2, 3);
    // Each join is the Dragonfly exchange (commit, commit, confirm, confirm, group key and
    // its acknowledgment) and every frame was acknowledged on air.
    assert!(r.kmp_datagrams >= 2 * 5, "{r:?}");
    assert!(
        r.medium.acks >= r.medium.frames - r.medium.no_acks * 4,
        "{r:?}"
    );
}

#[test]
fn fifty_nodes_join_and_exchange_protected_data() {
    let r = sim(SimOptions::default());
    assert_complete(&r, 50, 3);
    assert!(r.medium.frames >= 50 * 5 + 150, "{r:?}");
}

#[test]
fn twenty_percent_loss_still_completes_every_join() {
    let r = sim(SimOptions {
        nodes: 12,
        loss: 0.2,
        seed: 7,
        ..SimOptions::default()
    });
    assert_complete(&r, 12, 3);
    // The loss really happened and was repaired by retransmissions.
    assert!(r.medium.losses > 20, "{r:?}");
    assert!(r.medium.frames > r.medium.acks_received, "{r:?}");
}

#[test]
fn a_seed_repeats_exactly() {
    let opts = SimOptions {
        nodes: 8,
        loss: 0.05,
        seed: 42,
        ..SimOptions::default()
    };
    let a = sim(opts.clone());
    let b = sim(opts);
    assert_eq!(a.medium, b.medium);
    assert_eq!(a.join_latencies_us, b.join_latencies_us);
    assert_eq!(a.virtual_time, b.virtual_time);
    assert_eq!(a.kmp_upper_layer_octets, b.kmp_upper_layer_octets);
    let c = sim(SimOptions {
        nodes: 8,
        loss: 0.05,
        seed: 43,
        ..SimOptions::default()
    });
    assert_ne!(a.join_latencies_us, c.join_latencies_us);
}

#[test]
fn wrong_password_fails_every_join_and_sends_no_data() {
    let r = sim(SimOptions {
        nodes: 3,
        node_config: Some("password = \"not the gateway's\"\nexpect_group_key = true\n".into()),
        ..SimOptions::default()
    });
    assert_eq!(r.joins_completed, 0, "{r:?}");
    assert_eq!(r.joins_failed, 3);
    assert_eq!(r.data_sent + r.data_received, 0);
}

#[test]
fn unknown_kmp_is_a_clear_error() {
    let e = run(
        &SimOptions {
            kmp: "no-such-kmp".into(),
            ..SimOptions::default()
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("no KMP \"no-such-kmp\""), "{e}");
    assert!(e.to_string().contains("dragonfly (5)"), "{e}");
}

#[test]
fn static_registration_self_check_holds() {
    let reg = kmp_api::Registry::from_inventory().unwrap();
    examples::check_linked_kmps(&reg).unwrap();
    assert!(examples::LINKED_KMPS.contains(&("kmp-dragonfly", "dragonfly")));
    // An empty registry fails the check for every linked KMP.
    let e = examples::check_linked_kmps(&kmp_api::Registry::new()).unwrap_err();
    assert!(e.to_string().contains("kmp-dragonfly"), "{e}");
}

/// The vendor plugin (a `cdylib` built with the workspace) joins a network in the simulator.
#[test]
fn dynamic_plugin_joins_in_the_simulator() {
    let exe = std::env::current_exe().unwrap();
    let file = format!(
        "{}kmp_vendor_psk{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let deps = exe.parent().unwrap();
    let candidates = [deps.join(&file), deps.parent().unwrap().join(&file)];
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} is missing: build the workspace first (cargo test --workspace builds the cdylib)",
                candidates[0].display()
            )
        })
        .clone();
    let r = sim(SimOptions {
        nodes: 5,
        kmp: "vendor-psk".into(),
        plugins: vec![path],
        ..SimOptions::default()
    });
    assert_complete(&r, 5, 3);
    assert!(r.kmp.contains("vendor-psk"), "{}", r.kmp);
}

/// IKEv2 (KMP ID 3) over MPX: IKE_SA_INIT and IKE_AUTH are fragmented by MPX, the child SA's
/// directional keys protect the data frames; some loss on the way.
#[test]
fn ikev2_joins_over_mpx_and_its_child_sa_keys_protect_the_data() {
    let r = sim(SimOptions {
        nodes: 10,
        kmp: "ikev2".into(),
        loss: 0.05,
        seed: 9,
        ..SimOptions::default()
    });
    assert_complete(&r, 10, 3);
    assert!(r.kmp.contains("ikev2"), "{}", r.kmp);
    // Four IKE messages per join at least (two requests, two responses).
    assert!(r.kmp_datagrams >= 40, "{r:?}");
}

/// With 6TSCH broadcast keys (DECISIONS I26) every join still completes: each PIB takes the
/// peer's K_i as a mode-3 receive key and its own K_i as its transmit key (a refused install
/// would fail the join), and the key log shows them with their index.
#[test]
fn ikev2_with_broadcast_keys_joins_and_the_pib_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("keys.txt");
    let c = "psk = \"kmp-sim shared secret\"\nbroadcast_key = true\n".to_string();
    let r = sim(SimOptions {
        nodes: 5,
        kmp: "ikev2".into(),
        seed: 4,
        keylog: Some(keylog.clone()),
        gateway_config: Some(c.clone()),
        node_config: Some(c),
        ..SimOptions::default()
    });
    assert_complete(&r, 5, 3);
    let log = std::fs::read_to_string(&keylog).unwrap();
    println!("{log}");
    // The key log has each distinct key once: two pairwise keys per link (index 0), and the
    // broadcast keys (index 1). Here the nodes share one factory, as one process would, so
    // they share one K_i: two broadcast keys, the gateway's and the nodes'.
    let index = |i: &str| {
        log.lines()
            .filter(|l| l.contains(&format!(",\"{i}\",")))
            .count()
    };
    assert_eq!(index("0"), 5 * 2, "{log}");
    assert_eq!(index("1"), 2, "{log}");
}

/// The Wi-SUN-shaped 802.1X join (`--kmp 8021x`): EAP-TLS under KMP ID 1 with per-node
/// certificates generated at start, then the 4-way (KMP ID 6) and group-key (KMP ID 7)
/// handshakes started by the gateway. Each node ends with the TK as its pairwise key and the
/// GTK as group key index 1; the data frames go out under the TK and the gateway decrypts
/// them.
#[test]
fn ieee8021x_join_with_eap_tls_and_both_handshakes_then_protected_data() {
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("keys.txt");
    let r = sim(SimOptions {
        nodes: 10,
        kmp: "8021x".into(),
        seed: 11,
        keylog: Some(keylog.clone()),
        ..SimOptions::default()
    });
    assert_complete(&r, 10, 3);
    assert!(
        r.kmp.contains("8021x") && r.kmp.contains("ieee80211-4way"),
        "{}",
        r.kmp
    );
    assert!(r.kmp.contains("ieee80211-group-key"), "{}", r.kmp);
    // Per join at least: key request, Identity request/response, the EAP-TLS exchange (TLS
    // 1.2: start, ClientHello, server flight, client flight, server Finished, ack), Success,
    // four 4-way and two group-key messages.
    assert!(r.kmp_datagrams >= 10 * 16, "{r:?}");
    // The EAP-TLS flights are MPX-fragmented: several kB on air per join.
    assert!(r.octets_per_join().unwrap() > 2_500.0, "{r:?}");
    // The key log holds each distinct key once: a TK per node (pairwise, index 0, installed
    // at both ends) and the one GTK (index 1, installed at every node by message 3 and again
    // by the group-key handshake).
    let log = std::fs::read_to_string(&keylog).unwrap();
    let index = |i: &str| {
        log.lines()
            .filter(|l| l.contains(&format!(",\"{i}\",")))
            .count()
    };
    assert_eq!(index("0"), 10, "{log}");
    assert_eq!(index("1"), 1, "{log}");
    assert_eq!(log.lines().count(), 11, "{log}");
}

/// 10 % loss on every link: MAC retries, MPX fragment retransmissions and the KMPs' own
/// timers (EAP retransmission, the supplicant's key request, the handshakes' message 1/3
/// and group message 1 retransmissions) still complete every join well within five minutes of
/// virtual time.
#[test]
fn ieee8021x_join_completes_through_ten_percent_loss() {
    let r = sim(SimOptions {
        nodes: 10,
        kmp: "8021x".into(),
        loss: 0.1,
        seed: 5,
        max_virtual_time: kmp_api::Duration::from_secs(300),
        ..SimOptions::default()
    });
    assert_complete(&r, 10, 3);
    assert!(r.medium.losses > 100, "{r:?}");
    assert!(r.medium.frames > r.medium.acks_received, "{r:?}");
    assert!(
        r.virtual_time < kmp_api::Duration::from_secs(300),
        "{:?}",
        r.virtual_time
    );
}

/// `--kmp 1` is the 802.1X join too; the handshakes alone and the 802.1X join with a TOML
/// configuration are refused with a clear error.
#[test]
fn ieee8021x_by_kmp_id_and_clear_errors() {
    let r = sim(SimOptions {
        nodes: 2,
        kmp: "1".into(),
        ..SimOptions::default()
    });
    assert_complete(&r, 2, 3);
    assert!(r.kmp.contains("ieee80211-group-key"), "{}", r.kmp);
    for kmp in ["ieee80211-4way", "ieee80211-group-key", "6"] {
        let e = run(
            &SimOptions {
                kmp: kmp.into(),
                ..SimOptions::default()
            },
            &|_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("--kmp 8021x"), "{e}");
    }
    let e = run(
        &SimOptions {
            kmp: "8021x".into(),
            node_config: Some("methods = [\"tls\"]\n".into()),
            ..SimOptions::default()
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("built in"), "{e}");
}
