//! Crash safety of the PIB store under SIGKILL (acceptance test).
//!
//! The test re-executes its own binary as a child that protects frames in a loop: it takes an
//! outgoing frame counter from the PIB, computes the AES-CCM MIC over a frame with the 802.15.4
//! nonce (source EUI-64 ‖ counter ‖ level), and only then writes `USE <key> <counter> <mic>` to
//! its log (one `write` per line, no buffering). Every few frames it installs a new key with
//! `install_keys` and writes `ACK <key> <peer>` only after that returned. The parent kills the
//! child with SIGKILL after a random delay (5–60 ms after the spawn, or after the child reported
//! the store open), again and again on the same store, and checks:
//!
//! - no (key, frame counter) pair, and indeed no frame counter, is ever used twice across all
//!   runs;
//! - every acknowledged key is in the store after the restart, with the right key material.
//!
//! Run it alone with
//! `cargo test -p mpx --test pib_crash -- --nocapture`; `PIB_CRASH_SEED` replays a seed and
//! `PIB_CRASH_KILLS` changes the number of kills (default 100).

// Helpers of an integration test: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use kmp_api::crypto::ccm::AesCcm;
use kmp_api::session::{KeyDirection, KeyInstall, KeyScope, LinkKey, SecretBytes};
use kmp_api::{ExtendedAddress, Instant, KeyIdentifier, KmpId, PanId, SecurityLevel, ShortAddress};
use mpx::pib::{KeyRef, OwnIdentity, PibConfig, PibStore};

const TEST_NAME: &str = "pib_crash_safety_under_sigkill";
const ENV_STORE: &str = "MPX_PIB_CRASH_STORE";
const ENV_LOG: &str = "MPX_PIB_CRASH_LOG";
const ENV_RUN: &str = "MPX_PIB_CRASH_RUN";
const ENV_BLOCK: &str = "MPX_PIB_CRASH_BLOCK";

const ME: ExtendedAddress = ExtendedAddress::from_u64(0x0200_0000_0000_00aa);
const LEVEL: SecurityLevel = SecurityLevel::EncMic32;
/// A new key every this many frames.
const INSTALL_EVERY: u64 = 25;
/// The child stops by itself after this long if nobody kills it.
const CHILD_LIFETIME: StdDuration = StdDuration::from_secs(20);

/// splitmix64: the deterministic generator for delays, block sizes and key material.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key material of install `n` of run `run`, so the parent can check what it finds.
fn key_bytes(run: u64, n: u64) -> [u8; 16] {
    let mut s = (run << 32) | n;
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&splitmix(&mut s).to_be_bytes());
    k[8..].copy_from_slice(&splitmix(&mut s).to_be_bytes());
    k
}

fn peer_of(run: u64, n: u64) -> ExtendedAddress {
    ExtendedAddress::from_u64(0x0300_0000_0000_0000 | (run << 24) | n)
}

fn nonce(src: ExtendedAddress, counter: u32, level: SecurityLevel) -> [u8; 13] {
    let mut n = [0u8; 13];
    n[..8].copy_from_slice(&src.0);
    n[8..12].copy_from_slice(&counter.to_be_bytes());
    n[12] = level.bits();
    n
}

#[test]
fn pib_crash_safety_under_sigkill() {
    if let Ok(store) = std::env::var(ENV_STORE) {
        child(Path::new(&store));
        return;
    }
    parent();
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The child: protect frames until killed.
fn child(store_path: &Path) {
    let run = env_u64(ENV_RUN);
    let block = u32::try_from(env_u64(ENV_BLOCK)).unwrap();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::var(ENV_LOG).unwrap())
        .unwrap();
    let mut say = |line: String| log.write_all(line.as_bytes()).unwrap();
    let started = StdInstant::now();
    // Virtual time: one second per run, plus the frame number in microseconds.
    let mut now = Instant::from_micros(run * 1_000_000);
    let config = PibConfig {
        reservation_block: block,
        ..PibConfig::default()
    };
    let mut store = PibStore::open(store_path, config, now).unwrap();
    say(format!("READY {}\n", store.load_report().tx_resume_at));
    let pib = store.pib();
    if pib.own_identity().is_none() {
        store
            .set_own_identity(OwnIdentity {
                ext_address: ME,
                short_address: ShortAddress(1),
                pan_id: PanId(0x1234),
            })
            .unwrap();
    }
    let mut keys: Vec<KeyRef> = pib.keys().iter().map(|k| k.key_ref).collect();
    let mut installs = 0u64;
    let mut frame = 0u64;
    let header = [0x69u8, 0xdc, 0x01, 0x34, 0x12, 0xff, 0xff];
    while started.elapsed() < CHILD_LIFETIME {
        if frame.is_multiple_of(INSTALL_EVERY) {
            let peer = peer_of(run, installs);
            let install = KeyInstall {
                owner: KmpId::Ikev2,
                peer,
                link_keys: vec![LinkKey {
                    key: SecretBytes::from_slice(&key_bytes(run, installs)),
                    lookup: KeyIdentifier::Implicit,
                    scope: KeyScope::Pairwise(peer),
                    direction: KeyDirection::Both,
                    min_security_level: LEVEL,
                    lifetime: None,
                }],
                upper_layer_sas: Vec::new(),
            };
            let receipt = store.install_keys(&install, now).unwrap();
            let key_ref = receipt.key_refs[0];
            say(format!("ACK {} {} {}\n", key_ref.0, run, installs));
            keys.push(key_ref);
            installs += 1;
        }
        let key_ref = keys[usize::try_from(frame).unwrap() % keys.len()];
        let counter = store.allocate_frame_counter(key_ref).unwrap();
        let key = pib.key(key_ref).unwrap().key;
        let mut payload = frame.to_be_bytes();
        let mut mic = [0u8; 4];
        AesCcm::new(key.expose())
            .unwrap()
            .seal_in_place(&nonce(ME, counter, LEVEL), &header, &mut payload, &mut mic)
            .unwrap();
        say(format!(
            "USE {} {} {}\n",
            key_ref.0,
            counter,
            hex::encode(mic)
        ));
        frame += 1;
        now = Instant::from_micros(run * 1_000_000 + frame);
        if pib.needs_maintenance() {
            store.maintain(now).unwrap();
        }
    }
    store.close().unwrap();
}

#[derive(Default)]
struct Totals {
    pairs: HashSet<(u32, u32)>,
    counters: HashSet<u32>,
    acked: HashMap<u32, (u64, u64)>,
    ready_runs: usize,
    runs_with_frames: usize,
    max_counter: Option<u32>,
}

impl Totals {
    /// Reads one child's log; panics on any reuse.
    fn absorb(&mut self, log: &Path, seed: u64, run: u64) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let mut frames = 0;
        // A line cut by the kill has no newline: ignore it.
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        for line in complete.lines() {
            let mut f = line.split(' ');
            match f.next() {
                Some("READY") => self.ready_runs += 1,
                Some("ACK") => {
                    let key: u32 = f.next().unwrap().parse().unwrap();
                    let r: u64 = f.next().unwrap().parse().unwrap();
                    let n: u64 = f.next().unwrap().parse().unwrap();
                    assert!(
                        self.acked.insert(key, (r, n)).is_none(),
                        "seed {seed} run {run}: key handle {key} acknowledged twice"
                    );
                }
                Some("USE") => {
                    let key: u32 = f.next().unwrap().parse().unwrap();
                    let counter: u32 = f.next().unwrap().parse().unwrap();
                    assert!(
                        self.pairs.insert((key, counter)),
                        "seed {seed} run {run}: (key {key}, frame counter {counter}) used twice"
                    );
                    assert!(
                        self.counters.insert(counter),
                        "seed {seed} run {run}: frame counter {counter} used twice"
                    );
                    self.max_counter = self.max_counter.max(Some(counter));
                    frames += 1;
                }
                other => panic!("seed {seed} run {run}: unexpected log line {other:?}"),
            }
        }
        if frames > 0 {
            self.runs_with_frames += 1;
        }
    }

    /// Opens the store as the next run would and checks the acknowledged keys.
    fn verify_store(&self, path: &Path, seed: u64, run: u64) {
        let store = PibStore::open(path, PibConfig::default(), Instant::ZERO)
            .unwrap_or_else(|e| panic!("seed {seed} after run {run}: store does not open: {e}"));
        let pib = store.pib();
        for (&key, &(r, n)) in &self.acked {
            let d = pib.key(KeyRef(key)).unwrap_or_else(|| {
                panic!("seed {seed} after run {run}: acknowledged key {key} lost")
            });
            assert_eq!(
                d.key.expose(),
                &key_bytes(r, n),
                "seed {seed}: key {key} material"
            );
            assert_eq!(
                d.scope,
                KeyScope::Pairwise(peer_of(r, n)),
                "seed {seed}: key {key} peer"
            );
        }
        if let Some(max) = self.max_counter {
            assert!(
                store.load_report().tx_resume_at > u64::from(max),
                "seed {seed} after run {run}: counter resumes at {} but {max} was used",
                store.load_report().tx_resume_at
            );
        }
        // Dropped without close: the next child sees an unclean shutdown, as after the kill.
        drop(store);
    }
}

/// Waits (at most 10 s) until the child has opened the store and said so.
fn wait_for_ready(log: &Path, child: &mut std::process::Child) {
    let since = StdInstant::now();
    while since.elapsed() < StdDuration::from_secs(10) {
        if std::fs::read_to_string(log).is_ok_and(|t| t.starts_with("READY")) {
            return;
        }
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(1));
    }
}

fn parent() {
    let started = StdInstant::now();
    let seed = std::env::var("PIB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| {
                    u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1)
                })
        });
    let kills = std::env::var("PIB_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100u64);
    println!("pib crash test: seed {seed} ({kills} kills; replay with PIB_CRASH_SEED={seed})");
    let mut rng = seed;
    let dir = tempfile::tempdir().unwrap();
    let store: PathBuf = dir.path().join("pib.redb");
    let exe = std::env::current_exe().unwrap();
    let mut totals = Totals::default();
    let blocks = [1u32, 3, 16, 100, 4096];
    for run in 0..kills {
        let block = blocks[usize::try_from(splitmix(&mut rng) % blocks.len() as u64).unwrap()];
        let delay = StdDuration::from_millis(5 + splitmix(&mut rng) % 56);
        // Half the kills count the delay from the spawn (they may hit the open and its
        // recovery); the other half from the child's READY, so that a loaded machine still
        // gets kills inside the frame loop.
        let after_ready = splitmix(&mut rng) % 2 == 1;
        let log = dir.path().join(format!("run-{run}.log"));
        let errors = dir.path().join(format!("run-{run}.err"));
        let mut child = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(ENV_STORE, &store)
            .env(ENV_LOG, &log)
            .env(ENV_RUN, run.to_string())
            .env(ENV_BLOCK, block.to_string())
            .stdout(Stdio::null())
            .stderr(File::create(&errors).unwrap())
            .spawn()
            .unwrap();
        if after_ready {
            wait_for_ready(&log, &mut child);
        }
        std::thread::sleep(delay);
        // On unix this is SIGKILL: no destructor, no close, no flush.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "seed {seed} run {run}: child finished before the kill: {}",
            std::fs::read_to_string(&errors).unwrap_or_default()
        );
        let err = std::fs::read_to_string(&errors).unwrap_or_default();
        assert!(
            !err.contains("panicked"),
            "seed {seed} run {run}: child panicked:\n{err}"
        );
        totals.absorb(&log, seed, run);
        totals.verify_store(&store, seed, run);
    }
    let elapsed = started.elapsed();
    println!(
        "pib crash test: {kills} kills, {} runs reached the loop, {} with frames; \
         {} (key, counter) \
         pairs unique, {} keys acknowledged and present; {:.1} s",
        totals.ready_runs,
        totals.runs_with_frames,
        totals.pairs.len(),
        totals.acked.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        totals.runs_with_frames * 4 >= usize::try_from(kills).unwrap(),
        "too few runs reached the frame loop"
    );
    assert!(
        totals.pairs.len() >= 1000,
        "too few frames to mean anything"
    );
    assert!(!totals.acked.is_empty());
}
