//! The 4-way handshake (KMP ID 6) and the group-key handshake (KMP ID 7) as sans-IO sessions.
//!
//! The authenticator is always the initiator (it sends message 1); the supplicant's session is
//! made by the runtime from message 1 (KMP-CREATE.indication). A supplicant that wants keys
//! sends an EAPOL-Key request under KMP ID 1 ([`super::KeyRequest`]); the KMP ID 1 session
//! decides whether to run EAP, this 4-way handshake or the group-key handshake.

use std::collections::VecDeque;
use std::sync::Arc;

use kmp_api::addr::ExtendedAddress;
use kmp_api::crypto::CryptoError;
use kmp_api::id::KmpId;
use kmp_api::rng::RngHandle;
use kmp_api::security::KeyIdentifier;
use kmp_api::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyRemoval, KeyScope,
    KeySelector, KmpFactory, KmpSession, LinkKey, Outcome, Role, SecretBytes, SessionContext,
    SessionError,
};
use kmp_api::time::{Duration, Instant};

use super::cache::{GtkSet, PaeRole, PmkCache, PmkEntry};
use super::config::HandshakeConfig;
use super::keys::{
    NONCE_LEN, Ptk, pmkid, sign_pdu, unwrap_key_data, verify_pdu_mic, wisun_gak, wrap_key_data,
};
use crate::eapol::{GtkKde, Kde, KeyDescriptor, KeyInformation as KI, ProtocolVersion};

/// What both handshake factories share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: HandshakeConfig,
    pub(crate) pmks: PmkCache,
    pub(crate) gtks: GtkSet,
}

/// Which handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FourWay,
    GroupKey,
}

enum State {
    Idle,
    /// Authenticator: message 1 sent (counters `first..=last`).
    ExpectM2 {
        pmk: SecretBytes,
        pmkid: [u8; 16],
        anonce: [u8; NONCE_LEN],
        first: u64,
    },
    /// Authenticator: message 3 sent.
    ExpectM4 {
        ptk: Ptk,
        pmkid: [u8; 16],
        anonce: [u8; NONCE_LEN],
        first: u64,
    },
    /// Supplicant: message 2 sent.
    ExpectM3 {
        ptk: Ptk,
        pmkid: [u8; 16],
        anonce: [u8; NONCE_LEN],
    },
    /// Authenticator: group message 1 sent.
    ExpectG2 {
        ptk: Ptk,
        pmkid: [u8; 16],
        first: u64,
    },
    /// Finished; a supplicant answers retransmissions until the deadline.
    Done {
        ptk: Ptk,
        anonce: [u8; NONCE_LEN],
    },
    Closed,
}

/// One 4-way or group-key handshake with one peer, in either role.
pub struct HandshakeSession {
    kind: Kind,
    role: PaeRole,
    local: ExtendedAddress,
    peer: ExtendedAddress,
    rng: RngHandle,
    shared: Arc<Shared>,
    state: State,
    actions: VecDeque<Action>,
    deadline: Option<Instant>,
    attempts: u32,
    /// Counter of the last message the authenticator sent.
    last_counter: u64,
    /// Messages from the peer that failed their MIC (reported as AuthenticationFailed).
    bad_mics: u32,
    snonce: Option<[u8; NONCE_LEN]>,
}

fn mic_err(e: CryptoError) -> SessionError {
    match e {
        CryptoError::AuthenticationFailed => SessionError::VerificationFailed("Key MIC"),
        other => SessionError::Crypto(other),
    }
}

fn unexpected(expected: &'static str, got: KI) -> SessionError {
    SessionError::UnexpectedMessage {
        expected,
        got: format!("{got:?}"),
    }
}

impl HandshakeSession {
    fn new(kind: Kind, shared: Arc<Shared>, ctx: SessionContext) -> HandshakeSession {
        HandshakeSession {
            kind,
            role: match ctx.role {
                Role::Initiator => PaeRole::Authenticator,
                Role::Responder => PaeRole::Supplicant,
            },
            local: ctx.local,
            peer: ctx.peer,
            rng: ctx.rng,
            shared,
            state: State::Idle,
            actions: VecDeque::new(),
            deadline: None,
            attempts: 0,
            last_counter: 0,
            bad_mics: 0,
            snonce: None,
        }
    }

    fn config(&self) -> &HandshakeConfig {
        &self.shared.config
    }

    fn kmp(&self) -> KmpId {
        match self.kind {
            Kind::FourWay => KmpId::Ieee80211FourWay,
            Kind::GroupKey => KmpId::Ieee80211GroupKey,
        }
    }

    fn version_bits(&self) -> KI {
        KI::default().with_descriptor_version(self.config().descriptor_version.to_u8())
    }

    /// The PMKSA for the peer: from the cache, else from the configured PMK (then cached, so
    /// its replay counter persists).
    fn pmksa(&self) -> Option<PmkEntry> {
        let cfg = self.config();
        let (aa, spa) = self.role.aa_spa(self.local, self.peer);
        let make = || {
            let pmk = cfg.pmk.clone()?;
            let id = pmkid(pmk.expose(), aa, spa).ok()?;
            Some(PmkEntry {
                pmk,
                pmkid: id,
                role: self.role,
                replay_counter: None,
                ptk: None,
            })
        };
        if cfg.use_pmk_cache {
            self.shared.pmks.get_or_insert(self.local, self.peer, make)
        } else {
            make()
        }
    }

    fn set_counter(&self, rc: u64, ptk: Option<&Ptk>) {
        self.shared.pmks.update(self.local, self.peer, |e| {
            e.replay_counter = Some(rc);
            if let Some(p) = ptk {
                e.ptk = Some(p.clone());
            }
        });
    }

    fn next_counter(&mut self) -> u64 {
        let last = self
            .shared
            .pmks
            .get(self.local, self.peer)
            .and_then(|e| e.replay_counter)
            .unwrap_or(self.last_counter);
        let rc = last.max(self.last_counter).saturating_add(1);
        self.last_counter = rc;
        self.set_counter(rc, None);
        rc
    }

    fn fail(&mut self, reason: FailureReason) {
        tracing::debug!(peer = %self.peer, kmp = %self.kmp(), %reason, "802.11 handshake failed");
        self.state = State::Closed;
        self.deadline = None;
        self.actions
            .push_back(Action::Finished(Outcome::Failure(reason)));
    }

    fn send(&mut self, kd: &KeyDescriptor<'_>, kck: Option<&[u8]>) -> Result<(), SessionError> {
        let mut pdu = kd
            .to_pdu(ProtocolVersion::V2010)
            .map_err(|e| SessionError::Malformed(e.to_string()))?;
        if let Some(kck) = kck {
            sign_pdu(self.config().descriptor_version, kck, &mut pdu)?;
        }
        self.actions.push_back(Action::Send(pdu));
        Ok(())
    }

    fn arm(&mut self, now: Instant) {
        let d = match self.role {
            PaeRole::Authenticator => self.config().retransmit_after(self.attempts),
            PaeRole::Supplicant => self.config().exchange_window(),
        };
        self.deadline = now.checked_add(d);
    }

    fn group_kdes(&self, gtk: &super::cache::Gtk, tx: bool) -> Result<Vec<u8>, SessionError> {
        let mut kdes = vec![Kde::Gtk(GtkKde {
            key_id: gtk.key_id,
            tx,
            gtk: gtk.key.expose(),
        })];
        if gtk.lifetime_secs > 0 {
            kdes.push(Kde::Lifetime(gtk.lifetime_secs));
        }
        kdes.push(Kde::WisunGtkl(self.shared.gtks.liveness()));
        let plain = zeroize::Zeroizing::new(
            Kde::emit_all(&kdes).map_err(|e| SessionError::Config(e.to_string()))?,
        );
        Ok(plain.to_vec())
    }

    // ---- authenticator ----

    fn send_m1(&mut self) -> Result<(), SessionError> {
        let State::ExpectM2 { pmkid, anonce, .. } = &self.state else {
            return Ok(());
        };
        let (pmkid, anonce) = (*pmkid, *anonce);
        let rc = self.next_counter();
        let kde = [Kde::Pmkid(pmkid)];
        let data = if self.config().send_pmkid {
            Kde::emit_all(&kde).map_err(|e| SessionError::Config(e.to_string()))?
        } else {
            vec![]
        };
        let mut kd = KeyDescriptor::new(
            self.version_bits()
                .with(KI::KEY_TYPE, true)
                .with(KI::KEY_ACK, true),
        );
        kd.key_length = 16;
        kd.replay_counter = rc;
        kd.key_nonce = anonce;
        kd.key_data = &data;
        self.send(&kd, None)
    }

    fn send_m3(&mut self) -> Result<(), SessionError> {
        let State::ExpectM4 { ptk, anonce, .. } = &self.state else {
            return Ok(());
        };
        let (ptk, anonce) = (ptk.clone(), *anonce);
        let plain = match self.shared.gtks.active() {
            Some(g) => self.group_kdes(&g, true)?,
            None => vec![],
        };
        let wrapped = wrap_key_data(ptk.kek(), &plain)?;
        let rc = self.next_counter();
        let mut kd = KeyDescriptor::new(
            self.version_bits()
                .with(KI::KEY_TYPE, true)
                .with(KI::INSTALL, true)
                .with(KI::KEY_ACK, true)
                .with(KI::KEY_MIC, true)
                .with(KI::SECURE, true)
                .with(KI::ENCRYPTED_KEY_DATA, true),
        );
        kd.key_length = 16;
        kd.replay_counter = rc;
        kd.key_nonce = anonce;
        kd.key_data = &wrapped;
        self.send(&kd, Some(ptk.kck()))
    }

    fn send_g1(&mut self) -> Result<(), SessionError> {
        let State::ExpectG2 { ptk, .. } = &self.state else {
            return Ok(());
        };
        let ptk = ptk.clone();
        let gtk = self
            .shared
            .gtks
            .newest()
            .ok_or_else(|| SessionError::Config("no GTK configured".into()))?;
        let tx = self
            .shared
            .gtks
            .active()
            .is_some_and(|a| a.key_id == gtk.key_id);
        let wrapped = wrap_key_data(ptk.kek(), &self.group_kdes(&gtk, tx)?)?;
        let rc = self.next_counter();
        let mut kd = KeyDescriptor::new(
            self.version_bits()
                .with(KI::KEY_ACK, true)
                .with(KI::KEY_MIC, true)
                .with(KI::SECURE, true)
                .with(KI::ENCRYPTED_KEY_DATA, true),
        );
        kd.replay_counter = rc;
        kd.key_data = &wrapped;
        self.send(&kd, Some(ptk.kck()))
    }

    fn begin(&mut self, now: Instant) -> Result<(), SessionError> {
        let Some(entry) = self.pmksa() else {
            self.fail(FailureReason::AuthenticationFailed);
            return Err(SessionError::Config(format!("no PMK for {}", self.peer)));
        };
        match self.kind {
            Kind::FourWay => {
                let anonce = self.rng.array()?;
                self.state = State::ExpectM2 {
                    pmk: entry.pmk,
                    pmkid: entry.pmkid,
                    anonce,
                    first: 0,
                };
                self.send_m1()?;
            }
            Kind::GroupKey => {
                let Some(ptk) = entry.ptk else {
                    self.fail(FailureReason::Internal(
                        "no PTKSA: run the 4-way handshake".into(),
                    ));
                    return Err(SessionError::Config("no PTKSA".into()));
                };
                self.state = State::ExpectG2 {
                    ptk,
                    pmkid: entry.pmkid,
                    first: 0,
                };
                self.send_g1()?;
            }
        }
        let rc = self.last_counter;
        if let State::ExpectM2 { first, .. } | State::ExpectG2 { first, .. } = &mut self.state {
            *first = rc;
        }
        self.attempts = 0;
        self.arm(now);
        Ok(())
    }

    fn on_authenticator(
        &mut self,
        now: Instant,
        pdu: &[u8],
        kd: &KeyDescriptor<'_>,
    ) -> Result<(), SessionError> {
        let ki = kd.key_information;
        let version = self.config().descriptor_version;
        let in_range = |first: u64, last: u64| (first..=last).contains(&kd.replay_counter);
        match &self.state {
            State::ExpectM2 {
                pmk,
                pmkid,
                anonce,
                first,
            } => {
                if !(ki.pairwise() && ki.mic() && !ki.ack() && !ki.install() && !ki.secure()) {
                    return Err(unexpected("4-way message 2", ki));
                }
                if !in_range(*first, self.last_counter) {
                    return Err(SessionError::VerificationFailed("replay counter"));
                }
                let (aa, spa) = (self.local, self.peer);
                let ptk = Ptk::derive(version, pmk.expose(), aa, spa, anonce, &kd.key_nonce)?;
                if let Err(e) = verify_pdu_mic(version, ptk.kck(), pdu) {
                    self.bad_mics += 1;
                    return Err(mic_err(e));
                }
                self.state = State::ExpectM4 {
                    ptk,
                    pmkid: *pmkid,
                    anonce: *anonce,
                    first: self.last_counter + 1,
                };
                self.attempts = 0;
                self.send_m3()?;
                self.arm(now);
                Ok(())
            }
            State::ExpectM4 {
                ptk, pmkid, first, ..
            } => {
                if !(ki.pairwise() && ki.mic() && ki.secure() && !ki.ack() && !ki.install()) {
                    return Err(unexpected("4-way message 4", ki));
                }
                if !in_range(*first, self.last_counter) {
                    return Err(SessionError::VerificationFailed("replay counter"));
                }
                if let Err(e) = verify_pdu_mic(version, ptk.kck(), pdu) {
                    self.bad_mics += 1;
                    return Err(mic_err(e));
                }
                let (ptk, pmkid) = (ptk.clone(), *pmkid);
                self.set_counter(self.last_counter, Some(&ptk));
                let mut keys = vec![];
                self.pairwise_key(&ptk, &mut keys);
                self.succeed(pmkid, keys, vec![]);
                self.state = State::Closed;
                Ok(())
            }
            State::ExpectG2 { ptk, pmkid, first } => {
                if ki.pairwise() || !ki.mic() || !ki.secure() || ki.ack() {
                    return Err(unexpected("group message 2", ki));
                }
                if !in_range(*first, self.last_counter) {
                    return Err(SessionError::VerificationFailed("replay counter"));
                }
                if let Err(e) = verify_pdu_mic(version, ptk.kck(), pdu) {
                    self.bad_mics += 1;
                    return Err(mic_err(e));
                }
                let pmkid = *pmkid;
                self.succeed(pmkid, vec![], vec![]);
                self.state = State::Closed;
                Ok(())
            }
            _ => Err(unexpected("nothing (finished)", ki)),
        }
    }

    // ---- supplicant ----

    fn pairwise_key(&self, ptk: &Ptk, keys: &mut Vec<LinkKey>) {
        if self.config().install_pairwise_key && self.kind == Kind::FourWay {
            keys.push(LinkKey {
                key: SecretBytes::from_slice(ptk.tk()),
                lookup: KeyIdentifier::Implicit,
                scope: KeyScope::Pairwise(self.peer),
                direction: KeyDirection::Both,
                min_security_level: self.config().min_security_level,
                lifetime: self.config().pairwise_lifetime,
            });
        }
    }

    /// Group link keys (and removals of dead slots) from decrypted key data.
    fn group_keys(
        &self,
        plain: &[u8],
        keys: &mut Vec<LinkKey>,
        removals: &mut Vec<u8>,
        require_gtk: bool,
    ) -> Result<(), SessionError> {
        let kdes = Kde::parse_all(plain).map_err(|e| SessionError::Malformed(e.to_string()))?;
        let lifetime = kdes.iter().find_map(|k| match k {
            Kde::Lifetime(s) if *s > 0 => Some(Duration::from_secs(u64::from(*s))),
            _ => None,
        });
        for k in &kdes {
            if let Kde::Gtk(g) = k {
                if g.gtk.len() != 16 {
                    return Err(SessionError::VerificationFailed("GTK length"));
                }
                let key = match &self.config().network_name {
                    Some(n) => wisun_gak(n, g.gtk),
                    None => SecretBytes::from_slice(g.gtk),
                };
                keys.push(LinkKey {
                    key,
                    lookup: KeyIdentifier::Index(g.key_id + 1),
                    scope: KeyScope::Group,
                    direction: KeyDirection::Both,
                    min_security_level: self.config().min_security_level,
                    lifetime: lifetime.or(self.config().gtk_lifetime),
                });
            }
        }
        if require_gtk && !kdes.iter().any(|k| matches!(k, Kde::Gtk(_))) {
            return Err(SessionError::VerificationFailed("no GTK KDE"));
        }
        if let Some(gtkl) = kdes.iter().find_map(|k| match k {
            Kde::WisunGtkl(v) => Some(*v),
            _ => None,
        }) {
            removals.extend((0u8..4).filter(|i| gtkl & (1 << i) == 0));
        }
        Ok(())
    }

    fn succeed(&mut self, pmkid: [u8; 16], keys: Vec<LinkKey>, removals: Vec<u8>) {
        let n = keys.len();
        for id in removals {
            self.actions.push_back(Action::RemoveKeys(KeyRemoval {
                owner: self.kmp(),
                peer: self.peer,
                which: KeySelector::LinkKey(KeyIdentifier::Index(id + 1)),
            }));
        }
        if !keys.is_empty() {
            self.actions.push_back(Action::InstallKeys(KeyInstall {
                owner: self.kmp(),
                peer: self.peer,
                link_keys: keys,
                upper_layer_sas: vec![],
            }));
        }
        self.actions
            .push_back(Action::Finished(Outcome::Success(EstablishedSa {
                peer: self.peer,
                session_id: pmkid.to_vec(),
                lifetime: self.config().pairwise_lifetime,
                keys_installed: n,
            })));
    }

    fn last_accepted(&self) -> Option<u64> {
        self.shared
            .pmks
            .get(self.local, self.peer)
            .and_then(|e| e.replay_counter)
    }

    fn fresh(&self, rc: u64) -> Result<(), SessionError> {
        if self.last_accepted().is_some_and(|last| rc <= last) {
            return Err(SessionError::VerificationFailed("stale Key Replay Counter"));
        }
        Ok(())
    }

    fn ack_to(
        &mut self,
        kd: &KeyDescriptor<'_>,
        ptk: &Ptk,
        pairwise: bool,
    ) -> Result<(), SessionError> {
        let mut ack = KeyDescriptor::new(
            self.version_bits()
                .with(KI::KEY_TYPE, pairwise)
                .with(KI::KEY_MIC, true)
                .with(KI::SECURE, true),
        );
        ack.replay_counter = kd.replay_counter;
        self.send(&ack, Some(ptk.kck()))
    }

    fn on_supplicant(
        &mut self,
        now: Instant,
        pdu: &[u8],
        kd: &KeyDescriptor<'_>,
    ) -> Result<(), SessionError> {
        let ki = kd.key_information;
        let version = self.config().descriptor_version;
        let m1 = ki.pairwise() && ki.ack() && !ki.mic() && !ki.install();
        let m3 = ki.pairwise() && ki.ack() && ki.mic() && ki.install() && ki.encrypted_key_data();
        let g1 = !ki.pairwise() && ki.ack() && ki.mic() && ki.encrypted_key_data();
        match (self.kind, &self.state) {
            (Kind::FourWay, State::Idle | State::ExpectM3 { .. } | State::Done { .. }) if m1 => {
                self.fresh(kd.replay_counter)?;
                let Some(entry) = self.pmksa() else {
                    self.fail(FailureReason::AuthenticationFailed);
                    return Err(SessionError::Refused(format!("no PMK for {}", self.peer)));
                };
                let offered = Kde::parse_all(kd.key_data)
                    .map_err(|e| SessionError::Malformed(e.to_string()))?
                    .into_iter()
                    .find_map(|k| match k {
                        Kde::Pmkid(p) => Some(p),
                        _ => None,
                    });
                if offered.is_some_and(|p| p != entry.pmkid) {
                    // The authenticator holds another PMK: the handshake cannot succeed; KMP
                    // ID 1 has to run EAP again.
                    self.fail(FailureReason::AuthenticationFailed);
                    return Err(SessionError::VerificationFailed("PMKID"));
                }
                let snonce = match self.snonce {
                    Some(s) => s,
                    None => {
                        let s = self.rng.array()?;
                        self.snonce = Some(s);
                        s
                    }
                };
                let ptk = Ptk::derive(
                    version,
                    entry.pmk.expose(),
                    self.peer,
                    self.local,
                    &kd.key_nonce,
                    &snonce,
                )?;
                let mut m2 = KeyDescriptor::new(
                    self.version_bits()
                        .with(KI::KEY_TYPE, true)
                        .with(KI::KEY_MIC, true),
                );
                m2.replay_counter = kd.replay_counter;
                m2.key_nonce = snonce;
                self.send(&m2, Some(ptk.kck()))?;
                self.state = State::ExpectM3 {
                    ptk,
                    pmkid: entry.pmkid,
                    anonce: kd.key_nonce,
                };
                self.arm(now);
                Ok(())
            }
            (Kind::FourWay, State::ExpectM3 { ptk, pmkid, anonce }) if m3 => {
                self.fresh(kd.replay_counter)?;
                if kd.key_nonce != *anonce {
                    return Err(SessionError::VerificationFailed("ANonce of message 3"));
                }
                verify_pdu_mic(version, ptk.kck(), pdu).map_err(mic_err)?;
                let (ptk, pmkid) = (ptk.clone(), *pmkid);
                let plain = unwrap_key_data(ptk.kek(), kd.key_data).map_err(mic_err)?;
                let mut keys = vec![];
                let mut removals = vec![];
                self.pairwise_key(&ptk, &mut keys);
                self.group_keys(plain.expose(), &mut keys, &mut removals, false)?;
                self.set_counter(kd.replay_counter, Some(&ptk));
                self.ack_to(kd, &ptk, true)?;
                self.succeed(pmkid, keys, vec![]);
                self.state = State::Done {
                    ptk,
                    anonce: kd.key_nonce,
                };
                self.arm(now);
                Ok(())
            }
            (Kind::FourWay, State::Done { ptk, anonce }) if m3 => {
                // A retransmitted message 3 (our message 4 was lost): answer again, install
                // nothing again (802.11-2020 12.7.6.4; the reinstallation attack).
                self.fresh(kd.replay_counter)?;
                if kd.key_nonce != *anonce {
                    return Err(SessionError::VerificationFailed("ANonce of message 3"));
                }
                verify_pdu_mic(version, ptk.kck(), pdu).map_err(mic_err)?;
                let ptk = ptk.clone();
                self.set_counter(kd.replay_counter, None);
                self.ack_to(kd, &ptk, true)
            }
            (Kind::GroupKey, State::Idle | State::Done { .. }) if g1 => {
                self.fresh(kd.replay_counter)?;
                let entry = self
                    .shared
                    .pmks
                    .get(self.local, self.peer)
                    .filter(|e| e.ptk.is_some());
                let Some(PmkEntry {
                    pmkid,
                    ptk: Some(ptk),
                    ..
                }) = entry
                else {
                    return Err(SessionError::Refused("no PTKSA with the peer".into()));
                };
                verify_pdu_mic(version, ptk.kck(), pdu).map_err(mic_err)?;
                let plain = unwrap_key_data(ptk.kek(), kd.key_data).map_err(mic_err)?;
                let mut keys = vec![];
                let mut removals = vec![];
                self.group_keys(plain.expose(), &mut keys, &mut removals, true)?;
                self.set_counter(kd.replay_counter, None);
                self.ack_to(kd, &ptk, false)?;
                if matches!(self.state, State::Idle) {
                    self.succeed(pmkid, keys, removals);
                }
                self.state = State::Done {
                    ptk,
                    anonce: [0; NONCE_LEN],
                };
                self.arm(now);
                Ok(())
            }
            _ => Err(unexpected(
                match self.kind {
                    Kind::FourWay => "4-way message 1 or 3",
                    Kind::GroupKey => "group message 1",
                },
                ki,
            )),
        }
    }
}

impl KmpSession for HandshakeSession {
    fn kmp_id(&self) -> KmpId {
        self.kmp()
    }

    fn role(&self) -> Role {
        match self.role {
            PaeRole::Authenticator => Role::Initiator,
            PaeRole::Supplicant => Role::Responder,
        }
    }

    fn peer(&self) -> ExtendedAddress {
        self.peer
    }

    fn start(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.role == PaeRole::Authenticator
            && matches!(self.state, State::Idle)
            && let Err(e) = self.begin(now)
        {
            if !matches!(self.state, State::Closed) {
                self.fail(FailureReason::Internal(e.to_string()));
            }
            return Err(e);
        }
        Ok(())
    }

    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        if matches!(self.state, State::Closed) {
            return Err(SessionError::Finished);
        }
        let (_, kd) =
            KeyDescriptor::parse_pdu(pdu).map_err(|e| SessionError::Malformed(e.to_string()))?;
        let ki = kd.key_information;
        if ki.request() {
            return Err(SessionError::UnexpectedMessage {
                expected: "an EAPOL-Key handshake message",
                got: "a key request (it travels under KMP ID 1)".into(),
            });
        }
        if ki.descriptor_version() != self.config().descriptor_version.to_u8() {
            return Err(unexpected("the configured descriptor version", ki));
        }
        let r = match self.role {
            PaeRole::Authenticator => self.on_authenticator(now, pdu, &kd),
            PaeRole::Supplicant => self.on_supplicant(now, pdu, &kd),
        };
        if let Err(e) = &r {
            tracing::debug!(peer = %self.peer, kmp = %self.kmp(), error = %e, "EAPOL-Key dropped");
        }
        r
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        match (&self.state, self.role) {
            (State::Done { .. }, _) => {
                self.state = State::Closed;
                self.deadline = None;
            }
            (
                State::ExpectM2 { .. } | State::ExpectM4 { .. } | State::ExpectG2 { .. },
                PaeRole::Authenticator,
            ) => {
                if self.attempts >= self.config().max_retries {
                    let reason = if self.bad_mics > 0 {
                        FailureReason::AuthenticationFailed
                    } else {
                        FailureReason::Timeout {
                            attempts: self.attempts + 1,
                        }
                    };
                    self.fail(reason);
                    return;
                }
                self.attempts += 1;
                let r = match self.state {
                    State::ExpectM2 { .. } => self.send_m1(),
                    State::ExpectM4 { .. } => self.send_m3(),
                    _ => self.send_g1(),
                };
                match r {
                    Ok(()) => self.arm(now),
                    Err(e) => self.fail(FailureReason::Internal(e.to_string())),
                }
            }
            (State::ExpectM3 { .. }, _) => self.fail(FailureReason::Timeout { attempts: 1 }),
            _ => self.deadline = None,
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn delete(&mut self, _now: Instant) {
        if !matches!(self.state, State::Closed | State::Done { .. }) {
            self.fail(FailureReason::Deleted);
        }
        self.state = State::Closed;
        self.deadline = None;
    }

    fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }
}

/// Makes sessions of one of the two handshakes.
pub struct HandshakeFactory {
    kind: Kind,
    shared: Arc<Shared>,
}

impl HandshakeFactory {
    /// The 4-way handshake factory (KMP ID 6) and the group-key handshake factory (KMP ID 7)
    /// over one configuration, PMK cache and GTK set. The configured GTKs are put into `gtks`.
    pub fn pair(
        config: HandshakeConfig,
        pmks: PmkCache,
        gtks: GtkSet,
    ) -> Result<(HandshakeFactory, HandshakeFactory), SessionError> {
        for g in &config.gtks {
            gtks.insert(g.clone())?;
        }
        let shared = Arc::new(Shared { config, pmks, gtks });
        Ok((
            HandshakeFactory {
                kind: Kind::FourWay,
                shared: Arc::clone(&shared),
            },
            HandshakeFactory {
                kind: Kind::GroupKey,
                shared,
            },
        ))
    }

    /// The PMK cache the sessions use.
    pub fn pmk_cache(&self) -> &PmkCache {
        &self.shared.pmks
    }

    /// The authenticator's GTK set.
    pub fn gtks(&self) -> &GtkSet {
        &self.shared.gtks
    }

    fn session(&self, ctx: SessionContext) -> Box<dyn KmpSession> {
        Box::new(HandshakeSession::new(
            self.kind,
            Arc::clone(&self.shared),
            ctx,
        ))
    }
}

impl KmpFactory for HandshakeFactory {
    fn kmp_id(&self) -> KmpId {
        match self.kind {
            Kind::FourWay => KmpId::Ieee80211FourWay,
            Kind::GroupKey => KmpId::Ieee80211GroupKey,
        }
    }

    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(self.session(SessionContext {
            role: Role::Initiator,
            ..ctx
        }))
    }

    /// Accepts only a message 1 (4-way: pairwise, Ack, no MIC; group: group, Ack, MIC).
    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        let (_, kd) = KeyDescriptor::parse_pdu(first_pdu)
            .map_err(|e| SessionError::Malformed(e.to_string()))?;
        let ki = kd.key_information;
        let ok = match self.kind {
            Kind::FourWay => ki.pairwise() && ki.ack() && !ki.mic(),
            Kind::GroupKey => !ki.pairwise() && ki.ack() && ki.mic(),
        };
        if !ok || ki.request() {
            return Err(unexpected("message 1", ki));
        }
        Ok(self.session(SessionContext {
            role: Role::Responder,
            ..ctx
        }))
    }
}

fn make(config: &str, kind: Kind) -> Result<Arc<dyn KmpFactory>, SessionError> {
    static GTKS: std::sync::OnceLock<GtkSet> = std::sync::OnceLock::new();
    let cfg = HandshakeConfig::from_toml(config)?;
    let (four, group) = HandshakeFactory::pair(
        cfg,
        PmkCache::global(),
        GTKS.get_or_init(GtkSet::new).clone(),
    )?;
    Ok(Arc::new(match kind {
        Kind::FourWay => four,
        Kind::GroupKey => group,
    }))
}

fn make_four_way(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    make(config, Kind::FourWay)
}

fn make_group_key(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    make(config, Kind::GroupKey)
}

inventory::submit! {
    kmp_api::registry::KmpRegistration::new(KmpId::Ieee80211FourWay, "ieee80211-4way", make_four_way)
}

inventory::submit! {
    kmp_api::registry::KmpRegistration::new(KmpId::Ieee80211GroupKey, "ieee80211-group-key", make_group_key)
}
