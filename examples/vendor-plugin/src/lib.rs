//! An example vendor KMP, built as a plugin: a pre-shared-key challenge-response exchange.
//!
//! It serves KMP ID 255 with the OUI 02:15:09. That OUI has the locally administered bit (0x02
//! in the first octet) set, so it cannot collide with an IEEE-assigned vendor; a real vendor
//! uses its own OUI.
//!
//! ```text
//! initiator                                        responder
//!   Challenge(N_I)            ───────────────▶
//!                             ◀─────────────── Response(N_R, MAC_R)
//!   verify MAC_R, install     ───────────────▶  Confirm(MAC_I)   verify MAC_I, install
//!
//! MAC_R = HMAC-SHA-256(PSK, "resp" || N_I || N_R || EUI_I || EUI_R)
//! MAC_I = HMAC-SHA-256(PSK, "init" || N_I || N_R || EUI_I || EUI_R)
//! key   = HMAC-SHA-256(PSK, "key"  || N_I || N_R || EUI_I || EUI_R)[..16]
//! ```
//!
//! Nonces are 16 octets; every message starts with a type octet (1, 2, 3). A wrong PSK fails
//! with `AuthenticationFailed` on the side that verifies first (the initiator); the other side
//! then times out. Messages are retransmitted every second, at most three times in all. The
//! initiator lingers five seconds after it finished to answer a repeated response.
//!
//! Configuration (TOML): `psk_hex = "…"` (at least 16 octets). `test_panic_on_start = true` makes
//! `start` panic: a hook for the tests of the plugin boundary, never for production.

use std::sync::Arc;

use kmp_api::crypto::hmac::{hmac_sha256_parts, sha256_parts};
use kmp_api::crypto::{SecretBytes, ct_eq};
use kmp_api::plugin::{LogLevel, log};
use kmp_api::security::{KeyIdentifier, SecurityLevel};
use kmp_api::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyScope, KmpFactory,
    KmpSession, LinkKey, Outcome, Role, SessionContext, SessionError,
};
use kmp_api::time::{Duration, Instant};
use kmp_api::{ExtendedAddress, KmpId, Oui, RngHandle};

/// The KMP ID this plugin serves.
pub const KMP_ID: KmpId = KmpId::VendorSpecific(Oui([0x02, 0x15, 0x09]));

/// Nonce length in octets.
pub const NONCE_LEN: usize = 16;
/// MAC length in octets.
pub const MAC_LEN: usize = 32;
/// Time between retransmissions.
pub const RETRANSMIT: Duration = Duration::from_secs(1);
/// Transmissions of one message before giving up.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a finished initiator still answers a repeated response.
pub const LINGER: Duration = Duration::from_secs(5);

const MSG_CHALLENGE: u8 = 1;
const MSG_RESPONSE: u8 = 2;
const MSG_CONFIRM: u8 = 3;

/// The configuration section.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    psk_hex: String,
    #[serde(default)]
    test_panic_on_start: bool,
}

/// Makes sessions that share one PSK.
#[derive(Debug)]
pub struct PskFactory {
    psk: Arc<SecretBytes>,
    panic_on_start: bool,
}

/// Builds the factory from TOML text.
pub fn make_factory(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    let c: Config = toml::from_str(config).map_err(|e| SessionError::Config(e.to_string()))?;
    let psk =
        hex::decode(c.psk_hex.trim()).map_err(|e| SessionError::Config(format!("psk_hex: {e}")))?;
    if psk.len() < 16 {
        return Err(SessionError::Config("psk_hex: at least 16 octets".into()));
    }
    Ok(Arc::new(PskFactory {
        psk: Arc::new(SecretBytes::new(psk)),
        panic_on_start: c.test_panic_on_start,
    }))
}

kmp_api::export_kmp_plugin!(KMP_ID, "vendor-psk", make_factory);

impl PskFactory {
    fn session(&self, ctx: SessionContext) -> PskSession {
        PskSession {
            psk: Arc::clone(&self.psk),
            role: ctx.role,
            local: ctx.local,
            peer: ctx.peer,
            rng: ctx.rng,
            panic_on_start: self.panic_on_start,
            state: State::Idle,
            actions: Vec::new(),
        }
    }
}

impl KmpFactory for PskFactory {
    fn kmp_id(&self) -> KmpId {
        KMP_ID
    }

    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(Box::new(self.session(ctx)))
    }

    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        if first_pdu.first() != Some(&MSG_CHALLENGE) {
            return Err(SessionError::UnexpectedMessage {
                expected: "challenge",
                got: format!("{:?}", first_pdu.first()),
            });
        }
        Ok(Box::new(self.session(ctx)))
    }
}

/// What a session waits for.
#[derive(Debug)]
enum State {
    /// Initiator before `start`, responder before the challenge.
    Idle,
    /// Initiator: sent the challenge.
    ExpectResponse {
        n_i: [u8; NONCE_LEN],
        deadline: Instant,
        attempts: u32,
    },
    /// Responder: sent the response.
    ExpectConfirm {
        n_i: [u8; NONCE_LEN],
        n_r: [u8; NONCE_LEN],
        response: Vec<u8>,
        deadline: Instant,
        attempts: u32,
    },
    /// Initiator after success: answers a repeated response with this confirm until `until`.
    Lingering {
        n_r: [u8; NONCE_LEN],
        confirm: Vec<u8>,
        until: Instant,
    },
    /// Ended.
    Closed,
}

/// One exchange.
pub struct PskSession {
    psk: Arc<SecretBytes>,
    role: Role,
    local: ExtendedAddress,
    peer: ExtendedAddress,
    rng: RngHandle,
    panic_on_start: bool,
    state: State,
    /// Pending actions, oldest first.
    actions: Vec<Action>,
}

impl PskSession {
    /// (initiator EUI-64, responder EUI-64)
    fn ids(&self) -> ([u8; 8], [u8; 8]) {
        match self.role {
            Role::Initiator => (self.local.0, self.peer.0),
            Role::Responder => (self.peer.0, self.local.0),
        }
    }

    fn prf(&self, label: &[u8], n_i: &[u8], n_r: &[u8]) -> Result<[u8; MAC_LEN], SessionError> {
        let (id_i, id_r) = self.ids();
        Ok(hmac_sha256_parts(
            self.psk.expose(),
            &[label, n_i, n_r, &id_i, &id_r],
        )?)
    }

    fn finish_success(&mut self, n_i: &[u8], n_r: &[u8]) -> Result<(), SessionError> {
        let key = self.prf(b"key", n_i, n_r)?;
        self.actions.push(Action::InstallKeys(KeyInstall {
            owner: KMP_ID,
            peer: self.peer,
            link_keys: vec![LinkKey {
                key: SecretBytes::from_slice(&key[..16]),
                lookup: KeyIdentifier::Implicit,
                scope: KeyScope::Pairwise(self.peer),
                direction: KeyDirection::Both,
                min_security_level: SecurityLevel::EncMic64,
                lifetime: None,
            }],
            upper_layer_sas: Vec::new(),
        }));
        let sid = sha256_parts(&[n_i, n_r]);
        self.actions
            .push(Action::Finished(Outcome::Success(EstablishedSa {
                peer: self.peer,
                session_id: sid[..8].to_vec(),
                lifetime: None,
                keys_installed: 1,
            })));
        log(
            LogLevel::Debug,
            &format!("vendor-psk: keys established with {:?}", self.peer),
        );
        Ok(())
    }

    fn fail(&mut self, why: FailureReason) {
        log(LogLevel::Info, &format!("vendor-psk: failed: {why}"));
        self.actions.push(Action::Finished(Outcome::Failure(why)));
        self.state = State::Closed;
    }
}

fn nonce(bytes: &[u8]) -> Result<[u8; NONCE_LEN], SessionError> {
    bytes
        .try_into()
        .map_err(|_| SessionError::Malformed("nonce length".into()))
}

impl KmpSession for PskSession {
    fn kmp_id(&self) -> KmpId {
        KMP_ID
    }

    fn role(&self) -> Role {
        self.role
    }

    fn peer(&self) -> ExtendedAddress {
        self.peer
    }

    fn start(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.panic_on_start {
            panic!("test_panic_on_start is set");
        }
        if self.role == Role::Responder || !matches!(self.state, State::Idle) {
            return Ok(());
        }
        let n_i: [u8; NONCE_LEN] = self.rng.array()?;
        let mut msg = vec![MSG_CHALLENGE];
        msg.extend_from_slice(&n_i);
        self.actions.push(Action::Send(msg));
        self.state = State::ExpectResponse {
            n_i,
            deadline: now + RETRANSMIT,
            attempts: 1,
        };
        Ok(())
    }

    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        let (&kind, body) = pdu
            .split_first()
            .ok_or_else(|| SessionError::Malformed("empty PDU".into()))?;
        match (&self.state, kind) {
            (State::Idle, MSG_CHALLENGE) if self.role == Role::Responder => {
                let n_i = nonce(body)?;
                let n_r: [u8; NONCE_LEN] = self.rng.array()?;
                let mac_r = self.prf(b"resp", &n_i, &n_r)?;
                let mut response = vec![MSG_RESPONSE];
                response.extend_from_slice(&n_r);
                response.extend_from_slice(&mac_r);
                self.actions.push(Action::Send(response.clone()));
                self.state = State::ExpectConfirm {
                    n_i,
                    n_r,
                    response,
                    deadline: now + RETRANSMIT,
                    attempts: 1,
                };
                Ok(())
            }
            (State::ExpectConfirm { n_i, response, .. }, MSG_CHALLENGE) => {
                // A retransmitted challenge: our response was lost.
                if body != n_i.as_slice() {
                    return Err(SessionError::UnexpectedMessage {
                        expected: "confirm",
                        got: "a challenge with another nonce".into(),
                    });
                }
                self.actions.push(Action::Send(response.clone()));
                Ok(())
            }
            (State::ExpectResponse { n_i, .. }, MSG_RESPONSE) => {
                if body.len() != NONCE_LEN + MAC_LEN {
                    return Err(SessionError::Malformed("response length".into()));
                }
                let n_i = *n_i;
                let n_r = nonce(&body[..NONCE_LEN])?;
                let expected = self.prf(b"resp", &n_i, &n_r)?;
                if !ct_eq(&expected, &body[NONCE_LEN..]) {
                    self.fail(FailureReason::AuthenticationFailed);
                    return Err(SessionError::VerificationFailed("response MAC"));
                }
                let mac_i = self.prf(b"init", &n_i, &n_r)?;
                let mut confirm = vec![MSG_CONFIRM];
                confirm.extend_from_slice(&mac_i);
                self.actions.push(Action::Send(confirm.clone()));
                self.finish_success(&n_i, &n_r)?;
                self.state = State::Lingering {
                    n_r,
                    confirm,
                    until: now + LINGER,
                };
                Ok(())
            }
            (State::Lingering { n_r, confirm, .. }, MSG_RESPONSE) => {
                if body.get(..NONCE_LEN) != Some(n_r.as_slice()) {
                    return Err(SessionError::Finished);
                }
                self.actions.push(Action::Send(confirm.clone()));
                Ok(())
            }
            (State::ExpectConfirm { n_i, n_r, .. }, MSG_CONFIRM) => {
                if body.len() != MAC_LEN {
                    return Err(SessionError::Malformed("confirm length".into()));
                }
                let (n_i, n_r) = (*n_i, *n_r);
                let expected = self.prf(b"init", &n_i, &n_r)?;
                if !ct_eq(&expected, body) {
                    self.fail(FailureReason::AuthenticationFailed);
                    return Err(SessionError::VerificationFailed("confirm MAC"));
                }
                self.finish_success(&n_i, &n_r)?;
                self.state = State::Closed;
                Ok(())
            }
            (State::Closed, _) => Err(SessionError::Finished),
            (state, got) => Err(SessionError::UnexpectedMessage {
                expected: match state {
                    State::Idle => "challenge",
                    State::ExpectResponse { .. } => "response",
                    State::ExpectConfirm { .. } => "confirm",
                    _ => "nothing",
                },
                got: format!("message type {got}"),
            }),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::ExpectResponse {
                n_i,
                deadline,
                attempts,
            } if now >= *deadline => {
                if *attempts >= MAX_ATTEMPTS {
                    let attempts = *attempts;
                    self.fail(FailureReason::Timeout { attempts });
                    return;
                }
                *attempts += 1;
                *deadline = now + RETRANSMIT;
                let mut msg = vec![MSG_CHALLENGE];
                msg.extend_from_slice(n_i);
                self.actions.push(Action::Send(msg));
            }
            State::ExpectConfirm {
                response,
                deadline,
                attempts,
                ..
            } if now >= *deadline => {
                if *attempts >= MAX_ATTEMPTS {
                    let attempts = *attempts;
                    self.fail(FailureReason::Timeout { attempts });
                    return;
                }
                *attempts += 1;
                *deadline = now + RETRANSMIT;
                self.actions.push(Action::Send(response.clone()));
            }
            State::Lingering { until, .. } if now >= *until => self.state = State::Closed,
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::ExpectResponse { deadline, .. } | State::ExpectConfirm { deadline, .. } => {
                Some(*deadline)
            }
            State::Lingering { until, .. } => Some(*until),
            State::Idle | State::Closed => None,
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        if self.actions.is_empty() {
            None
        } else {
            Some(self.actions.remove(0))
        }
    }

    fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.actions.is_empty()
    }
}
