//! MKA participants on a simulated broadcast medium in virtual time: key-server election, SAK
//! agreement, rekeying when members join and leave, a member with another CAK that never
//! becomes a peer, replays; and the tshark stand-in for a MACsec peer (spec interop-peers §3.1):
//! every MKPDU of a two-participant exchange goes into an Ethernet pcap that tshark's `mka`
//! dissector must decode without errors, and whose ICVs and wrapped SAKs Python's
//! `cryptography` recomputes from the CAK alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use kmp_api::{Duration, ExtendedAddress, Instant, RngHandle};
use kmp_mka::mka::wire::{DistributedSak, PAE_ETHERTYPE, PAE_GROUP_ADDRESS};
use kmp_mka::mka::{
    CakKeys, KeyLength, MkaAction, MkaConfig, MkaError, MkaEvent, Mkpdu, Participant, Sci,
};

const CAK: &str = "135bd758b0ee5c11c55ff6ab19fdb199";
const CKN: &str = "96437a93ccf10d9dfe347846cce52c7d";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn eui(last: u8) -> ExtendedAddress {
    ExtendedAddress([0x00, 0x12, 0x4b, 0x00, 0x1a, 0x2b, 0x3c, last])
}

struct Node {
    p: Participant,
    up: bool,
    events: Vec<MkaEvent>,
    errors: Vec<MkaError>,
}

/// A broadcast medium: every MKPDU goes to every other running node at once.
struct Net {
    nodes: Vec<Node>,
    now: Instant,
    /// (sender index, time, octets) of every MKPDU sent.
    log: Vec<(usize, Instant, Vec<u8>)>,
}

impl Net {
    fn new() -> Net {
        Net {
            nodes: Vec::new(),
            now: Instant::from_micros(1_000_000),
            log: Vec::new(),
        }
    }

    fn add(&mut self, cfg: MkaConfig, keys: CakKeys, seed: u64) -> usize {
        let mut p = Participant::new(cfg, keys, RngHandle::seeded(seed)).unwrap();
        p.start(self.now).unwrap();
        self.nodes.push(Node {
            p,
            up: true,
            events: Vec::new(),
            errors: Vec::new(),
        });
        self.pump();
        self.nodes.len() - 1
    }

    fn add_psk(&mut self, last: u8, prio: u8, cak: &str, seed: u64) -> usize {
        let mut cfg = MkaConfig::new(Sci::from_eui64(eui(last)));
        cfg.key_server_priority = prio;
        self.add(cfg, CakKeys::from_psk(&h(cak), &h(CKN)).unwrap(), seed)
    }

    fn pump(&mut self) {
        for _round in 0..1000 {
            let mut queue = Vec::new();
            for (i, n) in self.nodes.iter_mut().enumerate() {
                while let Some(a) = n.p.poll_action() {
                    match a {
                        MkaAction::Transmit(b) if n.up => queue.push((i, b)),
                        MkaAction::Transmit(_) => {}
                        MkaAction::Event(e) => n.events.push(e),
                    }
                }
            }
            if queue.is_empty() {
                return;
            }
            for (from, bytes) in queue {
                self.log.push((from, self.now, bytes.clone()));
                for (j, n) in self.nodes.iter_mut().enumerate() {
                    if j != from
                        && n.up
                        && let Err(e) = n.p.handle_mkpdu(self.now, &bytes)
                    {
                        n.errors.push(e);
                    }
                }
            }
        }
        panic!("MKPDU storm: the participants never go quiet");
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now.checked_add(d).unwrap();
        loop {
            self.pump();
            let next = self
                .nodes
                .iter()
                .filter(|n| n.up)
                .filter_map(|n| n.p.poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    assert!(t >= self.now, "deadline in the past");
                    self.now = t;
                    for n in self.nodes.iter_mut().filter(|n| n.up) {
                        if n.p.poll_timeout().is_some_and(|d| d <= t) {
                            n.p.handle_timeout(t).unwrap();
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn saks(&self, i: usize) -> Vec<(u32, u8, Vec<u8>)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                MkaEvent::SakInstalled { kn, an, sak, .. } => {
                    Some((*kn, an.get(), sak.expose().to_vec()))
                }
                _ => None,
            })
            .collect()
    }

    fn retired(&self, i: usize) -> Vec<u32> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                MkaEvent::SakRetired { kn, .. } => Some(*kn),
                _ => None,
            })
            .collect()
    }

    fn transmitting(&self, i: usize) -> Vec<u32> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                MkaEvent::SakTransmit { kn, .. } => Some(*kn),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn two_participants_elect_by_sci_and_agree_on_a_sak() {
    let mut net = Net::new();
    let a = net.add_psk(0x01, 16, CAK, 1);
    let b = net.add_psk(0x02, 16, CAK, 2);
    net.run_for(Duration::from_secs(10));
    for (x, y) in [(a, b), (b, a)] {
        let live = net.nodes[x].p.live_peers();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].0, net.nodes[y].p.mi());
        assert!(net.nodes[x].errors.is_empty(), "{:?}", net.nodes[x].errors);
    }
    // Equal priorities: the lower SCI wins.
    assert!(net.nodes[a].p.is_key_server());
    assert!(!net.nodes[b].p.is_key_server());
    let sa = net.saks(a);
    assert_eq!(sa.len(), 1);
    assert_eq!(sa, net.saks(b));
    assert_eq!((sa[0].0, sa[0].1), (1, 0));
    assert_eq!(sa[0].2.len(), 16);
    assert_eq!(net.transmitting(a), vec![1]);
    assert_eq!(net.transmitting(b), vec![1]);
    let ks_mi = net.nodes[a].p.mi();
    for n in [a, b] {
        let (mi, kn, an, tx) = net.nodes[n].p.latest_key().unwrap();
        assert_eq!((mi, kn, an.get(), tx), (ks_mi, 1, 0, true));
    }
    // Hellos keep flowing every 2 s without new keys.
    let before = net.log.len();
    net.run_for(Duration::from_secs(10));
    let hellos = net.log.len() - before;
    assert!((9..=12).contains(&hellos), "{hellos} MKPDUs in 10 s");
    assert_eq!(net.saks(a).len(), 1);
    assert!(net.retired(a).is_empty());
}

#[test]
fn priority_beats_sci() {
    let mut net = Net::new();
    let a = net.add_psk(0x01, 16, CAK, 1);
    let b = net.add_psk(0x02, 1, CAK, 2);
    let c = net.add_psk(0x03, 0xFF, CAK, 3);
    net.run_for(Duration::from_secs(10));
    assert!(net.nodes[b].p.is_key_server());
    assert!(!net.nodes[a].p.is_key_server());
    assert!(!net.nodes[c].p.is_key_server());
    let sb = net.saks(b);
    assert_eq!(sb.last(), net.saks(a).last());
    assert_eq!(sb.last(), net.saks(c).last());
    let ks = net.nodes[b].p.mi();
    for n in [a, b, c] {
        let (mi, _, _, tx) = net.nodes[n].p.latest_key().unwrap();
        assert_eq!(mi, ks);
        assert!(tx);
    }
}

#[test]
fn another_cak_is_never_a_peer() {
    let mut net = Net::new();
    let a = net.add_psk(0x01, 16, CAK, 1);
    let b = net.add_psk(0x02, 16, CAK, 2);
    // Same CKN, another CAK: its ICVs fail at a and b, and theirs at it.
    let c = net.add_psk(0x00, 0, "00112233445566778899aabbccddeeff", 3);
    net.run_for(Duration::from_secs(20));
    for n in [a, b] {
        assert_eq!(net.nodes[n].p.live_peers().len(), 1);
        assert!(net.nodes[n].p.potential_peers().is_empty());
        assert!(!net.nodes[n].errors.is_empty());
        assert!(
            net.nodes[n]
                .errors
                .iter()
                .all(|e| *e == MkaError::IcvMismatch)
        );
    }
    assert!(net.nodes[c].p.live_peers().is_empty());
    assert!(net.nodes[c].p.potential_peers().is_empty());
    assert!(net.saks(c).is_empty());
    // a still wins among {a, b} although c has priority 0 and the lowest SCI.
    assert!(net.nodes[a].p.is_key_server());
    assert_eq!(net.saks(a), net.saks(b));
    assert_eq!(net.saks(a).len(), 1);

    // Another CKN altogether is not for us.
    let mut cfg = MkaConfig::new(Sci::from_eui64(eui(9)));
    cfg.key_server_priority = 0;
    let keys = CakKeys::from_psk(&h(CAK), b"other").unwrap();
    let mut d = Participant::new(cfg, keys, RngHandle::seeded(4)).unwrap();
    d.start(net.now).unwrap();
    let Some(MkaAction::Transmit(pdu)) = d.poll_action() else {
        panic!("no MKPDU")
    };
    assert_eq!(
        net.nodes[a].p.handle_mkpdu(net.now, &pdu),
        Err(MkaError::OtherCkn)
    );
}

#[test]
fn rekey_when_members_join_and_leave() {
    let mut net = Net::new();
    let a = net.add_psk(0x01, 16, CAK, 1);
    let b = net.add_psk(0x02, 16, CAK, 2);
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.saks(b).len(), 1);
    let c = net.add_psk(0x03, 16, CAK, 3);
    net.run_for(Duration::from_secs(5));
    // c's arrival changed the live set: a new SAK for all three, AN 1.
    let last = net.saks(a).last().cloned().unwrap();
    assert_eq!((last.0, last.1), (2, 1));
    for n in [b, c] {
        assert_eq!(net.saks(n).last(), Some(&last));
        assert_eq!(net.nodes[n].p.live_peers().len(), 2);
    }
    assert_eq!(net.transmitting(c), vec![2]);
    // The old key (KN 1) is retired 3 s after KN 2 went into transmission; c never had it.
    for (n, want) in [(a, vec![1]), (b, vec![1]), (c, vec![])] {
        assert_eq!(net.retired(n), want, "node {n}");
    }
    // c goes silent: after the Life time a rekeys for {a, b}.
    net.nodes[c].up = false;
    net.run_for(Duration::from_secs(8));
    let last = net.saks(a).last().cloned().unwrap();
    assert_eq!((last.0, last.1), (3, 2));
    assert_eq!(net.saks(b).last(), Some(&last));
    assert!(net.nodes[a].events.iter().any(|e| matches!(
        e,
        MkaEvent::PeerLost { sci, .. } if *sci == Sci::from_eui64(eui(3))
    )));
    // The key server itself leaves: b is alone and keeps its key; when c returns with a
    // fresh MI, the lowest SCI among {b, c} is b, which makes KN 1 of its own.
    net.nodes[a].up = false;
    net.run_for(Duration::from_secs(8));
    assert!(net.nodes[b].p.live_peers().is_empty());
    assert!(!net.nodes[b].p.is_key_server());
    let mut cfg = MkaConfig::new(Sci::from_eui64(eui(3)));
    cfg.hello_time = Duration::from_millis(500);
    let c2 = net.add(cfg, CakKeys::from_psk(&h(CAK), &h(CKN)).unwrap(), 33);
    net.run_for(Duration::from_secs(3));
    assert!(net.nodes[b].p.is_key_server());
    let (ks, kn, an, tx) = net.nodes[c2].p.latest_key().unwrap();
    assert_eq!((ks, kn, an.get(), tx), (net.nodes[b].p.mi(), 1, 3, true));
    assert_eq!(net.saks(b).last(), net.saks(c2).last());
}

#[test]
fn replays_and_own_mkpdus_are_refused() {
    let mut net = Net::new();
    let a = net.add_psk(0x01, 16, CAK, 1);
    let b = net.add_psk(0x02, 16, CAK, 2);
    net.run_for(Duration::from_secs(4));
    let (_, _, old) = net
        .log
        .iter()
        .find(|(from, _, _)| *from == b)
        .cloned()
        .unwrap();
    let now = net.now;
    assert!(matches!(
        net.nodes[a].p.handle_mkpdu(now, &old),
        Err(MkaError::StaleMn { .. })
    ));
    let (_, _, own) = net
        .log
        .iter()
        .find(|(from, _, _)| *from == a)
        .cloned()
        .unwrap();
    assert_eq!(net.nodes[a].p.handle_mkpdu(now, &own), Err(MkaError::OwnMi));
    let mut bad = old.clone();
    bad[20] ^= 1;
    assert_eq!(
        net.nodes[a].p.handle_mkpdu(now, &bad),
        Err(MkaError::IcvMismatch)
    );
    assert!(matches!(
        net.nodes[a].p.handle_mkpdu(now, &old[..old.len() - 1]),
        Err(MkaError::Wire(_))
    ));
}

#[test]
fn timers_follow_the_configuration() {
    let mut cfg = MkaConfig::new(Sci::from_eui64(eui(1)));
    cfg.hello_time = Duration::from_millis(700);
    let keys = CakKeys::from_psk(&h(CAK), &h(CKN)).unwrap();
    let mut p = Participant::new(cfg, keys, RngHandle::seeded(7)).unwrap();
    assert_eq!(p.poll_timeout(), None);
    let t0 = Instant::from_micros(5_000_000);
    p.start(t0).unwrap();
    assert!(matches!(p.poll_action(), Some(MkaAction::Transmit(_))));
    assert_eq!(p.poll_timeout(), Some(Instant::from_micros(5_700_000)));
    p.handle_timeout(Instant::from_micros(5_100_000)).unwrap();
    assert_eq!(p.poll_action(), None);
    p.handle_timeout(Instant::from_micros(5_700_000)).unwrap();
    let Some(MkaAction::Transmit(b)) = p.poll_action() else {
        panic!("no hello")
    };
    assert_eq!(Mkpdu::parse(&b).unwrap().basic.mn, 2);
    assert_eq!(p.poll_timeout(), Some(Instant::from_micros(6_400_000)));
}

#[test]
fn aes256_saks_are_distributed_with_their_cipher_suite() {
    let cak32 = "135bd758b0ee5c11c55ff6ab19fdb199135bd758b0ee5c11c55ff6ab19fdb199";
    let mut net = Net::new();
    for (last, seed) in [(1, 1), (2, 2)] {
        let mut cfg = MkaConfig::new(Sci::from_eui64(eui(last)));
        cfg.sak_length = KeyLength::Aes256;
        net.add(cfg, CakKeys::from_psk(&h(cak32), &h(CKN)).unwrap(), seed);
    }
    net.run_for(Duration::from_secs(6));
    let s = net.saks(0);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].2.len(), 32);
    assert_eq!(net.saks(1), s);
    let dsak = net
        .log
        .iter()
        .find_map(|(_, _, b)| Mkpdu::parse(b).unwrap().distributed_sak)
        .unwrap();
    let DistributedSak::Key(k) = dsak else {
        panic!("{dsak:?}")
    };
    assert_eq!(
        k.cipher_suite,
        Some(kmp_mka::mka::wire::CIPHER_SUITE_GCM_AES_256)
    );
}

// ---- tshark and Python stand-in for a MACsec peer ----

fn pcap(frames: &[(Instant, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (t, f) in frames {
        let us = t.as_micros();
        let len = u32::try_from(f.len()).unwrap();
        out.extend_from_slice(&u32::try_from(us / 1_000_000).unwrap().to_le_bytes());
        out.extend_from_slice(&u32::try_from(us % 1_000_000).unwrap().to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The Ethernet frame an MKPDU would be on a LAN: DA = PAE group address, SA = the System
/// Identifier of the sender's SCI (the EUI-48 derived from its EUI-64), EtherType 0x888E.
fn ethernet(mkpdu: &[u8]) -> Vec<u8> {
    let sci = Mkpdu::parse(mkpdu).unwrap().basic.sci;
    let mut f = PAE_GROUP_ADDRESS.to_vec();
    f.extend_from_slice(&sci.system_identifier());
    f.extend_from_slice(&PAE_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(mkpdu);
    f
}

/// Recomputes KEK and ICK from the CAK and CKN, every ICV over the Ethernet frame without
/// its last 16 octets, and unwraps every Distributed SAK; prints the frame count and the SAKs.
const ORACLE: &str = r#"
import struct, sys
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
def cmac(k, m):
    c = CMAC(algorithms.AES(k)); c.update(m); return c.finalize()
cak = bytes.fromhex(sys.argv[2]); ckn = bytes.fromhex(sys.argv[3])
ctx = (ckn[:16] + bytes(16))[:16]
ick = cmac(cak, b"\x01IEEE8021 ICK\x00" + ctx + struct.pack(">H", 128))
kek = cmac(cak, b"\x01IEEE8021 KEK\x00" + ctx + struct.pack(">H", 128))
data = open(sys.argv[1], "rb").read()
off, n, saks = 24, 0, []
while off < len(data):
    _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16]); off += 16
    f = data[off:off + incl]; off += incl
    if cmac(ick, f[:-16]) != f[-16:]:
        sys.exit("bad ICV in frame %d" % (n + 1))
    body = f[18:-16]
    pos = 4 + ((((body[2] & 15) << 8 | body[3]) + 3) & ~3)
    while pos < len(body):
        t, l = body[pos], (body[pos + 2] & 15) << 8 | body[pos + 3]
        if t == 4 and l == 28:
            saks.append(aes_key_unwrap(kek, body[pos + 8:pos + 32]).hex())
        pos += 4 + ((l + 3) & ~3)
    n += 1
print(n)
for s in saks:
    print(s)
"#;

fn python_has_cryptography() -> bool {
    Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success())
}

fn run_oracle(path: &std::path::Path) -> std::process::Output {
    Command::new("python3")
        .args(["-c", ORACLE, path.to_str().unwrap(), CAK, CKN])
        .output()
        .unwrap()
}

#[test]
fn tshark_decodes_and_python_recomputes_icvs() {
    let mut net = Net::new();
    net.add_psk(0x01, 16, CAK, 1);
    net.add_psk(0x02, 16, CAK, 2);
    net.run_for(Duration::from_secs(5));
    let frames: Vec<(Instant, Vec<u8>)> =
        net.log.iter().map(|(_, t, b)| (*t, ethernet(b))).collect();
    assert!(frames.len() >= 6);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mka.pcap");
    std::fs::write(&path, pcap(&frames)).unwrap();
    if let Ok(keep) = std::env::var("MKA_PCAP_OUT") {
        std::fs::copy(&path, keep).unwrap();
    }

    if python_has_cryptography() {
        let out = run_oracle(&path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), frames.len().to_string());
        let unwrapped: Vec<&str> = lines.collect();
        assert!(!unwrapped.is_empty(), "no Distributed SAK in the exchange");
        let sak = hex::encode(&net.saks(0)[0].2);
        assert!(unwrapped.iter().all(|s| *s == sak));
        // The oracle can fail: one flipped ICV bit is caught.
        let mut bad = frames.clone();
        let last = bad[3].1.len() - 1;
        bad[3].1[last] ^= 0x80;
        let bad_path = dir.path().join("bad.pcap");
        std::fs::write(&bad_path, pcap(&bad)).unwrap();
        let out = run_oracle(&bad_path);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("bad ICV in frame 4"));
    } else {
        eprintln!("python3 with `cryptography` not found: ICV oracle skipped");
    }

    let Ok(out) = Command::new("tshark")
        .args(["-r", path.to_str().unwrap(), "-V"])
        .output()
    else {
        eprintln!("tshark not installed: dissector check skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("Malformed"), "{text}");
    assert!(!text.contains("Expert Info"), "{text}");
    for needle in [
        "Version: 802.1X-2010 (3)",
        "Type: MKA (5)",
        "Basic Parameter set",
        "Live Peer List Parameter set",
        "Potential Peer List Parameter set",
        "MACsec SAK Use parameter set",
        "Distributed SAK parameter set",
        "Algorithm Agility: IEEE Std 802.1X-2010",
        "Integrity Check Value",
    ] {
        assert!(
            text.contains(needle),
            "tshark output lacks {needle:?}:\n{text}"
        );
    }
    // Field by field: every frame is MKA with our CKN and the ICV we sent.
    let out = Command::new("tshark")
        .args(["-r", path.to_str().unwrap(), "-T", "fields"])
        .args(["-e", "eapol.type", "-e", "mka.cak_name", "-e", "mka.icv"])
        .args(["-e", "mka.latest_key_tx", "-e", "_ws.expert"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), frames.len());
    for (row, (_, f)) in rows.iter().zip(&frames) {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols[0], "5");
        assert_eq!(cols[1].replace(':', ""), CKN);
        assert_eq!(cols[2].replace(':', ""), hex::encode(&f[f.len() - 16..]));
        assert_eq!(cols[4], "", "expert info in {row}");
    }
    assert!(rows.iter().any(|r| r.split('\t').nth(3) == Some("1")));
}

#[test]
fn unknown_parameter_sets_are_ignored() {
    let keys = CakKeys::from_psk(&h(CAK), &h(CKN)).unwrap();
    let now = Instant::from_micros(1_000_000);
    let mut x = Participant::new(
        MkaConfig::new(Sci::from_eui64(eui(1))),
        keys.clone(),
        RngHandle::seeded(1),
    )
    .unwrap();
    let mut y = Participant::new(
        MkaConfig::new(Sci::from_eui64(eui(2))),
        keys.clone(),
        RngHandle::seeded(2),
    )
    .unwrap();
    x.start(now).unwrap();
    let Some(MkaAction::Transmit(b)) = x.poll_action() else {
        panic!("no MKPDU")
    };
    let mut m = Mkpdu::parse(&b).unwrap();
    m.unknown.push(kmp_mka::mka::wire::UnknownSet {
        set_type: 0x30,
        octet2: 7,
        flags: 0xF,
        body: vec![1, 2, 3, 4, 5],
    });
    // A later MKA version with a set this one does not know.
    m.basic.version = 3;
    let signed = m
        .emit_signed(keys.ick().expose(), kmp_mka::mka::IcvCoverage::default())
        .unwrap();
    y.handle_mkpdu(now, &signed).unwrap();
    assert_eq!(y.potential_peers(), vec![(x.mi(), x.sci())]);
}

#[test]
fn distributed_saks_only_from_the_elected_key_server() {
    use kmp_api::crypto::keywrap::aes_key_wrap;
    use kmp_mka::mka::wire::{AssociationNumber, DistributedKey, WrappedSak};

    let keys = CakKeys::from_psk(&h(CAK), &h(CKN)).unwrap();
    let mut net = Net::new();
    let a = net.add_psk(0x01, 16, CAK, 1);
    let b = net.add_psk(0x02, 16, CAK, 2);
    net.run_for(Duration::from_secs(3));
    let ks = net.nodes[a].p.mi();
    let last_from = |net: &Net, who: usize| {
        net.log
            .iter()
            .rev()
            .find(|(f, _, _)| *f == who)
            .map(|(_, _, b)| Mkpdu::parse(b).unwrap())
            .unwrap()
    };
    let forge = |mut m: Mkpdu, bump: u32, kn: u32, sak: &[u8], corrupt: bool| {
        m.basic.mn += bump;
        m.basic.key_server = true;
        let mut w = aes_key_wrap(keys.kek().expose(), sak).unwrap();
        if corrupt {
            w[3] ^= 1;
        }
        m.distributed_sak = Some(DistributedSak::Key(DistributedKey {
            an: AssociationNumber::new(2).unwrap(),
            confidentiality_offset: 0,
            kn,
            cipher_suite: None,
            wrapped_sak: WrappedSak::from_slice(&w).unwrap(),
        }));
        m.emit_signed(keys.ick().expose(), kmp_mka::mka::IcvCoverage::default())
            .unwrap()
    };
    let now = net.now;

    // b claims to be key server: a (the elected one) ignores its SAK.
    let from_b = forge(last_from(&net, b), 100, 9, &[0x77; 16], false);
    net.nodes[a].p.handle_mkpdu(now, &from_b).unwrap();
    let (mi, kn, _, _) = net.nodes[a].p.latest_key().unwrap();
    assert_eq!((mi, kn), (ks, 1));

    // From the key server to b: an older KN and a corrupt wrap are refused, a newer KN is
    // installed for receive.
    let m = last_from(&net, a);
    let old = forge(m.clone(), 100, 0, &[0x77; 16], false);
    assert!(matches!(
        net.nodes[b].p.handle_mkpdu(now, &old),
        Err(MkaError::UnexpectedSak(_))
    ));
    let bad = forge(m.clone(), 101, 5, &[0x77; 16], true);
    assert!(matches!(
        net.nodes[b].p.handle_mkpdu(now, &bad),
        Err(MkaError::Crypto(_))
    ));
    let good = forge(m, 102, 5, &[0x77; 16], false);
    net.nodes[b].p.handle_mkpdu(now, &good).unwrap();
    let (mi, kn, an, tx) = net.nodes[b].p.latest_key().unwrap();
    assert_eq!((mi, kn, an.get(), tx), (ks, 5, 2, false));
    net.pump();
    assert_eq!(net.saks(b).last().unwrap(), &(5, 2, vec![0x77; 16]));
}
