//! An MKA participant (802.1X-2010 §9.4–§9.8, §9.16 simplified to one CA): sans-IO.
//!
//! Feed it MKPDUs with [`Participant::handle_mkpdu`], call [`Participant::handle_timeout`] when
//! [`Participant::poll_timeout`] is reached, and drain [`Participant::poll_action`] after every
//! call: MKPDUs to send (to every member of the CA: broadcast them) and events.
//!
//! - A member that sends a valid MKPDU (same CKN, good ICV, fresh MN) becomes a **potential
//!   peer**; it becomes **live** once one of its MKPDUs lists our MI with an MN we sent within
//!   the last Life time. Peers are forgotten after Life time (6 s) without such an MKPDU.
//! - MKPDUs go out every Hello time (2 s) and at once when the peer set or the keys change.
//! - **Key server election**: among this participant and its live peers, the numerically
//!   lowest Key Server Priority wins, then the lowest SCI; priority 0xFF never wins.
//! - The key server makes a SAK ([`CakKeys::derive_sak`]) whenever the set of live peers
//!   differs from the set the current SAK was made for, installs it for receive, and
//!   distributes it (AES-KW under the KEK) until every live peer reports it installed for
//!   receive in its SAK Use set; then it transmits with it (LTX) and so do the others once
//!   they see the key server's LTX. The previous key becomes the old key and is retired
//!   (an event) SAK Retire Time (3 s) after the latest key went into transmission.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kmp_api::crypto::SecretBytes;
use kmp_api::crypto::keywrap::{aes_key_unwrap, aes_key_wrap};
use kmp_api::{Duration, Instant, RngHandle};

use super::MkaError;
use super::keys::{CakKeys, KeyLength};
use super::wire::{
    ALGORITHM_AGILITY_2010, AssociationNumber, BasicParameterSet, DistributedKey, DistributedSak,
    IcvCoverage, KeyUse, MacsecCapability, MemberIdentifier, Mkpdu, PeerEntry, SakUse, Sci,
    WrappedSak,
};

/// Most peers (live and potential) a participant keeps; MKPDUs from further members are
/// ignored until some expire. Keeps every peer list under its 12-bit length field.
pub const MAX_PEERS: usize = 128;
/// MNs remembered to judge whether a peer's echo of our MI is recent.
const MN_HISTORY: usize = 64;

/// A participant's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkaConfig {
    /// Our SCI (see [`Sci::from_eui64`]).
    pub sci: Sci,
    /// Key Server Priority (lower wins; 0xFF: never key server). Default 16.
    pub key_server_priority: u8,
    /// MKA Hello Time. Default 2 s.
    pub hello_time: Duration,
    /// MKA Life Time. Default 6 s.
    pub life_time: Duration,
    /// MKA SAK Retire Time: how long the old key stays installed after transmission moved to
    /// the latest key. Default 3 s.
    pub sak_retire_time: Duration,
    /// Length of the SAKs this participant makes as key server. Default 128 bits.
    pub sak_length: KeyLength,
    /// What the ICV covers. Default [`IcvCoverage::PaeGroupHeader`].
    pub icv_coverage: IcvCoverage,
    /// MKA Version sent. Default 1 (802.1X-2010).
    pub mka_version: u8,
    /// MACsec Desired. Default true.
    pub macsec_desired: bool,
    /// MACsec Capability. Default integrity and confidentiality.
    pub macsec_capability: MacsecCapability,
}

impl MkaConfig {
    /// The defaults of 802.1X-2010 Table 9-3 for a participant with this SCI.
    pub fn new(sci: Sci) -> MkaConfig {
        MkaConfig {
            sci,
            key_server_priority: 16,
            hello_time: Duration::from_secs(2),
            life_time: Duration::from_secs(6),
            sak_retire_time: Duration::from_secs(3),
            sak_length: KeyLength::Aes128,
            icv_coverage: IcvCoverage::PaeGroupHeader,
            mka_version: 1,
            macsec_desired: true,
            macsec_capability: MacsecCapability::IntegrityConfidentiality,
        }
    }
}

/// Something that happened that the host acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MkaEvent {
    /// A peer became live.
    PeerLive {
        /// Its MI.
        mi: MemberIdentifier,
        /// Its SCI.
        sci: Sci,
    },
    /// A live peer timed out.
    PeerLost {
        /// Its MI.
        mi: MemberIdentifier,
        /// Its SCI.
        sci: Sci,
    },
    /// A SAK is installed for receive: install it in the link layer's key table.
    SakInstalled {
        /// The key server that made it (with `kn`, the Key Identifier).
        key_server_mi: MemberIdentifier,
        /// Key Number.
        kn: u32,
        /// Association Number.
        an: AssociationNumber,
        /// The key.
        sak: SecretBytes,
    },
    /// Start transmitting with this SAK (it was installed for receive before).
    SakTransmit {
        /// The key server that made it.
        key_server_mi: MemberIdentifier,
        /// Key Number.
        kn: u32,
        /// Association Number.
        an: AssociationNumber,
    },
    /// The old key's SAK Retire Time has passed: remove it from the key table.
    SakRetired {
        /// The key server that made it.
        key_server_mi: MemberIdentifier,
        /// Key Number.
        kn: u32,
        /// Association Number.
        an: AssociationNumber,
    },
}

/// An output of the participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MkaAction {
    /// Send this EAPOL-MKA packet to the CA's members (broadcast, KMP ID 1).
    Transmit(Vec<u8>),
    /// Report an event.
    Event(MkaEvent),
}

#[derive(Debug)]
struct Peer {
    mn: u32,
    sci: Sci,
    priority: u8,
    live: bool,
    expires: Instant,
    /// The latest key the peer reports installed for receive: (KS MI, KN).
    latest_rx: Option<(MemberIdentifier, u32)>,
}

#[derive(Debug)]
struct InstalledSak {
    key_server_mi: MemberIdentifier,
    kn: u32,
    an: AssociationNumber,
    tx: bool,
    /// Key server only: the wrapped key and the live peers it was made for.
    distribution: Option<(WrappedSak, BTreeSet<MemberIdentifier>)>,
}

/// An MKA participant in one CA.
#[derive(Debug)]
pub struct Participant {
    cfg: MkaConfig,
    keys: CakKeys,
    rng: RngHandle,
    mi: MemberIdentifier,
    /// The MN of the next MKPDU.
    mn: u32,
    sent_mns: VecDeque<(Instant, u32)>,
    peers: BTreeMap<MemberIdentifier, Peer>,
    next_hello: Option<Instant>,
    latest: Option<InstalledSak>,
    old: Option<InstalledSak>,
    /// When the old key is retired (set once the latest key is used for transmission).
    retire_old_at: Option<Instant>,
    /// The last KN this participant used as key server.
    last_kn: u32,
    actions: VecDeque<MkaAction>,
}

impl Participant {
    /// A participant with a fresh random MI. It sends nothing until [`Participant::start`] or
    /// the first MKPDU it receives.
    pub fn new(cfg: MkaConfig, keys: CakKeys, rng: RngHandle) -> Result<Participant, MkaError> {
        let mi = MemberIdentifier(rng.array()?);
        Ok(Participant {
            cfg,
            keys,
            rng,
            mi,
            mn: 1,
            sent_mns: VecDeque::new(),
            peers: BTreeMap::new(),
            next_hello: None,
            latest: None,
            old: None,
            retire_old_at: None,
            last_kn: 0,
            actions: VecDeque::new(),
        })
    }

    /// Our Member Identifier.
    pub fn mi(&self) -> MemberIdentifier {
        self.mi
    }

    /// Our SCI.
    pub fn sci(&self) -> Sci {
        self.cfg.sci
    }

    /// The live peers (MI, SCI).
    pub fn live_peers(&self) -> Vec<(MemberIdentifier, Sci)> {
        self.peers
            .iter()
            .filter(|(_, p)| p.live)
            .map(|(mi, p)| (*mi, p.sci))
            .collect()
    }

    /// The potential (not yet live) peers.
    pub fn potential_peers(&self) -> Vec<(MemberIdentifier, Sci)> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.live)
            .map(|(mi, p)| (*mi, p.sci))
            .collect()
    }

    /// Whether this participant is the elected key server (it has live peers and wins).
    pub fn is_key_server(&self) -> bool {
        self.has_live_peers()
            && self.elected() == Some((self.cfg.key_server_priority, self.cfg.sci, self.mi))
    }

    /// The latest SAK's key server MI, KN, AN and whether we transmit with it.
    pub fn latest_key(&self) -> Option<(MemberIdentifier, u32, AssociationNumber, bool)> {
        self.latest
            .as_ref()
            .map(|k| (k.key_server_mi, k.kn, k.an, k.tx))
    }

    /// Sends the first MKPDU now and starts the Hello timer.
    pub fn start(&mut self, now: Instant) -> Result<(), MkaError> {
        self.transmit(now)
    }

    /// The next instant [`Participant::handle_timeout`] wants to run: the Hello timer or a
    /// peer's Life timer. `None` before [`Participant::start`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hello = self.next_hello?;
        Some(
            self.peers
                .values()
                .map(|p| p.expires)
                .chain(self.retire_old_at)
                .fold(hello, core::cmp::min),
        )
    }

    /// The next output; drain until `None` after every call.
    pub fn poll_action(&mut self) -> Option<MkaAction> {
        self.actions.pop_front()
    }

    /// Runs the timers due at `now`: peers whose Life time ran out are removed (a live one
    /// triggers a rekey if we are key server), the old key is retired after the SAK Retire
    /// Time, and the Hello MKPDU is sent.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), MkaError> {
        let mut changed = false;
        if self.retire_old_at.is_some_and(|t| t <= now) {
            self.retire_old_at = None;
            if let Some(o) = self.old.take() {
                changed = true;
                self.actions
                    .push_back(MkaAction::Event(MkaEvent::SakRetired {
                        key_server_mi: o.key_server_mi,
                        kn: o.kn,
                        an: o.an,
                    }));
            }
        }
        let expired: Vec<MemberIdentifier> = self
            .peers
            .iter()
            .filter(|(_, p)| p.expires <= now)
            .map(|(mi, _)| *mi)
            .collect();
        for mi in expired {
            if let Some(p) = self.peers.remove(&mi) {
                changed = true;
                if p.live {
                    tracing::debug!(?mi, "MKA peer lost");
                    self.actions
                        .push_back(MkaAction::Event(MkaEvent::PeerLost { mi, sci: p.sci }));
                }
            }
        }
        if changed {
            self.key_server_step(now)?;
        }
        if changed || self.next_hello.is_some_and(|t| t <= now) {
            self.transmit(now)?;
        }
        Ok(())
    }

    /// Processes a received EAPOL-MKA packet. An `Err` means it was refused: a wrong CKN,
    /// bad ICV, stale MN or the like changes nothing; an authentic MKPDU whose Distributed SAK
    /// cannot be accepted (unwrap failure, old KN) still counts as the peer's MKPDU (its MN and
    /// liveness are recorded) but installs nothing. The participant stays usable either way.
    pub fn handle_mkpdu(&mut self, now: Instant, bytes: &[u8]) -> Result<(), MkaError> {
        let pdu = Mkpdu::parse(bytes)?;
        if pdu.basic.ckn != *self.keys.ckn() {
            return Err(MkaError::OtherCkn);
        }
        let pdu = Mkpdu::parse_verified(bytes, self.keys.ick().expose(), self.cfg.icv_coverage)?;
        let b = &pdu.basic;
        if b.algorithm_agility != ALGORITHM_AGILITY_2010 {
            return Err(MkaError::AlgorithmAgility(b.algorithm_agility));
        }
        if b.mi == self.mi {
            return Err(MkaError::OwnMi);
        }
        if let Some(p) = self.peers.get(&b.mi) {
            if b.mn <= p.mn {
                return Err(MkaError::StaleMn {
                    last: p.mn,
                    got: b.mn,
                });
            }
        } else if self.peers.len() >= MAX_PEERS {
            tracing::warn!("MKA peer table full; MKPDU from a new member ignored");
            return Ok(());
        }
        self.handle_valid(now, &pdu)
    }

    fn handle_valid(&mut self, now: Instant, pdu: &Mkpdu) -> Result<(), MkaError> {
        let b = &pdu.basic;
        let lists_us = self.lists_us(pdu);
        let mut changed = false;
        let life = self.cfg.life_time;
        let expires = now.checked_add(life).unwrap_or(now);
        let peer = self.peers.entry(b.mi).or_insert_with(|| {
            changed = true;
            Peer {
                mn: b.mn,
                sci: b.sci,
                priority: b.key_server_priority,
                live: false,
                expires,
                latest_rx: None,
            }
        });
        peer.mn = b.mn;
        peer.sci = b.sci;
        peer.priority = b.key_server_priority;
        if lists_us {
            peer.expires = expires;
            if !peer.live {
                peer.live = true;
                changed = true;
                tracing::debug!(mi = ?b.mi, "MKA peer live");
                self.actions.push_back(MkaAction::Event(MkaEvent::PeerLive {
                    mi: b.mi,
                    sci: b.sci,
                }));
            }
        } else if !peer.live {
            peer.expires = expires;
        }
        let peer_live = peer.live;
        if let Some(u) = &pdu.sak_use {
            let rx = match (&u.keys, u.latest_rx) {
                (Some((latest, _)), true) => Some((latest.key_server_mi, latest.kn)),
                _ => None,
            };
            if peer.latest_rx != rx {
                peer.latest_rx = rx;
                changed = true;
            }
        }

        // The elected key server's new SAK, and its go-ahead to transmit.
        let from_key_server =
            peer_live && b.key_server && self.elected().map(|(_, _, mi)| mi) == Some(b.mi);
        if from_key_server {
            if let Some(DistributedSak::Key(k)) = &pdu.distributed_sak {
                changed |= self.accept_sak(b, k)?;
            }
            if let (Some(u), Some(latest)) = (&pdu.sak_use, self.latest.as_mut())
                && let Some((l, _)) = &u.keys
                && u.latest_tx
                && !latest.tx
                && l.key_server_mi == latest.key_server_mi
                && l.kn == latest.kn
            {
                latest.tx = true;
                changed = true;
                self.retire_old_at = now.checked_add(self.cfg.sak_retire_time);
                self.actions
                    .push_back(MkaAction::Event(MkaEvent::SakTransmit {
                        key_server_mi: latest.key_server_mi,
                        kn: latest.kn,
                        an: latest.an,
                    }));
            }
        }
        if changed {
            self.key_server_step(now)?;
            self.transmit(now)?;
        }
        Ok(())
    }

    /// Installs a distributed SAK for receive; `Ok(false)` if it is the one we have.
    fn accept_sak(&mut self, b: &BasicParameterSet, k: &DistributedKey) -> Result<bool, MkaError> {
        if let Some(l) = &self.latest {
            if l.key_server_mi == b.mi && l.kn == k.kn {
                return Ok(false);
            }
            if l.key_server_mi == b.mi && k.kn < l.kn {
                return Err(MkaError::UnexpectedSak("KN older than the latest key"));
            }
        }
        let sak = aes_key_unwrap(self.keys.kek().expose(), k.wrapped_sak.as_bytes())?;
        if KeyLength::from_octets(sak.len()).is_none() {
            return Err(MkaError::UnexpectedSak("SAK length"));
        }
        self.install(
            InstalledSak {
                key_server_mi: b.mi,
                kn: k.kn,
                an: k.an,
                tx: false,
                distribution: None,
            },
            sak,
        );
        Ok(true)
    }

    fn install(&mut self, new: InstalledSak, sak: SecretBytes) {
        tracing::debug!(
            kn = new.kn,
            an = new.an.get(),
            "MKA SAK installed for receive"
        );
        self.actions
            .push_back(MkaAction::Event(MkaEvent::SakInstalled {
                key_server_mi: new.key_server_mi,
                kn: new.kn,
                an: new.an,
                sak,
            }));
        // A key still in the old slot when a newer one arrives is retired at once.
        if let Some(o) = self.old.take() {
            self.actions
                .push_back(MkaAction::Event(MkaEvent::SakRetired {
                    key_server_mi: o.key_server_mi,
                    kn: o.kn,
                    an: o.an,
                }));
        }
        self.old = self.latest.replace(new);
        self.retire_old_at = None;
    }

    /// Key server duties: a new SAK when the live set changed, LTX once all live peers
    /// receive with it.
    fn key_server_step(&mut self, now: Instant) -> Result<(), MkaError> {
        if !self.is_key_server() {
            return Ok(());
        }
        let live: BTreeSet<MemberIdentifier> = self
            .peers
            .iter()
            .filter(|(_, p)| p.live)
            .map(|(mi, _)| *mi)
            .collect();
        let current = self.latest.as_ref().and_then(|l| {
            (l.key_server_mi == self.mi)
                .then_some(l.distribution.as_ref())
                .flatten()
        });
        if current.is_none_or(|(_, made_for)| *made_for != live) {
            self.new_sak(live)?;
            return Ok(());
        }
        let all_rx = self.peers.values().filter(|p| p.live).all(|p| {
            self.latest
                .as_ref()
                .is_some_and(|l| p.latest_rx == Some((self.mi, l.kn)))
        });
        if let Some(latest) = self.latest.as_mut()
            && all_rx
            && !latest.tx
        {
            latest.tx = true;
            self.retire_old_at = now.checked_add(self.cfg.sak_retire_time);
            self.actions
                .push_back(MkaAction::Event(MkaEvent::SakTransmit {
                    key_server_mi: latest.key_server_mi,
                    kn: latest.kn,
                    an: latest.an,
                }));
        }
        Ok(())
    }

    fn new_sak(&mut self, live: BTreeSet<MemberIdentifier>) -> Result<(), MkaError> {
        let len = self.cfg.sak_length;
        let kn = self.last_kn.wrapping_add(1).max(1);
        let an = self
            .latest
            .as_ref()
            .map_or(AssociationNumber::default(), |l| l.an.next());
        let nonce = self.rng.vec(len.octets())?;
        let mut mis = Vec::with_capacity(live.len() + 1);
        mis.push(self.mi.0);
        mis.extend(live.iter().map(|m| m.0));
        let sak = self.keys.derive_sak(&nonce, &mis, kn, len)?;
        let wrapped = aes_key_wrap(self.keys.kek().expose(), sak.expose())?;
        let wrapped = WrappedSak::from_slice(&wrapped).ok_or(MkaError::UnexpectedSak("wrap"))?;
        self.last_kn = kn;
        tracing::debug!(kn, live = live.len(), "MKA key server made a SAK");
        self.install(
            InstalledSak {
                key_server_mi: self.mi,
                kn,
                an,
                tx: false,
                distribution: Some((wrapped, live)),
            },
            sak,
        );
        Ok(())
    }

    fn has_live_peers(&self) -> bool {
        self.peers.values().any(|p| p.live)
    }

    /// The winner among us and the live peers: (priority, SCI, MI).
    fn elected(&self) -> Option<(u8, Sci, MemberIdentifier)> {
        let me = (self.cfg.key_server_priority, self.cfg.sci, self.mi);
        core::iter::once(me)
            .chain(
                self.peers
                    .iter()
                    .filter(|(_, p)| p.live)
                    .map(|(mi, p)| (p.priority, p.sci, *mi)),
            )
            .filter(|(prio, _, _)| *prio != 0xFF)
            .min()
    }

    fn lists_us(&self, pdu: &Mkpdu) -> bool {
        let Some(oldest) = self.sent_mns.front().map(|(_, mn)| *mn) else {
            return false;
        };
        pdu.live_peers
            .iter()
            .chain(pdu.potential_peers.iter())
            .flatten()
            .any(|e| e.mi == self.mi && e.mn >= oldest && e.mn < self.mn)
    }

    fn transmit(&mut self, now: Instant) -> Result<(), MkaError> {
        if self.mn == u32::MAX {
            // 802.1X-2010 §9.4.2: a new MI before the MN wraps.
            self.mi = MemberIdentifier(self.rng.array()?);
            self.mn = 1;
            self.sent_mns.clear();
        }
        let is_ks = self.is_key_server();
        let entries = |live: bool| -> Option<Vec<PeerEntry>> {
            let v: Vec<PeerEntry> = self
                .peers
                .iter()
                .filter(|(_, p)| p.live == live)
                .map(|(mi, p)| PeerEntry { mi: *mi, mn: p.mn })
                .collect();
            (!v.is_empty()).then_some(v)
        };
        let key_use = |k: &InstalledSak| KeyUse {
            key_server_mi: k.key_server_mi,
            kn: k.kn,
            lowest_acceptable_pn: 1,
        };
        let sak_use = self.latest.as_ref().map(|l| {
            let old = self.old.as_ref();
            SakUse {
                latest_an: l.an,
                latest_tx: l.tx,
                latest_rx: true,
                old_an: old.map(|o| o.an).unwrap_or_default(),
                old_tx: old.is_some_and(|o| o.tx) && !l.tx,
                old_rx: old.is_some(),
                keys: Some((key_use(l), old.map(key_use).unwrap_or_default())),
                ..SakUse::default()
            }
        });
        let distributed_sak = self.latest.as_ref().and_then(|l| {
            let (wrapped, _) = l.distribution.as_ref()?;
            (is_ks && !l.tx).then_some(DistributedSak::Key(DistributedKey {
                an: l.an,
                confidentiality_offset: 0,
                kn: l.kn,
                cipher_suite: None,
                wrapped_sak: *wrapped,
            }))
        });
        let mut pdu = Mkpdu {
            basic: BasicParameterSet {
                version: self.cfg.mka_version,
                key_server_priority: self.cfg.key_server_priority,
                key_server: is_ks,
                macsec_desired: self.cfg.macsec_desired,
                macsec_capability: self.cfg.macsec_capability,
                sci: self.cfg.sci,
                mi: self.mi,
                mn: self.mn,
                algorithm_agility: ALGORITHM_AGILITY_2010,
                ckn: self.keys.ckn().clone(),
            },
            live_peers: entries(true),
            potential_peers: entries(false),
            sak_use,
            distributed_sak,
            distributed_cak: None,
            kmd: None,
            announcement: None,
            xpn: None,
            unknown: Vec::new(),
            icv_indicator: false,
            icv: [0; 16],
        };
        let bytes = pdu.emit_signed(self.keys.ick().expose(), self.cfg.icv_coverage)?;
        self.sent_mns.push_back((now, self.mn));
        let horizon = Instant::from_micros(
            now.as_micros()
                .saturating_sub(self.cfg.life_time.as_micros()),
        );
        while self.sent_mns.len() > MN_HISTORY
            || self.sent_mns.len() > 1 && self.sent_mns.front().is_some_and(|(t, _)| *t < horizon)
        {
            self.sent_mns.pop_front();
        }
        self.mn += 1;
        self.next_hello = now.checked_add(self.cfg.hello_time);
        self.actions.push_back(MkaAction::Transmit(bytes));
        Ok(())
    }
}
