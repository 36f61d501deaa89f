use kmp_api::security::KeySource;
use kmp_api::session::{KeyDirection, LinkKey};
use kmp_api::{Address, SecurityLevel, ShortAddress};

use super::*;
use crate::pib::{
    FrameCounterError, KeyLookupError, KeyQuery, SecurityLevelCheck, SecurityLevelError,
    SecurityLevelSet,
};

const T0: Instant = Instant::from_micros(1_000_000);
const PEER: ExtendedAddress = ExtendedAddress::from_u64(0x0200_0000_0000_0001);
const OTHER: ExtendedAddress = ExtendedAddress::from_u64(0x0200_0000_0000_0002);
const ME: ExtendedAddress = ExtendedAddress::from_u64(0x0200_0000_0000_00ff);

fn link_key(byte: u8, lookup: KeyIdentifier, scope: KeyScope, direction: KeyDirection) -> LinkKey {
    LinkKey {
        key: SecretBytes::from_slice(&[byte; 16]),
        lookup,
        scope,
        direction,
        min_security_level: SecurityLevel::EncMic32,
        lifetime: None,
    }
}

fn install(owner: KmpId, peer: ExtendedAddress, link_keys: Vec<LinkKey>) -> KeyInstall {
    KeyInstall {
        owner,
        peer,
        link_keys,
        upper_layer_sas: Vec::new(),
    }
}

fn sa(id: &str, parent: Option<&str>) -> UpperLayerSa {
    UpperLayerSa {
        sa_id: id.as_bytes().to_vec(),
        kind: "rkmp-routing".into(),
        keys: vec![("TEK".into(), SecretBytes::from_slice(id.as_bytes()))],
        lifetime: None,
        parent: parent.map(|p| p.as_bytes().to_vec()),
    }
}

fn query(key_id: KeyIdentifier, device: ExtendedAddress, direction: KeyDirection) -> KeyQuery {
    KeyQuery {
        key_id,
        device: Some(device),
        frame_type: FrameType::Data,
        command_id: None,
        direction,
    }
}

fn small_config() -> PibConfig {
    PibConfig {
        reservation_block: 10,
        ..PibConfig::default()
    }
}

fn open(path: &Path) -> PibStore {
    PibStore::open(path, small_config(), T0).unwrap()
}

#[test]
fn fresh_store_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("pib.redb"));
    let r = store.load_report();
    assert!(r.created);
    assert_eq!((r.keys, r.devices, r.tx_resume_at), (0, 0, 0));
    assert_eq!(
        store.pib().outgoing_frame_counter(),
        OutgoingCounterState {
            next: 0,
            reserved_until: 0
        }
    );
    assert!(store.pib().own_identity().is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("pib.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    store.close().unwrap();
    let store = open(&dir.path().join("pib.redb"));
    assert!(!store.load_report().created);
    assert!(store.load_report().clean_shutdown);
}

use crate::pib::OutgoingCounterState;

#[test]
fn install_makes_keys_visible_and_adds_peers() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    store
        .set_own_identity(OwnIdentity {
            ext_address: ME,
            short_address: ShortAddress(1),
            pan_id: PanId(0x1234),
        })
        .unwrap();
    let pib = store.pib();
    let mut ki = install(
        KmpId::Ikev2,
        PEER,
        vec![
            link_key(
                1,
                KeyIdentifier::Implicit,
                KeyScope::Pairwise(PEER),
                KeyDirection::Transmit,
            ),
            link_key(
                2,
                KeyIdentifier::Implicit,
                KeyScope::Pairwise(PEER),
                KeyDirection::Receive,
            ),
            link_key(
                3,
                KeyIdentifier::Index(1),
                KeyScope::Group,
                KeyDirection::Both,
            ),
        ],
    );
    ki.link_keys[2].lifetime = Some(Duration::from_secs(10));
    ki.upper_layer_sas.push(sa("ike", None));
    let r = store.install_keys(&ki, T0).unwrap();
    assert_eq!(r.key_refs, vec![KeyRef(1), KeyRef(2), KeyRef(3)]);
    assert!(r.replaced.is_empty());
    assert_eq!(r.devices_added, vec![PEER]);
    assert_eq!(r.upper_layer_sas, 1);

    let tx = pib
        .lookup_key(
            &query(KeyIdentifier::Implicit, PEER, KeyDirection::Transmit),
            T0,
        )
        .unwrap();
    assert_eq!((tx.key_ref, tx.key.expose()[0]), (KeyRef(1), 1));
    let rx = pib
        .lookup_key(
            &query(KeyIdentifier::Implicit, PEER, KeyDirection::Receive),
            T0,
        )
        .unwrap();
    assert_eq!(rx.key_ref, KeyRef(2));
    assert_eq!(rx.min_security_level, SecurityLevel::EncMic32);
    let group = pib
        .lookup_key(
            &query(KeyIdentifier::Index(1), OTHER, KeyDirection::Receive),
            T0,
        )
        .unwrap();
    assert_eq!(group.key_ref, KeyRef(3));
    let later = T0 + Duration::from_secs(10);
    assert_eq!(
        pib.lookup_key(
            &query(KeyIdentifier::Index(1), OTHER, KeyDirection::Receive),
            later
        )
        .unwrap_err(),
        KeyLookupError::Expired(KeyRef(3))
    );
    let d = pib.device(PEER).unwrap();
    assert_eq!(
        (d.pan_id, d.short_address, d.exempt),
        (PanId(0x1234), ShortAddress::NONE_ASSIGNED, false)
    );
    assert_eq!(
        pib.device_by_address(PanId(0x1234), Address::Extended(PEER)),
        Some(d)
    );
    // Counters: peer under its receive key and under the group key; none for the tx-only key.
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(2)), Some(0));
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(3)), Some(0));
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(1)), None);
    // A device added later gets counters for the group key only.
    store
        .set_device(DeviceDescriptor::new(PanId(0x1234), OTHER))
        .unwrap();
    assert_eq!(pib.next_acceptable_frame_counter(OTHER, KeyRef(3)), Some(0));
    assert_eq!(pib.next_acceptable_frame_counter(OTHER, KeyRef(2)), None);
    assert_eq!(
        pib.upper_layer_sa(KmpId::Ikev2, PEER, b"ike").unwrap().sa,
        sa("ike", None)
    );
    // Transmit-only and receive-only keys: counters are allocated only for tx-capable keys.
    assert_eq!(
        pib.allocate_frame_counter(KeyRef(2)),
        Err(CounterError::UnknownKey(KeyRef(2)))
    );
    assert_eq!(
        pib.allocate_frame_counter(KeyRef(99)),
        Err(CounterError::UnknownKey(KeyRef(99)))
    );
    assert_eq!(
        pib.allocate_frame_counter(KeyRef(1)),
        Err(CounterError::NotReserved)
    );
    assert!(pib.needs_maintenance());
    assert_eq!(store.allocate_frame_counter(KeyRef(1)).unwrap(), 0);
    assert_eq!(pib.allocate_frame_counter(KeyRef(3)), Ok(1));
}

#[test]
fn install_is_all_or_nothing() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    let good = link_key(
        1,
        KeyIdentifier::Index(1),
        KeyScope::Group,
        KeyDirection::Both,
    );
    let mut short = link_key(
        2,
        KeyIdentifier::Index(2),
        KeyScope::Group,
        KeyDirection::Both,
    );
    short.key = SecretBytes::from_slice(&[2; 15]);
    let implicit_group = link_key(
        3,
        KeyIdentifier::Implicit,
        KeyScope::Group,
        KeyDirection::Both,
    );
    let dup = link_key(
        4,
        KeyIdentifier::Index(1),
        KeyScope::Group,
        KeyDirection::Receive,
    );
    for bad in [short, implicit_group, dup] {
        let err = store
            .install_keys(&install(KmpId::Hip, PEER, vec![good.clone(), bad]), T0)
            .unwrap_err();
        assert!(matches!(err, PibError::Invalid(_)), "{err}");
    }
    let mut ki = install(KmpId::Hip, PEER, vec![good.clone()]);
    ki.upper_layer_sas = vec![sa("a", None), sa("a", None)];
    assert!(matches!(
        store.install_keys(&ki, T0),
        Err(PibError::Invalid(_))
    ));
    assert!(store.pib().keys().is_empty());
    assert!(store.pib().devices().is_empty());
    assert!(store.pib().upper_layer_sas(KmpId::Hip, PEER).is_empty());
    // Nothing to install is fine and allocates no handle.
    assert_eq!(
        store
            .install_keys(&install(KmpId::Hip, PEER, vec![]), T0)
            .unwrap(),
        InstallReceipt::default()
    );
    let r = store
        .install_keys(&install(KmpId::Hip, PEER, vec![good]), T0)
        .unwrap();
    assert_eq!(r.key_refs, vec![KeyRef(1)]);
}

#[test]
fn a_new_key_replaces_the_one_it_shadows() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    let pib = store.pib();
    let both = link_key(
        1,
        KeyIdentifier::Implicit,
        KeyScope::Pairwise(PEER),
        KeyDirection::Both,
    );
    store
        .install_keys(&install(KmpId::Dragonfly, PEER, vec![both]), T0)
        .unwrap();
    pib.check_and_update_frame_counter(PEER, KeyRef(1), 5)
        .unwrap();
    // A directional rekey: the new receive key shadows the old key's receive half.
    let rx = link_key(
        2,
        KeyIdentifier::Implicit,
        KeyScope::Pairwise(PEER),
        KeyDirection::Receive,
    );
    let r = store
        .install_keys(&install(KmpId::Dragonfly, PEER, vec![rx]), T0)
        .unwrap();
    assert_eq!(r.replaced, vec![KeyRef(1)]);
    assert_eq!(r.key_refs, vec![KeyRef(2)]);
    assert!(r.devices_added.is_empty());
    assert!(pib.key(KeyRef(1)).is_none());
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(1)), None);
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(2)), Some(0));
    assert!(
        pib.lookup_key(
            &query(KeyIdentifier::Implicit, PEER, KeyDirection::Transmit),
            T0
        )
        .is_err()
    );
    // Pairwise keys of different peers with the same index do not collide.
    let a = link_key(
        3,
        KeyIdentifier::Index(7),
        KeyScope::Pairwise(PEER),
        KeyDirection::Both,
    );
    let b = link_key(
        4,
        KeyIdentifier::Index(7),
        KeyScope::Pairwise(OTHER),
        KeyDirection::Both,
    );
    let r = store
        .install_keys(&install(KmpId::Dragonfly, PEER, vec![a, b]), T0)
        .unwrap();
    assert!(r.replaced.is_empty());
    assert_eq!(r.devices_added, vec![OTHER]);
    let k = pib
        .lookup_key(
            &query(KeyIdentifier::Index(7), OTHER, KeyDirection::Receive),
            T0,
        )
        .unwrap();
    assert_eq!(k.key.expose()[0], 4);
}

#[test]
fn remove_keys_by_selector() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    let pib = store.pib();
    let mut ki = install(
        KmpId::Ikev2,
        PEER,
        vec![
            link_key(
                1,
                KeyIdentifier::Implicit,
                KeyScope::Pairwise(PEER),
                KeyDirection::Both,
            ),
            link_key(
                2,
                KeyIdentifier::Index(5),
                KeyScope::Group,
                KeyDirection::Both,
            ),
        ],
    );
    ki.upper_layer_sas = vec![
        sa("ike", None),
        sa("child", Some("ike")),
        sa("grandchild", Some("child")),
        sa("lone", None),
    ];
    store.install_keys(&ki, T0).unwrap();
    let other_owner = install(
        KmpId::Hip,
        PEER,
        vec![link_key(
            3,
            KeyIdentifier::Index(6),
            KeyScope::Group,
            KeyDirection::Both,
        )],
    );
    store.install_keys(&other_owner, T0).unwrap();

    let rm = |which| KeyRemoval {
        owner: KmpId::Ikev2,
        peer: PEER,
        which,
    };
    let r = store
        .remove_keys(&rm(KeySelector::LinkKey(KeyIdentifier::Index(5))))
        .unwrap();
    assert_eq!(r.keys, vec![KeyRef(2)]);
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(2)), None);
    let r = store
        .remove_keys(&rm(KeySelector::LinkKey(KeyIdentifier::Index(6))))
        .unwrap();
    assert!(r.keys.is_empty(), "another owner's key is not removed");
    let r = store
        .remove_keys(&rm(KeySelector::UpperLayerSa {
            sa_id: b"child".to_vec(),
            revoke_children: false,
        }))
        .unwrap();
    assert_eq!(r.upper_layer_sas, vec![b"child".to_vec()]);
    // The grandchild's parent is gone; it stays until its own removal.
    assert!(
        pib.upper_layer_sa(KmpId::Ikev2, PEER, b"grandchild")
            .is_some()
    );
    let r = store
        .remove_keys(&rm(KeySelector::UpperLayerSa {
            sa_id: b"ike".to_vec(),
            revoke_children: true,
        }))
        .unwrap();
    assert_eq!(r.upper_layer_sas, vec![b"ike".to_vec()]);
    let r = store.remove_keys(&rm(KeySelector::All)).unwrap();
    assert_eq!(r.keys, vec![KeyRef(1)]);
    let mut sas = r.upper_layer_sas.clone();
    sas.sort();
    assert_eq!(sas, vec![b"grandchild".to_vec(), b"lone".to_vec()]);
    assert_eq!(pib.keys().len(), 1);
    assert_eq!(
        store.remove_keys(&rm(KeySelector::All)).unwrap(),
        RemovalReceipt::default()
    );
    assert!(store.remove_key(KeyRef(3)).unwrap());
    assert!(!store.remove_key(KeyRef(3)).unwrap());
}

#[test]
fn upper_layer_sa_calls() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    let pib = store.pib();
    let o = KmpId::Ikev2;
    for (id, parent) in [
        ("ike", None),
        ("c1", Some("ike")),
        ("c2", Some("ike")),
        ("g", Some("c1")),
        ("x", None),
    ] {
        store
            .insert_upper_layer_sa(o, PEER, sa(id, parent), T0)
            .unwrap();
    }
    store
        .insert_upper_layer_sa(o, OTHER, sa("c1", Some("ike")), T0)
        .unwrap();
    store
        .insert_upper_layer_sa(KmpId::Hip, PEER, sa("c1", Some("ike")), T0)
        .unwrap();
    assert_eq!(pib.upper_layer_sas(o, PEER).len(), 5);

    let new_keys: Vec<(std::borrow::Cow<'static, str>, SecretBytes)> = vec![
        ("TEK".into(), SecretBytes::from_slice(&[7; 16])),
        ("TAK".into(), SecretBytes::from_slice(&[8; 16])),
    ];
    let later = T0 + Duration::from_secs(5);
    store
        .rekey_upper_layer_sa(o, PEER, b"c1", new_keys.clone(), later)
        .unwrap();
    let s = pib.upper_layer_sa(o, PEER, b"c1").unwrap();
    assert_eq!(s.sa.keys, new_keys);
    assert_eq!(s.installed_at, later);
    assert_eq!(s.sa.parent.as_deref(), Some(&b"ike"[..]));
    assert!(matches!(
        store.rekey_upper_layer_sa(o, PEER, b"nope", vec![], later),
        Err(PibError::Invalid(_))
    ));

    let mut revoked = store.revoke_upper_layer_sa(o, PEER, b"ike").unwrap();
    assert_eq!(revoked[0], b"ike");
    revoked.sort();
    assert_eq!(
        revoked,
        vec![
            b"c1".to_vec(),
            b"c2".to_vec(),
            b"g".to_vec(),
            b"ike".to_vec()
        ]
    );
    assert_eq!(pib.upper_layer_sas(o, PEER).len(), 1);
    // Same ids under another peer or owner are untouched.
    assert!(pib.upper_layer_sa(o, OTHER, b"c1").is_some());
    assert!(pib.upper_layer_sa(KmpId::Hip, PEER, b"c1").is_some());
    assert!(
        store
            .revoke_upper_layer_sa(o, PEER, b"ike")
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_upper_layer_sa(o, PEER, b"x").unwrap());
    assert!(!store.delete_upper_layer_sa(o, PEER, b"x").unwrap());
    assert!(store.upper_layer_sa(o, PEER, b"x").is_none());
}

#[test]
fn device_and_security_level_tables() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    let pib = store.pib();
    let pan = PanId(0x00aa);
    let d = DeviceDescriptor {
        pan_id: pan,
        short_address: ShortAddress(0x10),
        ext_address: PEER,
        exempt: true,
    };
    store.set_device(d).unwrap();
    assert_eq!(
        pib.device_by_address(pan, Address::Short(ShortAddress(0x10))),
        Some(d)
    );
    let moved = DeviceDescriptor {
        short_address: ShortAddress(0x11),
        ..d
    };
    store.set_device(moved).unwrap();
    assert_eq!(
        pib.device_by_address(pan, Address::Short(ShortAddress(0x10))),
        None
    );
    assert_eq!(
        pib.device_by_address(pan, Address::Short(ShortAddress(0x11))),
        Some(moved)
    );
    assert_eq!(pib.devices(), vec![moved]);

    let data = SecurityLevelDescriptor {
        frame_type: FrameType::Data,
        command_id: None,
        security_minimum: SecurityLevel::EncMic32,
        device_override: true,
        allowed: SecurityLevelSet::ANY,
    };
    store.set_security_level(data).unwrap();
    let bad = SecurityLevelDescriptor {
        command_id: Some(1),
        ..data
    };
    assert!(matches!(
        store.set_security_level(bad),
        Err(PibError::Invalid(_))
    ));
    assert_eq!(
        pib.security_level_descriptor(FrameType::Data, None),
        Some(data)
    );
    assert_eq!(
        pib.security_level_check(FrameType::Data, None, SecurityLevel::None),
        SecurityLevelCheck::ConditionallyPassed
    );
    let exempt = pib.device(PEER);
    assert_eq!(
        pib.check_incoming_security_level(
            FrameType::Data,
            None,
            SecurityLevel::None,
            exempt.as_ref()
        ),
        Ok(())
    );
    let not_exempt = DeviceDescriptor {
        exempt: false,
        ..moved
    };
    assert_eq!(
        pib.check_incoming_security_level(
            FrameType::Data,
            None,
            SecurityLevel::None,
            Some(&not_exempt)
        ),
        Err(SecurityLevelError::ImproperSecurityLevel {
            frame_type: FrameType::Data,
            level: SecurityLevel::None
        })
    );
    assert!(
        pib.check_incoming_security_level(FrameType::Data, None, SecurityLevel::None, None)
            .is_err()
    );
    assert_eq!(
        pib.check_incoming_security_level(FrameType::Data, None, SecurityLevel::EncMic64, None),
        Ok(())
    );
    assert!(
        pib.check_incoming_security_level(FrameType::Data, None, SecurityLevel::Mic128, None)
            .is_err()
    );
    assert!(store.remove_security_level(FrameType::Data, None).unwrap());
    assert!(!store.remove_security_level(FrameType::Data, None).unwrap());
    assert!(pib.security_level_descriptors().is_empty());

    assert!(store.remove_device(PEER).unwrap());
    assert!(!store.remove_device(PEER).unwrap());
    assert_eq!(
        pib.device_by_address(pan, Address::Short(ShortAddress(0x11))),
        None
    );
}

#[test]
fn replay_check_through_the_store() {
    let mut store = PibStore::in_memory(small_config(), T0).unwrap();
    let pib = store.pib();
    store
        .set_device(DeviceDescriptor::new(PanId(1), OTHER))
        .unwrap();
    let g = link_key(
        1,
        KeyIdentifier::Index(1),
        KeyScope::Group,
        KeyDirection::Receive,
    );
    store
        .install_keys(&install(KmpId::Pana, PEER, vec![g]), T0)
        .unwrap();
    assert_eq!(pib.frame_counter_acceptable(OTHER, KeyRef(1), 0), Ok(()));
    assert_eq!(
        pib.check_and_update_frame_counter(OTHER, KeyRef(1), 0),
        Ok(())
    );
    assert_eq!(
        pib.check_and_update_frame_counter(OTHER, KeyRef(1), 0),
        Err(FrameCounterError::Replay {
            received: 0,
            next_acceptable: 1
        })
    );
    assert_eq!(
        pib.check_and_update_frame_counter(OTHER, KeyRef(1), u32::MAX),
        Err(FrameCounterError::Exhausted)
    );
    // PEER is not a device: group-key frames from it have no counter.
    assert_eq!(
        pib.check_and_update_frame_counter(PEER, KeyRef(1), 1),
        Err(FrameCounterError::UnknownDeviceKey {
            device: PEER,
            key_ref: KeyRef(1)
        })
    );
    assert!(
        pib.needs_maintenance(),
        "first frame of an unrecorded counter asks for a checkpoint"
    );
    assert_eq!(store.checkpoint().unwrap(), 1);
    assert_eq!(store.checkpoint().unwrap(), 0);
    store.remove_device(OTHER).unwrap();
    assert_eq!(pib.next_acceptable_frame_counter(OTHER, KeyRef(1)), None);
}

#[test]
fn reservation_blocks_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let mut store = open(&path);
    let k = link_key(
        1,
        KeyIdentifier::Index(1),
        KeyScope::Group,
        KeyDirection::Transmit,
    );
    store
        .install_keys(&install(KmpId::Pana, PEER, vec![k]), T0)
        .unwrap();
    let pib = store.pib();
    let got: Vec<u32> = (0..25)
        .map(|_| store.allocate_frame_counter(KeyRef(1)).unwrap())
        .collect();
    assert_eq!(got, (0..25).collect::<Vec<_>>());
    assert_eq!(
        pib.outgoing_frame_counter(),
        OutgoingCounterState {
            next: 25,
            reserved_until: 30
        }
    );
    // Crash (no close): the rest of the block, 25..30, is never used.
    drop(store);
    let mut store = open(&path);
    assert!(!store.load_report().clean_shutdown);
    assert_eq!(store.load_report().tx_resume_at, 30);
    let pib = store.pib();
    assert_eq!(
        pib.allocate_frame_counter(KeyRef(1)),
        Err(CounterError::NotReserved)
    );
    assert_eq!(store.allocate_frame_counter(KeyRef(1)).unwrap(), 30);
    // maintain reserves ahead once half a block or less is left.
    for _ in 0..4 {
        pib.allocate_frame_counter(KeyRef(1)).unwrap();
    }
    assert_eq!(
        pib.outgoing_frame_counter(),
        OutgoingCounterState {
            next: 35,
            reserved_until: 40
        }
    );
    assert!(pib.needs_maintenance());
    let m = store.maintain(T0).unwrap();
    assert_eq!(m.reserved_until, Some(50));
    assert!(!pib.needs_maintenance());
    // A clean close keeps the reservation too: counters never go back.
    store.close().unwrap();
    let mut store = open(&path);
    assert_eq!(store.allocate_frame_counter(KeyRef(1)).unwrap(), 50);
}

#[test]
fn counter_exhaustion_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let store = open(&path);
    set_meta(
        &store,
        META_TX_RESERVED_UNTIL,
        &codec::encode_u64(0xffff_fff8),
    );
    drop(store);
    let mut store = open(&path);
    let k = link_key(
        1,
        KeyIdentifier::Index(1),
        KeyScope::Group,
        KeyDirection::Both,
    );
    store
        .install_keys(&install(KmpId::Pana, PEER, vec![k]), T0)
        .unwrap();
    let got: Vec<u32> = (0..7)
        .map(|_| store.allocate_frame_counter(KeyRef(1)).unwrap())
        .collect();
    assert_eq!(got, (0xffff_fff8..=0xffff_fffe).collect::<Vec<_>>());
    assert!(matches!(
        store.allocate_frame_counter(KeyRef(1)),
        Err(PibError::Counter(CounterError::Exhausted))
    ));
    assert_eq!(
        store.pib().allocate_frame_counter(KeyRef(1)),
        Err(CounterError::Exhausted)
    );
    assert!(matches!(
        store.reserve_frame_counters(),
        Err(PibError::Counter(CounterError::Exhausted))
    ));
    let m = store.maintain(T0).unwrap();
    assert!(m.counter_exhausted);
    assert_eq!(m.reserved_until, None);
    drop(store);
    let mut store = open(&path);
    assert_eq!(store.load_report().tx_resume_at, FRAME_COUNTER_LIMIT);
    assert!(matches!(
        store.allocate_frame_counter(KeyRef(1)),
        Err(PibError::Counter(CounterError::Exhausted))
    ));
}

/// Writes a meta value directly (test back door for corrupt and edge-case stores).
fn set_meta(store: &PibStore, key: &str, value: &[u8]) {
    let txn = store.db.begin_write().unwrap();
    txn.open_table(META).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

fn populated(path: &Path) -> PibStore {
    let mut store = open(path);
    store
        .set_own_identity(OwnIdentity {
            ext_address: ME,
            short_address: ShortAddress(7),
            pan_id: PanId(0xface),
        })
        .unwrap();
    store
        .set_device(DeviceDescriptor {
            pan_id: PanId(0xface),
            short_address: ShortAddress(0x22),
            ext_address: OTHER,
            exempt: true,
        })
        .unwrap();
    store
        .set_security_level(SecurityLevelDescriptor {
            frame_type: FrameType::MacCommand,
            command_id: Some(0x1d),
            security_minimum: SecurityLevel::Mic64,
            device_override: false,
            allowed: SecurityLevelSet::ANY.with(SecurityLevel::Mic64),
        })
        .unwrap();
    let mut ki = install(
        KmpId::VendorSpecific(kmp_api::Oui([0, 0x50, 0xc2])),
        PEER,
        vec![
            link_key(
                1,
                KeyIdentifier::Implicit,
                KeyScope::Pairwise(PEER),
                KeyDirection::Both,
            ),
            link_key(
                2,
                KeyIdentifier::SourceIndex(KeySource::Four([1, 2, 3, 4]), 9),
                KeyScope::Group,
                KeyDirection::Receive,
            ),
        ],
    );
    ki.link_keys[1].lifetime = Some(Duration::from_secs(3600));
    ki.upper_layer_sas = vec![sa("root", None), sa("leaf", Some("root"))];
    store.install_keys(&ki, T0).unwrap();
    store.allocate_frame_counter(KeyRef(1)).unwrap();
    let pib = store.pib();
    for c in [3, 4, 9] {
        pib.check_and_update_frame_counter(PEER, KeyRef(1), c)
            .unwrap();
    }
    pib.check_and_update_frame_counter(OTHER, KeyRef(2), 100)
        .unwrap();
    store
}

fn snapshot(pib: &Pib) -> String {
    let keys: Vec<String> = pib
        .keys()
        .iter()
        .map(|k| {
            format!(
                "{:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                k.key_ref,
                k.owner,
                k.installed_for,
                k.lookup,
                k.scope,
                k.direction,
                k.usage,
                k.min_security_level,
                k.installed_at,
                k.expires_at,
                k.key.expose()
            )
        })
        .collect();
    let mut sas = pib.upper_layer_sas(KmpId::VendorSpecific(kmp_api::Oui([0, 0x50, 0xc2])), PEER);
    sas.sort_by(|a, b| a.sa.sa_id.cmp(&b.sa.sa_id));
    format!(
        "{:?}\n{keys:#?}\n{:?}\n{:?}\n{sas:?}\n{:?} {:?} {:?}",
        pib.own_identity(),
        pib.devices(),
        pib.security_level_descriptors(),
        pib.next_acceptable_frame_counter(PEER, KeyRef(1)),
        pib.next_acceptable_frame_counter(OTHER, KeyRef(2)),
        pib.next_acceptable_frame_counter(PEER, KeyRef(2)),
    )
}

#[test]
fn clean_round_trip_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let store = populated(&path);
    let before = snapshot(&store.pib());
    let tx_before = store.pib().outgoing_frame_counter();
    store.close().unwrap();
    let store = open(&path);
    let r = store.load_report().clone();
    assert!(r.clean_shutdown);
    assert_eq!(
        (
            r.keys,
            r.devices,
            r.security_levels,
            r.upper_layer_sas,
            r.rx_counters
        ),
        (2, 2, 1, 2, 2)
    );
    assert_eq!((r.rx_counters_skipped, r.orphans_dropped), (0, 0));
    let after = snapshot(&store.pib());
    assert_eq!(before, after);
    assert!(after.contains("Some(10) Some(101) Some(0)"), "{after}");
    // The outgoing counter resumes at the reservation, never below what was handed out.
    assert_eq!(r.tx_resume_at, tx_before.reserved_until);
    // The key handle counter survives too.
    let mut store = store;
    let k = link_key(
        5,
        KeyIdentifier::Index(1),
        KeyScope::Group,
        KeyDirection::Both,
    );
    let rec = store
        .install_keys(&install(KmpId::Pana, PEER, vec![k]), T0)
        .unwrap();
    assert_eq!(rec.key_refs, vec![KeyRef(3)]);
}

#[test]
fn unclean_restart_skips_incoming_counters_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let store = populated(&path);
    let pib = store.pib();
    let mut store = store;
    // Checkpointed: PEER/1 at 10 after 3 frames, OTHER/2 at 101 after 1 frame.
    assert_eq!(store.checkpoint().unwrap(), 2);
    // Accepted after the checkpoint, lost by the crash.
    pib.check_and_update_frame_counter(PEER, KeyRef(1), 10)
        .unwrap();
    pib.check_and_update_frame_counter(PEER, KeyRef(1), 11)
        .unwrap();
    pib.check_and_update_frame_counter(OTHER, KeyRef(2), 101)
        .unwrap();
    drop(store);
    let store = open(&path);
    let r = store.load_report();
    assert!(!r.clean_shutdown);
    assert_eq!(r.rx_counters_skipped, 2);
    let pib = store.pib();
    // 10 + 2 × 3 and 101 + 2 × 1: the replays of 10, 11 and 101 are refused.
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(1)), Some(16));
    assert_eq!(
        pib.next_acceptable_frame_counter(OTHER, KeyRef(2)),
        Some(103)
    );
    assert!(
        pib.check_and_update_frame_counter(PEER, KeyRef(1), 11)
            .is_err()
    );
    assert!(
        pib.check_and_update_frame_counter(OTHER, KeyRef(2), 101)
            .is_err()
    );
    // The skip was persisted: a second crash right away resumes at the same values.
    drop(store);
    let store = open(&path);
    assert_eq!(
        store.pib().next_acceptable_frame_counter(PEER, KeyRef(1)),
        Some(16 + 6)
    );
    drop(store);
    // With the skip disabled the checkpointed values are used as they are.
    let store = PibStore::open(
        &path,
        PibConfig {
            max_rx_skip_after_crash: 0,
            ..small_config()
        },
        T0,
    )
    .unwrap();
    assert_eq!(
        store.pib().next_acceptable_frame_counter(PEER, KeyRef(1)),
        Some(22)
    );
    assert_eq!(store.load_report().rx_counters_skipped, 0);
}

#[test]
fn maintenance_checkpoints_and_expires() {
    let mut store = PibStore::in_memory(
        PibConfig {
            checkpoint_after_frames: 4,
            ..small_config()
        },
        T0,
    )
    .unwrap();
    let pib = store.pib();
    let mut k = link_key(
        1,
        KeyIdentifier::Implicit,
        KeyScope::Pairwise(PEER),
        KeyDirection::Receive,
    );
    k.lifetime = Some(Duration::from_secs(30));
    let mut ki = install(KmpId::Hip, PEER, vec![k]);
    let mut short_sa = sa("s", None);
    short_sa.lifetime = Some(Duration::from_secs(20));
    ki.upper_layer_sas.push(short_sa);
    store.install_keys(&ki, T0).unwrap();
    assert_eq!(store.poll_timeout(), Some(T0 + Duration::from_secs(1)));
    pib.check_and_update_frame_counter(PEER, KeyRef(1), 0)
        .unwrap();
    assert!(pib.needs_maintenance());
    let m = store.maintain(T0).unwrap();
    assert_eq!(m.checkpointed, 1);
    // The first maintenance reserves a block so the data path never starts empty.
    assert_eq!(m.reserved_until, Some(10));
    assert_eq!(store.maintain(T0).unwrap().reserved_until, None);
    for c in 1..4 {
        pib.check_and_update_frame_counter(PEER, KeyRef(1), c)
            .unwrap();
    }
    assert!(!pib.needs_maintenance());
    pib.check_and_update_frame_counter(PEER, KeyRef(1), 4)
        .unwrap();
    assert!(pib.needs_maintenance(), "4 frames since the checkpoint");
    // Periodic checkpoint once the interval has passed.
    let t1 = T0 + Duration::from_secs(1);
    assert_eq!(store.maintain(t1).unwrap().checkpointed, 1);
    assert_eq!(store.maintain(t1).unwrap().checkpointed, 0);
    let t20 = T0 + Duration::from_secs(20);
    assert_eq!(store.poll_timeout(), Some(t1 + Duration::from_secs(1)));
    let m = store.maintain(t20).unwrap();
    assert_eq!(m.expired_upper_layer_sas, 1);
    assert!(m.expired_keys.is_empty());
    assert_eq!(store.poll_timeout(), Some(T0 + Duration::from_secs(21)));
    let m = store.maintain(T0 + Duration::from_secs(30)).unwrap();
    assert_eq!(m.expired_keys, vec![KeyRef(1)]);
    assert!(pib.keys().is_empty());
    assert_eq!(pib.next_acceptable_frame_counter(PEER, KeyRef(1)), None);
}

#[test]
fn second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let _store = open(&path);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::Locked)
    ));
}

#[test]
fn corrupt_records_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let store = populated(&path);
    let txn = store.db.begin_write().unwrap();
    txn.open_table(KEYS)
        .unwrap()
        .insert(1, &[1u8, 2, 3][..])
        .unwrap();
    txn.commit().unwrap();
    drop(store);
    match PibStore::open(&path, small_config(), T0) {
        Err(PibError::Corrupt { table: "keys", .. }) => {}
        other => panic!("expected a corrupt key table, got {other:?}"),
    }

    let path = dir.path().join("format.redb");
    let store = open(&path);
    set_meta(&store, META_FORMAT, &codec::encode_u64(2));
    drop(store);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::UnsupportedFormat {
            found: 2,
            supported: 1
        })
    ));

    let path = dir.path().join("handles.redb");
    let store = populated(&path);
    set_meta(&store, META_NEXT_KEY_REF, &codec::encode_u64(2));
    drop(store);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::Corrupt { table: "keys", .. })
    ));

    let path = dir.path().join("missing.redb");
    let store = populated(&path);
    let txn = store.db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .remove(META_TX_RESERVED_UNTIL)
        .unwrap();
    txn.commit().unwrap();
    drop(store);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::Missing(_))
    ));

    let path = dir.path().join("noformat.redb");
    let store = populated(&path);
    let txn = store.db.begin_write().unwrap();
    txn.open_table(META).unwrap().remove(META_FORMAT).unwrap();
    txn.commit().unwrap();
    drop(store);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::Missing("format version"))
    ));

    let path = dir.path().join("reserved.redb");
    let store = open(&path);
    set_meta(&store, META_TX_RESERVED_UNTIL, &codec::encode_u64(1 << 40));
    drop(store);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::Corrupt { table: "meta", .. })
    ));

    let path = dir.path().join("short-meta.redb");
    let store = open(&path);
    set_meta(&store, META_NEXT_KEY_REF, &[1, 2, 3]);
    drop(store);
    assert!(matches!(
        PibStore::open(&path, small_config(), T0),
        Err(PibError::Corrupt { table: "meta", .. })
    ));
}

#[test]
fn orphan_counter_records_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pib.redb");
    let store = populated(&path);
    let txn = store.db.begin_write().unwrap();
    txn.open_table(RX_COUNTERS)
        .unwrap()
        .insert((0xdead, 77), codec::encode_rx(5, 1).as_slice())
        .unwrap();
    txn.commit().unwrap();
    store.close().unwrap();
    let store = open(&path);
    assert_eq!(store.load_report().orphans_dropped, 1);
    drop(store);
    let store = open(&path);
    assert_eq!(store.load_report().orphans_dropped, 0);
}

#[test]
fn garbage_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Not a redb file at all.
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    assert!(PibStore::open(&path, small_config(), T0).is_err());
    let path = dir.path().join("tiny.redb");
    std::fs::write(&path, b"redb").unwrap();
    assert!(PibStore::open(&path, small_config(), T0).is_err());
    // A directory where the file should be.
    assert!(matches!(
        PibStore::open(dir.path(), small_config(), T0),
        Err(PibError::Io(_))
    ));

    // A real store with bytes flipped all over it: open fails with a typed error or, if the
    // flips hit unused space, succeeds; it never panics.
    let path = dir.path().join("flipped.redb");
    populated(&path).close().unwrap();
    let clean = std::fs::read(&path).unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut failures = 0;
    for round in 0..40 {
        let mut bytes = clean.clone();
        for _ in 0..1 + round % 4 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = usize::try_from(rng % bytes.len() as u64).unwrap();
            bytes[at] ^= 1 << (rng >> 60 & 7);
        }
        std::fs::write(&path, &bytes).unwrap();
        match PibStore::open(&path, small_config(), T0) {
            Ok(s) => drop(s),
            Err(PibError::Locked) => panic!("unexpected lock error"),
            Err(_) => failures += 1,
        }
    }
    assert!(failures > 0, "no flip was detected");
}
