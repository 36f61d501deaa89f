//! A [`Backend`] that relays pass-through EAP to RADIUS servers (RFC 3579) with the `radius`
//! crate's [`RadiusClient`]: cargo feature `radius` (on by default), configured by the
//! `[radius]` table of the PAE configuration ([`RadiusSettings`], decision B6).
//!
//! Two layers:
//!
//! - [`RadiusBackendCore`] is sans-IO: conversations keyed by (local, peer) with their
//!   User-Name and State, one [`RadiusClient`] (retransmission, failover between the configured
//!   servers, hold-down), the answers waiting to be polled, and counters. It takes `now`,
//!   datagrams and EAP responses, and hands out datagrams to send.
//! - [`RadiusBackend`] owns one non-blocking UDP socket and a monotonic clock and implements
//!   [`Backend`]: [`Backend::submit`] builds and sends the Access-Request at once (a UDP
//!   `send_to` on a non-blocking socket never waits); [`Backend::poll`] first drives the core
//!   ([`RadiusBackend::drive`]: every datagram waiting on the socket, then the RADIUS timers),
//!   then takes the conversation's answer. Nothing blocks and there is no thread.
//!
//! # Waking the session
//!
//! A pass-through session polls its backend every [`super::PaeConfig::backend_poll`] while an
//! answer is due, and each poll drives the socket and the timers; so with no help from the
//! runtime an answer reaches its session within one poll interval (50 ms by default;
//! `backend_poll_ms` makes it shorter), and retransmissions and failover run on time to within
//! that interval (they are seconds apart). That is the mechanism the actix runtime uses today.
//! A runtime with a reactor can do better: watch [`RadiusBackend::socket`] for readability,
//! call [`RadiusBackend::drive`], which returns the conversations that have a fresh answer (and
//! calls the hook set with [`RadiusBackend::set_notify`]), and call `handle_timeout(now)` on
//! those sessions at once (an early call is harmless); [`RadiusBackend::poll_timeout`] says when
//! the RADIUS timers need the next `drive`.
//!
//! # Mapping
//!
//! - The first EAP Response of a conversation is the Identity Response: its type-data becomes
//!   the User-Name of every Access-Request of the conversation (RFC 3579 §2.1). The
//!   Called-Station-Id is the authenticator's EUI-64 and the Calling-Station-Id the
//!   supplicant's, as `02-00-00-00-00-00-00-01` (RFC 3580 §3.20, with 8 octets).
//! - Access-Challenge → [`BackendAnswer::Request`], and its State goes into the next
//!   Access-Request of that conversation (to the server that issued it first); Access-Accept →
//!   [`BackendAnswer::Accept`] with the EAP Success and MSK = MS-MPPE-Recv-Key ‖
//!   MS-MPPE-Send-Key (decision A1; an Accept without keys makes the session fail, since no
//!   PMK can be made); Access-Reject → [`BackendAnswer::Reject`]; every server out of
//!   transmissions, or a reply the client could not use → [`BackendAnswer::Timeout`], logged
//!   with the reason.
//! - Every Access-Request carries a Message-Authenticator, and a reply without a valid one is
//!   dropped and counted (decision A2; the `radius` client does both).
//! - At most [`RadiusBackendCore::MAX_CONVERSATIONS`] conversations are kept; one with no
//!   activity for [`RadiusBackendCore::CONVERSATION_TIMEOUT`] is forgotten (a session that went
//!   away without `abandon`). A new conversation that finds the table full pushes out the one
//!   with the oldest activity (logged and counted): the runtime's session table is bounded
//!   too, so a full table means sessions went away silently. A session that polls for a
//!   conversation no longer held gets [`BackendAnswer::Timeout`].

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard, PoisonError};

use kmp_api::addr::ExtendedAddress;
use kmp_api::rng::RngHandle;
use kmp_api::session::SessionError;
use kmp_api::time::{Duration, Instant};
use radius::client::{
    AccessRequest, ClientConfig, Counters, Event, RadiusClient, Reply, RequestHandle, ServerConfig,
    State, Transmit,
};

use super::backend::{Backend, BackendAnswer, BackendKey};
use super::config::RadiusSettings;

/// What the backend did, for operators (the RADIUS client's own counters are in
/// [`RadiusBackendCore::radius_counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Conversations started (first submit for a key).
    pub conversations: u64,
    /// EAP responses relayed in Access-Requests.
    pub requests: u64,
    /// Access-Challenges relayed to a session.
    pub challenges: u64,
    /// Access-Accepts.
    pub accepts: u64,
    /// Access-Accepts without MS-MPPE keys (the session fails).
    pub accepts_without_msk: u64,
    /// Access-Rejects.
    pub rejects: u64,
    /// Requests that ended without a usable reply (answered `Timeout`).
    pub no_answer: u64,
    /// Submits refused by the RADIUS client (request not encodable, no Identifier free),
    /// answered `Timeout`.
    pub refused: u64,
    /// Conversations dropped to make room (the table held
    /// [`RadiusBackendCore::MAX_CONVERSATIONS`]).
    pub evicted: u64,
    /// Conversations forgotten after [`RadiusBackendCore::CONVERSATION_TIMEOUT`].
    pub expired: u64,
    /// Datagrams the socket failed to send (left to the retransmission timer).
    pub send_errors: u64,
    /// Socket receive errors other than "nothing there".
    pub receive_errors: u64,
}

#[derive(Debug)]
struct Conversation {
    user_name: Vec<u8>,
    state: Option<State>,
    request: Option<RequestHandle>,
    answer: Option<BackendAnswer>,
    last_activity: Instant,
}

/// The sans-IO part of the RADIUS backend; see the [module docs](self).
#[derive(Debug)]
pub struct RadiusBackendCore {
    client: RadiusClient,
    conversations: HashMap<BackendKey, Conversation>,
    by_request: HashMap<RequestHandle, BackendKey>,
    ready: Vec<BackendKey>,
    next_sweep: Instant,
    counters: BackendCounters,
}

fn station_id(a: ExtendedAddress) -> Vec<u8> {
    a.0.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join("-")
        .into_bytes()
}

/// The type-data of an EAP Response/Identity (code 2, type 1), if `eap` is one.
fn identity_of(eap: &[u8]) -> Option<&[u8]> {
    if eap.len() < 5 || eap[0] != 2 || eap[4] != 1 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([eap[2], eap[3]]));
    eap.get(5..len)
}

impl RadiusBackendCore {
    /// Conversations kept at most.
    pub const MAX_CONVERSATIONS: usize = 4096;
    /// A conversation with no submit or answer for this long is forgotten.
    pub const CONVERSATION_TIMEOUT: Duration = Duration::from_secs(300);

    /// A core for `settings`; `rng` makes the Request Authenticators.
    pub fn new(
        settings: &RadiusSettings,
        rng: RngHandle,
    ) -> Result<RadiusBackendCore, SessionError> {
        let servers = settings
            .servers
            .iter()
            .map(|s| ServerConfig {
                addr: s.addr,
                secret: s.secret.clone(),
            })
            .collect();
        let mut config = ClientConfig::new(servers, &settings.nas_identifier);
        config.retransmit_timeout = settings.retransmit_timeout;
        config.max_transmissions = settings.max_transmissions;
        config.dead_time = settings.dead_time;
        config.framed_mtu = settings.framed_mtu;
        let client = RadiusClient::new(config, rng)
            .map_err(|e| SessionError::Config(format!("802.1X: radius: {e}")))?;
        Ok(RadiusBackendCore {
            client,
            conversations: HashMap::new(),
            by_request: HashMap::new(),
            ready: Vec::new(),
            next_sweep: Instant::ZERO,
            counters: BackendCounters::default(),
        })
    }

    /// The backend's counters.
    pub fn counters(&self) -> &BackendCounters {
        &self.counters
    }

    /// The RADIUS client's counters (retransmissions, failovers, dropped replies by reason).
    pub fn radius_counters(&self) -> &Counters {
        self.client.counters()
    }

    /// Whether configured server `index` is not held down at `now`.
    pub fn server_alive(&self, index: usize, now: Instant) -> bool {
        self.client.server_alive(index, now)
    }

    /// Conversations held.
    pub fn conversations(&self) -> usize {
        self.conversations.len()
    }

    fn answer(&mut self, key: BackendKey, answer: BackendAnswer, now: Instant) {
        if let Some(c) = self.conversations.get_mut(&key) {
            c.answer = Some(answer);
            c.request = None;
            c.last_activity = now;
            self.ready.push(key);
        }
    }

    /// Relays `eap_response` of conversation `key` in an Access-Request; the datagram is queued
    /// for [`RadiusBackendCore::poll_transmit`].
    pub fn submit(&mut self, now: Instant, key: BackendKey, eap_response: &[u8]) {
        self.sweep(now);
        if !self.conversations.contains_key(&key) {
            if self.conversations.len() >= Self::MAX_CONVERSATIONS {
                self.evict_oldest();
            }
            self.counters.conversations += 1;
            self.conversations
                .insert(key, Self::conversation(now, eap_response));
        }
        let Some(conv) = self.conversations.get_mut(&key) else {
            return;
        };
        if let Some(old) = conv.request.take() {
            // A new response replaces the one still at the server (the session moved on).
            self.client.cancel(old);
            self.by_request.remove(&old);
        }
        conv.answer = None;
        conv.last_activity = now;
        let request = AccessRequest {
            user_name: conv.user_name.clone(),
            eap_message: eap_response.to_vec(),
            state: conv.state.take(),
            called_station_id: Some(station_id(key.local)),
            calling_station_id: Some(station_id(key.peer)),
        };
        match self.client.send(now, request) {
            Ok(handle) => {
                self.counters.requests += 1;
                conv.request = Some(handle);
                self.by_request.insert(handle, key);
            }
            Err(e) => {
                self.counters.refused += 1;
                tracing::warn!(peer = %key.peer, error = %e, "RADIUS backend: Access-Request not sent");
                self.answer(key, BackendAnswer::Timeout, now);
            }
        }
    }

    /// Makes room: the conversation with the oldest activity goes (its session most likely
    /// went away without `abandon`; if not, its next poll gets `Timeout`).
    fn evict_oldest(&mut self) {
        let oldest = self
            .conversations
            .iter()
            .min_by_key(|(_, c)| c.last_activity)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.counters.evicted += 1;
            tracing::warn!(peer = %key.peer, "RADIUS backend: conversation table full; oldest conversation dropped");
            self.abandon(key);
        }
    }

    fn conversation(now: Instant, first: &[u8]) -> Conversation {
        Conversation {
            user_name: identity_of(first).map(<[u8]>::to_vec).unwrap_or_default(),
            state: None,
            request: None,
            answer: None,
            last_activity: now,
        }
    }

    /// The answer for `key`, once (taken). A conversation the backend no longer holds (dropped
    /// from a full table, or expired) is answered [`BackendAnswer::Timeout`]: sessions poll
    /// only after a submit, so the session is still waiting for it.
    pub fn poll(&mut self, key: BackendKey) -> Option<BackendAnswer> {
        match self.conversations.get_mut(&key) {
            Some(c) => c.answer.take(),
            None => Some(BackendAnswer::Timeout),
        }
    }

    /// Forgets conversation `key` and cancels its request, if any.
    pub fn abandon(&mut self, key: BackendKey) {
        if let Some(c) = self.conversations.remove(&key)
            && let Some(h) = c.request
        {
            self.client.cancel(h);
            self.by_request.remove(&h);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.client.poll_transmit()
    }

    /// One datagram received from `from`; anything but a valid reply to an outstanding request
    /// is dropped, counted and logged by the RADIUS client.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let _ = self.client.handle_reply(now, from, datagram);
        self.events(now);
    }

    /// Runs the RADIUS timers (retransmission, failover, giving up) and the expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
            self.events(now);
        }
        self.sweep(now);
    }

    /// When [`RadiusBackendCore::handle_timeout`] is due next (a request is outstanding).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// The conversations whose answer arrived since the last call.
    pub fn take_ready(&mut self) -> Vec<BackendKey> {
        std::mem::take(&mut self.ready)
    }

    fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now
            .checked_add(Duration::from_secs(1))
            .unwrap_or(Instant::from_micros(u64::MAX));
        let stale: Vec<BackendKey> = self
            .conversations
            .iter()
            .filter(|(_, c)| {
                c.last_activity
                    .checked_add(Self::CONVERSATION_TIMEOUT)
                    .is_some_and(|t| t <= now)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.counters.expired += 1;
            tracing::info!(peer = %key.peer, "RADIUS backend: idle conversation forgotten");
            self.abandon(key);
        }
    }

    fn events(&mut self, now: Instant) {
        while let Some(ev) = self.client.poll_event() {
            let (request, answer) = match ev {
                Event::Reply { request, reply } => {
                    let Some(key) = self.by_request.get(&request).copied() else {
                        continue;
                    };
                    let answer = match reply {
                        Reply::Challenge(c) => {
                            self.counters.challenges += 1;
                            if let Some(conv) = self.conversations.get_mut(&key) {
                                conv.state = c.state;
                            }
                            BackendAnswer::Request(c.eap_message)
                        }
                        Reply::Accept(a) => {
                            self.counters.accepts += 1;
                            if a.msk.is_none() {
                                self.counters.accepts_without_msk += 1;
                                tracing::warn!(peer = %key.peer, "RADIUS Access-Accept without MS-MPPE keys");
                            }
                            BackendAnswer::Accept {
                                eap: a.eap_message,
                                msk: a.msk,
                            }
                        }
                        Reply::Reject(r) => {
                            self.counters.rejects += 1;
                            tracing::info!(peer = %key.peer, "RADIUS Access-Reject");
                            BackendAnswer::Reject(r.eap_message)
                        }
                    };
                    (request, answer)
                }
                Event::Failed { request, error } => {
                    self.counters.no_answer += 1;
                    if let Some(key) = self.by_request.get(&request) {
                        tracing::warn!(peer = %key.peer, %error, "RADIUS request failed");
                    }
                    (request, BackendAnswer::Timeout)
                }
            };
            if let Some(key) = self.by_request.remove(&request) {
                self.answer(key, answer, now);
            }
        }
    }
}

type Notify = Box<dyn Fn(BackendKey) + Send + Sync>;

/// The RADIUS backend on one non-blocking UDP socket; see the [module docs](self).
pub struct RadiusBackend {
    core: Mutex<RadiusBackendCore>,
    socket: UdpSocket,
    epoch: std::time::Instant,
    notify: Option<Notify>,
}

impl core::fmt::Debug for RadiusBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RadiusBackend")
            .field("socket", &self.socket.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// The largest datagram read (RADIUS packets are at most 4096 octets; one more shows a longer
/// one, which the client drops as malformed).
const RECV_BUF: usize = radius::wire::MAX_LEN + 1;
/// Datagrams read per [`RadiusBackend::drive`] at most, so one call stays short under a flood.
const MAX_READS: usize = 256;

impl RadiusBackend {
    /// Binds the socket to `settings.bind` for a backend with the OS random source.
    pub fn bind(settings: &RadiusSettings) -> Result<RadiusBackend, SessionError> {
        RadiusBackend::bind_with_rng(settings, RngHandle::os())
    }

    /// As [`RadiusBackend::bind`] with an explicit random source.
    pub fn bind_with_rng(
        settings: &RadiusSettings,
        rng: RngHandle,
    ) -> Result<RadiusBackend, SessionError> {
        let core = RadiusBackendCore::new(settings, rng)?;
        let io = |e: io::Error| {
            SessionError::Config(format!(
                "802.1X: radius: UDP socket on {}: {e}",
                settings.bind
            ))
        };
        let socket = UdpSocket::bind(settings.bind).map_err(io)?;
        socket.set_nonblocking(true).map_err(io)?;
        Ok(RadiusBackend {
            core: Mutex::new(core),
            socket,
            epoch: std::time::Instant::now(),
            notify: None,
        })
    }

    /// Calls `f` from [`RadiusBackend::drive`] for each conversation with a fresh answer.
    pub fn set_notify(&mut self, f: impl Fn(BackendKey) + Send + Sync + 'static) {
        self.notify = Some(Box::new(f));
    }

    /// The socket (to watch for readability).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The backend's clock: time since it was bound.
    pub fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> MutexGuard<'_, RadiusBackendCore> {
        // The core keeps no invariant a panic elsewhere could break half-way.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads from the core under its lock (counters, server state).
    pub fn with_core<T>(&self, f: impl FnOnce(&RadiusBackendCore) -> T) -> T {
        f(&self.lock())
    }

    fn flush(&self, core: &mut RadiusBackendCore) {
        while let Some(tx) = core.poll_transmit() {
            if let Err(e) = self.socket.send_to(&tx.packet, tx.destination) {
                core.counters.send_errors += 1;
                tracing::warn!(to = %tx.destination, error = %e, "RADIUS send failed");
            }
        }
    }

    /// Reads every datagram waiting on the socket, runs the RADIUS timers, sends what they
    /// produced, and returns the conversations that have a fresh answer (calling the
    /// [`RadiusBackend::set_notify`] hook for each). Never blocks.
    pub fn drive(&self) -> Vec<BackendKey> {
        let ready = {
            let mut core = self.lock();
            let mut buf = [0u8; RECV_BUF];
            for _ in 0..MAX_READS {
                match self.socket.recv_from(&mut buf) {
                    Ok((n, from)) => core.handle_datagram(self.now(), from, &buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // ICMP errors reported on the socket and the like: the timers retry.
                        core.counters.receive_errors += 1;
                        tracing::debug!(error = %e, "RADIUS receive error");
                        break;
                    }
                }
            }
            core.handle_timeout(self.now());
            self.flush(&mut core);
            core.take_ready()
        };
        if let Some(f) = &self.notify {
            for key in &ready {
                f(*key);
            }
        }
        ready
    }

    /// How long until the RADIUS timers need [`RadiusBackend::drive`] (`None`: no request
    /// outstanding).
    pub fn poll_timeout(&self) -> Option<std::time::Duration> {
        let now = self.now();
        self.lock()
            .poll_timeout()
            .map(|t| std::time::Duration::from_micros(t.saturating_duration_since(now).as_micros()))
    }
}

impl Backend for RadiusBackend {
    fn submit(&self, key: BackendKey, eap_response: &[u8]) {
        let mut core = self.lock();
        core.submit(self.now(), key, eap_response);
        self.flush(&mut core);
    }

    fn poll(&self, key: BackendKey) -> Option<BackendAnswer> {
        self.drive();
        self.lock().poll(key)
    }

    fn abandon(&self, key: BackendKey) {
        self.lock().abandon(key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::pae::config::RadiusServer;
    use kmp_api::session::SecretBytes;
    use radius::wire::{self, Attribute, Code, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, Packet, Repr};

    const SECRET: &[u8] = b"core-test-secret";
    const A: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1812);
    const B: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1813);

    fn key(n: u8) -> BackendKey {
        BackendKey {
            local: ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]),
            peer: ExtendedAddress([2, 0, 0, 0, 0, 0, 0, n]),
        }
    }

    fn core(servers: &[SocketAddr]) -> RadiusBackendCore {
        let servers = servers
            .iter()
            .map(|a| RadiusServer {
                addr: *a,
                secret: SecretBytes::from_slice(SECRET),
            })
            .collect();
        let mut s = RadiusSettings::new(servers, b"nas-core");
        s.retransmit_timeout = Duration::from_millis(100);
        s.max_transmissions = 2;
        RadiusBackendCore::new(&s, RngHandle::seeded(5)).unwrap()
    }

    fn identity(id: u8, name: &[u8]) -> Vec<u8> {
        let mut e = vec![2, id, 0, 0, 1];
        e.extend_from_slice(name);
        let l = u16::try_from(e.len()).unwrap();
        e[2..4].copy_from_slice(&l.to_be_bytes());
        e
    }

    /// The request just sent, parsed.
    fn sent(c: &mut RadiusBackendCore) -> (Transmit, Repr) {
        let tx = c.poll_transmit().expect("a datagram");
        let repr = Repr::parse(&Packet::new_checked(&tx.packet[..]).unwrap()).unwrap();
        wire::verify_message_authenticator(&tx.packet, &repr.authenticator, SECRET).unwrap();
        (tx, repr)
    }

    /// A signed reply with `code` to `req`, with `attrs` and a Message-Authenticator.
    fn reply(req: &Repr, code: Code, attrs: Vec<Attribute>, with_ma: bool) -> Vec<u8> {
        let mut attributes = attrs;
        if with_ma {
            attributes.push(Attribute::MessageAuthenticator([0; 16]));
        }
        let mut b = Repr {
            code,
            identifier: req.identifier,
            authenticator: [0; 16],
            attributes,
        }
        .to_bytes()
        .unwrap();
        wire::sign_response(&mut b, &req.authenticator, SECRET).unwrap();
        b
    }

    fn user_name(r: &Repr) -> Option<&[u8]> {
        r.attributes.iter().find_map(|a| match a {
            Attribute::UserName(u) => Some(&u[..]),
            _ => None,
        })
    }

    #[test]
    fn challenge_state_accept_and_msk() {
        let mut c = core(&[A]);
        let now = Instant::ZERO;
        c.submit(now, key(2), &identity(7, b"node-2"));
        let (tx, r1) = sent(&mut c);
        assert_eq!(tx.destination, A);
        assert_eq!(user_name(&r1), Some(&b"node-2"[..]));
        assert_eq!(r1.state(), None);
        assert!(c.poll(key(2)).is_none());
        // Challenge with State.
        let req = vec![1, 8, 0, 6, 47, 0];
        let d = reply(
            &r1,
            Code::AccessChallenge,
            vec![
                Attribute::EapMessage(req.clone()),
                Attribute::State(b"st-1".to_vec()),
            ],
            true,
        );
        c.handle_datagram(now, A, &d);
        assert_eq!(c.take_ready(), vec![key(2)]);
        assert_eq!(c.poll(key(2)), Some(BackendAnswer::Request(req)));
        assert_eq!(c.poll(key(2)), None, "taken once");
        // The next request carries the State and the same User-Name.
        c.submit(now, key(2), &[2, 8, 0, 6, 47, 0]);
        let (_, r2) = sent(&mut c);
        assert_eq!(r2.state(), Some(&b"st-1"[..]));
        assert_eq!(user_name(&r2), Some(&b"node-2"[..]));
        // A reply without Message-Authenticator is dropped.
        let bare = reply(&r2, Code::AccessAccept, vec![], false);
        c.handle_datagram(now, A, &bare);
        assert!(c.poll(key(2)).is_none());
        assert_eq!(c.radius_counters().missing_message_authenticator, 1);
        // Accept with the MS-MPPE keys.
        let k = |t: u8, v: u8, salt: [u8; 2]| {
            let enc = wire::encrypt_mppe_key(&[v; 32], salt, SECRET, &r2.authenticator).unwrap();
            Attribute::VendorSpecific(wire::VendorSpecific::microsoft(t, &enc))
        };
        let d = reply(
            &r2,
            Code::AccessAccept,
            vec![
                Attribute::EapMessage(vec![3, 8, 0, 4]),
                k(MS_MPPE_RECV_KEY, 0x11, [0x81, 1]),
                k(MS_MPPE_SEND_KEY, 0x22, [0x82, 2]),
            ],
            true,
        );
        c.handle_datagram(now, A, &d);
        let Some(BackendAnswer::Accept { eap, msk }) = c.poll(key(2)) else {
            panic!("expected Accept")
        };
        assert_eq!(eap, Some(vec![3, 8, 0, 4]));
        assert_eq!(msk.unwrap().expose(), [[0x11; 32], [0x22; 32]].concat());
        let n = c.counters();
        assert_eq!(
            (n.conversations, n.requests, n.challenges, n.accepts),
            (1, 2, 1, 1)
        );
        c.abandon(key(2));
        assert_eq!(c.conversations(), 0);
    }

    #[test]
    fn reject_and_conversations_apart() {
        let mut c = core(&[A]);
        let now = Instant::ZERO;
        c.submit(now, key(2), &identity(1, b"two"));
        let (_, r2) = sent(&mut c);
        c.submit(now, key(3), &identity(1, b"three"));
        let (_, r3) = sent(&mut c);
        assert_eq!(user_name(&r3), Some(&b"three"[..]));
        c.handle_datagram(
            now,
            A,
            &reply(
                &r3,
                Code::AccessReject,
                vec![Attribute::EapMessage(vec![4, 1, 0, 4])],
                true,
            ),
        );
        assert!(c.poll(key(2)).is_none());
        assert_eq!(
            c.poll(key(3)),
            Some(BackendAnswer::Reject(Some(vec![4, 1, 0, 4])))
        );
        // An Accept without keys is passed on (the session fails: no PMK).
        c.handle_datagram(now, A, &reply(&r2, Code::AccessAccept, vec![], true));
        assert_eq!(
            c.poll(key(2)),
            Some(BackendAnswer::Accept {
                eap: None,
                msk: None
            })
        );
        assert_eq!(c.counters().accepts_without_msk, 1);
    }

    #[test]
    fn silence_fails_over_then_times_out() {
        let mut c = core(&[A, B]);
        let mut now = Instant::ZERO;
        c.submit(now, key(2), &identity(1, b"two"));
        let mut to = vec![sent(&mut c).0.destination];
        while let Some(t) = c.poll_timeout() {
            now = t;
            c.handle_timeout(now);
            while let Some(tx) = c.poll_transmit() {
                to.push(tx.destination);
            }
        }
        // Two to each server, then giving up.
        assert_eq!(to, vec![A, A, B, B]);
        assert_eq!(c.poll(key(2)), Some(BackendAnswer::Timeout));
        assert_eq!(c.counters().no_answer, 1);
        assert_eq!(c.radius_counters().failovers, 1);
        assert!(!c.server_alive(0, now) && !c.server_alive(1, now));
    }

    #[test]
    fn abandon_cancels_and_late_replies_are_dropped() {
        let mut c = core(&[A]);
        let now = Instant::ZERO;
        c.submit(now, key(2), &identity(1, b"two"));
        let (_, r) = sent(&mut c);
        c.abandon(key(2));
        assert_eq!(c.poll_timeout(), None, "request cancelled");
        c.handle_datagram(now, A, &reply(&r, Code::AccessReject, vec![], true));
        assert_eq!(c.radius_counters().unknown_identifier, 1);
        // A conversation no longer held answers Timeout (its session would wait forever).
        assert_eq!(c.poll(key(2)), Some(BackendAnswer::Timeout));
    }

    #[test]
    fn idle_conversations_expire() {
        let mut c = core(&[A]);
        c.submit(Instant::ZERO, key(2), &identity(1, b"two"));
        let _ = sent(&mut c);
        let later = Instant::ZERO
            .checked_add(RadiusBackendCore::CONVERSATION_TIMEOUT)
            .unwrap();
        c.handle_timeout(later);
        assert_eq!(c.conversations(), 0);
        assert_eq!(c.counters().expired, 1);
        assert_eq!(c.poll(key(2)), Some(BackendAnswer::Timeout));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any datagram from the server, raw or a reply to the outstanding request with a
        /// tampered octet, leaves the conversation waiting: no answer, no panic.
        #[test]
        fn garbage_replies_are_dropped(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            flip in 0usize..64,
        ) {
            let mut c = core(&[A]);
            let now = Instant::ZERO;
            c.submit(now, key(2), &identity(1, b"two"));
            let (_, r) = sent(&mut c);
            c.handle_datagram(now, A, &raw);
            let mut good = reply(&r, Code::AccessChallenge, vec![Attribute::EapMessage(vec![1, 2, 0, 4])], true);
            let i = flip % good.len();
            good[i] ^= 0x40;
            c.handle_datagram(now, A, &good);
            proptest::prop_assert!(c.take_ready().is_empty());
            proptest::prop_assert_eq!(c.poll(key(2)), None);
            proptest::prop_assert_eq!(c.counters().accepts + c.counters().rejects, 0);
        }
    }

    #[test]
    fn identity_parsing() {
        assert_eq!(identity_of(&identity(1, b"x")), Some(&b"x"[..]));
        assert_eq!(identity_of(&[2, 1, 0, 5, 2]), None, "not Identity");
        assert_eq!(identity_of(&[1, 1, 0, 5, 1]), None, "a Request");
        assert_eq!(
            identity_of(&[2, 1, 0, 9, 1, b'x']),
            None,
            "Length beyond the data"
        );
        assert_eq!(identity_of(&[2, 1]), None);
        assert_eq!(station_id(key(2).peer), b"02-00-00-00-00-00-00-02");
    }

    #[test]
    fn over_udp_with_a_fake_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut s = RadiusSettings::new(
            vec![RadiusServer {
                addr: server.local_addr().unwrap(),
                secret: SecretBytes::from_slice(SECRET),
            }],
            b"nas-udp",
        );
        s.bind = "127.0.0.1:0".parse().unwrap();
        let mut b = RadiusBackend::bind(&s).unwrap();
        let notified = std::sync::Arc::new(Mutex::new(Vec::new()));
        let n2 = std::sync::Arc::clone(&notified);
        b.set_notify(move |k| n2.lock().unwrap().push(k));
        b.submit(key(2), &identity(3, b"two"));
        let mut buf = [0u8; 4096];
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        let req = Repr::parse(&Packet::new_checked(&buf[..n]).unwrap()).unwrap();
        server
            .send_to(&reply(&req, Code::AccessReject, vec![], true), from)
            .unwrap();
        let mut answer = None;
        for _ in 0..500 {
            answer = b.poll(key(2));
            if answer.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(answer, Some(BackendAnswer::Reject(None)));
        assert_eq!(notified.lock().unwrap().as_slice(), &[key(2)]);
        assert_eq!(b.with_core(|c| c.counters().rejects), 1);
        assert_eq!(b.poll_timeout(), None);
    }
}
