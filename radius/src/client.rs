//! The RADIUS client state: Access-Requests out, validated replies in, retransmission and
//! failover on timers the caller drives (sans-IO).
//!
//! ```text
//! send(now, request) ──▶ poll_transmit() ──▶ (caller sends the datagram to Transmit::destination)
//! handle_reply(now, from, datagram)          (every datagram the socket receives)
//! handle_timeout(now)                        (when poll_timeout() has passed)
//! poll_event() ──▶ Event::Reply { Challenge | Accept | Reject } or Event::Failed
//! ```
//! Drain [`RadiusClient::poll_transmit`] and [`RadiusClient::poll_event`] after every call.
//!
//! - **Requests.** Every Access-Request carries a Message-Authenticator as its *first*
//!   attribute (RFC 3579 §3.2; the BlastRADIUS mitigation puts it first so no chosen prefix
//!   precedes it), a fresh random Request Authenticator, User-Name, NAS-IP-Address and/or
//!   NAS-Identifier (RFC 2865 §4.1 wants one), the optional station ids and Framed-MTU, the
//!   State of the Challenge it answers, and the EAP packet split into EAP-Message attributes
//!   (an empty EAP packet is sent as EAP-Start, RFC 3579 §2.1).
//! - **Replies.** A datagram is dropped (counted in [`Counters`], logged with `tracing`) unless
//!   it comes from a configured server's address, has a valid header, answers an outstanding
//!   Identifier of that server, is an Access-Accept, -Reject or -Challenge, has the right
//!   Response Authenticator (RFC 2865 §3), parses, and carries a Message-Authenticator that
//!   verifies (RFC 3579 §3.2). A reply without one is dropped whatever its code: this is the
//!   BlastRADIUS fix (CVE-2024-3596), and the same as FreeRADIUS's
//!   `require_message_authenticator = yes` on our side. Dropped replies leave the request
//!   outstanding (the genuine reply may still come); a duplicate of an answered reply finds
//!   no outstanding Identifier and is dropped.
//! - **Identifiers** are per server, handed out round robin, and never reused while a request
//!   holding one is outstanding; at 256 outstanding requests to a server it takes no more.
//! - **Retransmission** resends the identical datagram (same Identifier and Authenticator,
//!   RFC 5080 §2.2.1) every [`ClientConfig::retransmit_timeout`] until
//!   [`ClientConfig::max_transmissions`] datagrams went to that server. Then the server is
//!   held down for [`ClientConfig::dead_time`] and the request fails over to the next server
//!   not yet tried for it, as a new request (new Identifier and Request Authenticator, so the
//!   MS-MPPE keys are decrypted with the right one). When every server was tried, the request
//!   fails with [`RequestError::NoResponse`].
//! - **Server choice.** A new request goes to the first server in configuration order that is
//!   not held down; a request carrying State goes first to the server that issued it (another
//!   server would not know the conversation). If all are held down, configuration order is
//!   used anyway: hold-down only orders the choice, it never refuses to try. Any valid reply
//!   ends a server's hold-down.
//! - **Keys.** In an Access-Accept, MS-MPPE-Recv-Key and MS-MPPE-Send-Key (RFC 2548) are
//!   decrypted and returned as the MSK = Recv-Key ‖ Send-Key: RFC 2548 names the keys from the
//!   NAS's side (Recv: what the NAS receives with, i.e. the peer's send key), and RFC 2716
//!   §3.5 / RFC 5216 §2.3 put the first 32 octets of the MSK in MS-MPPE-Recv-Key and the
//!   second 32 in MS-MPPE-Send-Key. Both or neither must be present.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

use kmp_api::crypto::SecretBytes;
use kmp_api::rng::RngError;
use kmp_api::{Duration, Instant, RngHandle};

use crate::wire::{
    self, AUTHENTICATOR_LEN, Attribute, Code, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, Packet, Repr,
    WireError,
};

/// One RADIUS server: its address and the shared secret.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where Access-Requests go, and the only address replies are accepted from.
    pub addr: SocketAddr,
    /// The shared secret (not empty).
    pub secret: SecretBytes,
}

/// The client's configuration; [`ClientConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Servers in order of preference (at least one).
    pub servers: Vec<ServerConfig>,
    /// NAS-Identifier (RFC 2865 §5.32); this or `nas_ip_address` is required.
    pub nas_identifier: Option<Vec<u8>>,
    /// NAS-IP-Address (RFC 2865 §5.4).
    pub nas_ip_address: Option<Ipv4Addr>,
    /// Framed-MTU to send (RFC 3579 §2.4: the largest EAP packet the link carries).
    pub framed_mtu: Option<u32>,
    /// Time between transmissions of one request to one server. Default 2 s.
    pub retransmit_timeout: Duration,
    /// Datagrams sent to one server for one request before failing over (at least 1).
    /// Default 3.
    pub max_transmissions: u32,
    /// How long a server that let a request time out is passed over. Default 30 s.
    pub dead_time: Duration,
}

impl ClientConfig {
    /// The defaults with these servers and NAS-Identifier.
    pub fn new(servers: Vec<ServerConfig>, nas_identifier: &[u8]) -> ClientConfig {
        ClientConfig {
            servers,
            nas_identifier: Some(nas_identifier.to_vec()),
            nas_ip_address: None,
            framed_mtu: None,
            retransmit_timeout: Duration::from_secs(2),
            max_transmissions: 3,
            dead_time: Duration::from_secs(30),
        }
    }
}

/// A configuration the client cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No servers.
    #[error("no RADIUS servers configured")]
    NoServers,
    /// A server with an empty shared secret (RFC 2865 §3 forbids it).
    #[error("RADIUS server {0} has an empty shared secret")]
    EmptySecret(SocketAddr),
    /// Neither NAS-Identifier nor NAS-IP-Address (RFC 2865 §4.1).
    #[error("neither NAS-Identifier nor NAS-IP-Address configured")]
    NoNasIdentity,
    /// A NAS-Identifier that is empty or over 253 octets.
    #[error("NAS-Identifier must be 1..=253 octets")]
    BadNasIdentifier,
    /// `max_transmissions` or `retransmit_timeout` is zero.
    #[error("retransmission timeout and count must not be zero")]
    ZeroRetransmission,
}

/// A State value from an Access-Challenge, to echo in the next Access-Request (RFC 2865
/// §5.24), with the server that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    value: Vec<u8>,
    server: usize,
}

impl State {
    /// The octets.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Index (in [`ClientConfig::servers`]) of the server that sent it.
    pub fn server(&self) -> usize {
        self.server
    }
}

/// What to put in one Access-Request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRequest {
    /// User-Name: the identity from the peer's EAP-Response/Identity (RFC 3579 §2.1); omitted
    /// when empty.
    pub user_name: Vec<u8>,
    /// The EAP packet from the peer; empty means EAP-Start.
    pub eap_message: Vec<u8>,
    /// The State of the Challenge this answers.
    pub state: Option<State>,
    /// Called-Station-Id (the authenticator's address).
    pub called_station_id: Option<Vec<u8>>,
    /// Calling-Station-Id (the peer's address).
    pub calling_station_id: Option<Vec<u8>>,
}

/// Names one request from [`RadiusClient::send`] to its [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestHandle(u64);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Index of the server in [`ClientConfig::servers`].
    pub server: usize,
    /// Its address.
    pub destination: SocketAddr,
    /// The RADIUS packet.
    pub packet: Vec<u8>,
}

/// An Access-Challenge: relay the EAP packet to the peer and answer with this State.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The EAP request for the peer (EAP-Message attributes joined; never empty).
    pub eap_message: Vec<u8>,
    /// The State to echo, if the server sent one.
    pub state: Option<State>,
    /// Session-Timeout: how long the server waits for the answer, seconds.
    pub session_timeout: Option<u32>,
}

/// An Access-Accept.
#[derive(Debug, Clone)]
pub struct Accept {
    /// The EAP-Success (or whatever EAP packet the server sent) for the peer.
    pub eap_message: Option<Vec<u8>>,
    /// MSK = MS-MPPE-Recv-Key ‖ MS-MPPE-Send-Key (see the [module docs](self)), if the server
    /// sent keys.
    pub msk: Option<SecretBytes>,
    /// User-Name, if the server sent one (the authenticated identity).
    pub user_name: Option<Vec<u8>>,
    /// Class values, to copy into accounting (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// Session-Timeout, seconds.
    pub session_timeout: Option<u32>,
    /// Termination-Action (1: reauthenticate with RADIUS when the session times out).
    pub termination_action: Option<u32>,
}

/// An Access-Reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The EAP-Failure for the peer, if the server sent one.
    pub eap_message: Option<Vec<u8>>,
}

/// A validated reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Access-Challenge.
    Challenge(Challenge),
    /// Access-Accept.
    Accept(Accept),
    /// Access-Reject.
    Reject(Reject),
}

/// Why a request ended without a usable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Every server was tried `max_transmissions` times without a valid reply.
    #[error("no valid reply from {servers_tried} RADIUS server(s)")]
    NoResponse {
        /// Servers tried.
        servers_tried: usize,
    },
    /// An authentic Access-Challenge without an EAP packet (RFC 3579 §2.1 requires one).
    #[error("Access-Challenge without EAP-Message")]
    ChallengeWithoutEapMessage,
    /// An authentic Access-Accept with MS-MPPE keys that do not decrypt.
    #[error("MS-MPPE key: {0}")]
    MppeKey(WireError),
    /// An authentic Access-Accept with one MS-MPPE key but not the other, or several of one.
    #[error("Access-Accept with {recv} MS-MPPE-Recv-Key and {send} MS-MPPE-Send-Key")]
    MppeKeyCount {
        /// MS-MPPE-Recv-Key attributes.
        recv: usize,
        /// MS-MPPE-Send-Key attributes.
        send: usize,
    },
    /// No server could take the request on failover (all Identifiers in use).
    #[error("no free Identifier on any untried server")]
    NoIdentifier,
    /// The random source failed when the request moved to another server.
    #[error(transparent)]
    Rng(RngError),
}

/// What the client reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// The request was answered.
    Reply {
        /// Which request.
        request: RequestHandle,
        /// The server's answer.
        reply: Reply,
    },
    /// The request ended without an answer.
    Failed {
        /// Which request.
        request: RequestHandle,
        /// Why.
        error: RequestError,
    },
}

/// Why [`RadiusClient::send`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The request does not fit a RADIUS packet (or a value its attribute).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Every server has 256 requests outstanding.
    #[error("no free Identifier")]
    NoIdentifier,
    /// The random source failed (Request Authenticator).
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Why [`RadiusClient::handle_reply`] dropped a datagram. Each is also counted in
/// [`Counters`] and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Dropped {
    /// Not from a configured server's address.
    #[error("datagram from {0}, not a configured server")]
    UnknownSource(SocketAddr),
    /// The header or an attribute does not parse.
    #[error("malformed reply: {0}")]
    Malformed(WireError),
    /// No outstanding request with this Identifier to this server (also: a duplicate).
    #[error("no outstanding request with Identifier {0}")]
    UnknownIdentifier(u8),
    /// Not an Access-Accept, -Reject or -Challenge.
    #[error("unexpected reply code {0}")]
    UnexpectedCode(u8),
    /// The Response Authenticator does not verify.
    #[error("bad Response Authenticator")]
    BadResponseAuthenticator,
    /// No Message-Authenticator (BlastRADIUS: never accepted).
    #[error("reply without Message-Authenticator")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator does not verify.
    #[error("bad Message-Authenticator")]
    BadMessageAuthenticator,
}

/// What the client has done and dropped, for operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests accepted by [`RadiusClient::send`].
    pub requests: u64,
    /// Datagrams resent unchanged after a timeout.
    pub retransmissions: u64,
    /// Requests moved to another server.
    pub failovers: u64,
    /// Requests that ended in [`RequestError::NoResponse`].
    pub no_response: u64,
    /// Valid Access-Accepts.
    pub accepts: u64,
    /// Valid Access-Rejects.
    pub rejects: u64,
    /// Valid Access-Challenges.
    pub challenges: u64,
    /// [`Dropped::UnknownSource`].
    pub unknown_source: u64,
    /// [`Dropped::Malformed`].
    pub malformed: u64,
    /// [`Dropped::UnknownIdentifier`].
    pub unknown_identifier: u64,
    /// [`Dropped::UnexpectedCode`].
    pub unexpected_code: u64,
    /// [`Dropped::BadResponseAuthenticator`].
    pub bad_response_authenticator: u64,
    /// [`Dropped::MissingMessageAuthenticator`].
    pub missing_message_authenticator: u64,
    /// [`Dropped::BadMessageAuthenticator`].
    pub bad_message_authenticator: u64,
}

impl Counters {
    /// All dropped datagrams.
    pub fn dropped(&self) -> u64 {
        self.unknown_source
            + self.malformed
            + self.unknown_identifier
            + self.unexpected_code
            + self.bad_response_authenticator
            + self.missing_message_authenticator
            + self.bad_message_authenticator
    }
}

#[derive(Debug)]
struct ServerState {
    dead_until: Option<Instant>,
    in_use: [bool; 256],
    next_id: u8,
}

impl ServerState {
    fn allocate(&mut self) -> Option<u8> {
        let start = self.next_id;
        let mut id = start;
        loop {
            if !self.in_use[usize::from(id)] {
                self.in_use[usize::from(id)] = true;
                self.next_id = id.wrapping_add(1);
                return Some(id);
            }
            id = id.wrapping_add(1);
            if id == start {
                return None;
            }
        }
    }

    fn release(&mut self, id: u8) {
        self.in_use[usize::from(id)] = false;
    }

    fn alive(&self, now: Instant) -> bool {
        self.dead_until.is_none_or(|t| now >= t)
    }
}

#[derive(Debug)]
struct Pending {
    request: AccessRequest,
    server: usize,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    packet: Vec<u8>,
    transmissions: u32,
    deadline: Instant,
    tried: Vec<bool>,
}

/// The RADIUS client; see the [module docs](self).
#[derive(Debug)]
pub struct RadiusClient {
    config: ClientConfig,
    rng: RngHandle,
    servers: Vec<ServerState>,
    pending: HashMap<RequestHandle, Pending>,
    by_id: HashMap<(usize, u8), RequestHandle>,
    next_handle: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
}

fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(Instant::from_micros(u64::MAX))
}

impl RadiusClient {
    /// A client for `config`; `rng` makes the Request Authenticators.
    pub fn new(config: ClientConfig, rng: RngHandle) -> Result<RadiusClient, ConfigError> {
        if config.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        if let Some(s) = config.servers.iter().find(|s| s.secret.is_empty()) {
            return Err(ConfigError::EmptySecret(s.addr));
        }
        if config.nas_identifier.is_none() && config.nas_ip_address.is_none() {
            return Err(ConfigError::NoNasIdentity);
        }
        if let Some(n) = &config.nas_identifier
            && (n.is_empty() || n.len() > wire::MAX_VALUE_LEN)
        {
            return Err(ConfigError::BadNasIdentifier);
        }
        if config.max_transmissions == 0 || config.retransmit_timeout == Duration::ZERO {
            return Err(ConfigError::ZeroRetransmission);
        }
        let servers = config
            .servers
            .iter()
            .map(|_| ServerState {
                dead_until: None,
                in_use: [false; 256],
                next_id: 0,
            })
            .collect();
        Ok(RadiusClient {
            config,
            rng,
            servers,
            pending: HashMap::new(),
            by_id: HashMap::new(),
            next_handle: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        })
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether server `index` is not held down at `now`.
    pub fn server_alive(&self, index: usize, now: Instant) -> bool {
        self.servers.get(index).is_some_and(|s| s.alive(now))
    }

    /// Requests outstanding.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Starts an Access-Request; its datagram is queued for [`RadiusClient::poll_transmit`].
    pub fn send(
        &mut self,
        now: Instant,
        request: AccessRequest,
    ) -> Result<RequestHandle, SendError> {
        let tried = vec![false; self.servers.len()];
        let preferred = request.state.as_ref().map(|s| s.server);
        let server = self
            .choose_server(now, &tried, preferred)
            .ok_or(SendError::NoIdentifier)?;
        let handle = RequestHandle(self.next_handle);
        let mut p = Pending {
            request,
            server,
            identifier: 0,
            authenticator: [0; AUTHENTICATOR_LEN],
            packet: Vec::new(),
            transmissions: 0,
            deadline: now,
            tried,
        };
        self.start_on(now, &mut p, server)?;
        self.next_handle += 1;
        self.counters.requests += 1;
        self.by_id.insert((server, p.identifier), handle);
        self.pending.insert(handle, p);
        Ok(handle)
    }

    /// Forgets a request (its Identifier is free again; a late reply is dropped).
    pub fn cancel(&mut self, request: RequestHandle) {
        if let Some(p) = self.pending.remove(&request) {
            self.servers[p.server].release(p.identifier);
            self.by_id.remove(&(p.server, p.identifier));
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`RadiusClient::handle_timeout`] must be called next, if any request is
    /// outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Retransmits, fails over or fails every request whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due: Vec<RequestHandle> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(h, _)| *h)
            .collect();
        due.sort();
        for handle in due {
            let Some(mut p) = self.pending.remove(&handle) else {
                continue;
            };
            if p.transmissions < self.config.max_transmissions {
                p.transmissions += 1;
                p.deadline = later(now, self.config.retransmit_timeout);
                self.counters.retransmissions += 1;
                tracing::debug!(
                    server = %self.config.servers[p.server].addr,
                    id = p.identifier,
                    transmission = p.transmissions,
                    "RADIUS retransmission"
                );
                self.transmits.push_back(Transmit {
                    server: p.server,
                    destination: self.config.servers[p.server].addr,
                    packet: p.packet.clone(),
                });
                self.pending.insert(handle, p);
                continue;
            }
            let old = p.server;
            self.servers[old].release(p.identifier);
            self.by_id.remove(&(old, p.identifier));
            p.tried[old] = true;
            self.servers[old].dead_until = Some(later(now, self.config.dead_time));
            tracing::warn!(
                server = %self.config.servers[old].addr,
                transmissions = p.transmissions,
                "RADIUS server did not answer; held down"
            );
            let tried = p.tried.iter().filter(|t| **t).count();
            let next = self.choose_server(now, &p.tried, None);
            let Some(next) = next else {
                let error = if tried == self.servers.len() {
                    self.counters.no_response += 1;
                    RequestError::NoResponse {
                        servers_tried: tried,
                    }
                } else {
                    RequestError::NoIdentifier
                };
                self.events.push_back(Event::Failed {
                    request: handle,
                    error,
                });
                continue;
            };
            match self.start_on(now, &mut p, next) {
                Ok(()) => {
                    self.counters.failovers += 1;
                    tracing::info!(
                        from = %self.config.servers[old].addr,
                        to = %self.config.servers[next].addr,
                        "RADIUS request failed over"
                    );
                    self.by_id.insert((next, p.identifier), handle);
                    self.pending.insert(handle, p);
                }
                Err(e) => {
                    // The packet was built once already, and `choose_server` found a free
                    // Identifier: only the random source can fail here.
                    tracing::warn!(error = %e, "RADIUS failover could not build the request");
                    let error = match e {
                        SendError::Rng(r) => RequestError::Rng(r),
                        SendError::NoIdentifier => RequestError::NoIdentifier,
                        SendError::Wire(_) => RequestError::NoResponse {
                            servers_tried: tried,
                        },
                    };
                    self.events.push_back(Event::Failed {
                        request: handle,
                        error,
                    });
                }
            }
        }
    }

    /// Takes one received datagram from `from`. Valid replies end their request with an
    /// [`Event`]; anything else is dropped, counted and logged, and the reason returned.
    pub fn handle_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<RequestHandle, Dropped> {
        let r = self.validate(from, datagram);
        match &r {
            Err(d) => {
                let c = &mut self.counters;
                match d {
                    Dropped::UnknownSource(_) => c.unknown_source += 1,
                    Dropped::Malformed(_) => c.malformed += 1,
                    Dropped::UnknownIdentifier(_) => c.unknown_identifier += 1,
                    Dropped::UnexpectedCode(_) => c.unexpected_code += 1,
                    Dropped::BadResponseAuthenticator => c.bad_response_authenticator += 1,
                    Dropped::MissingMessageAuthenticator => c.missing_message_authenticator += 1,
                    Dropped::BadMessageAuthenticator => c.bad_message_authenticator += 1,
                }
                tracing::warn!(%from, reason = %d, "RADIUS reply dropped");
                Err(d.clone())
            }
            Ok((handle, repr)) => {
                let handle = *handle;
                let Some(p) = self.pending.remove(&handle) else {
                    return Err(Dropped::UnknownIdentifier(repr.identifier));
                };
                self.servers[p.server].release(p.identifier);
                self.servers[p.server].dead_until = None;
                self.by_id.remove(&(p.server, p.identifier));
                let event = self.outcome(handle, &p, repr);
                tracing::debug!(%from, id = p.identifier, code = ?repr.code, at = now.as_micros(), "RADIUS reply");
                self.events.push_back(event);
                Ok(handle)
            }
        }
    }

    fn validate(
        &self,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(RequestHandle, Repr), Dropped> {
        let server = self
            .config
            .servers
            .iter()
            .position(|s| s.addr == from)
            .ok_or(Dropped::UnknownSource(from))?;
        let packet = Packet::new_checked(datagram).map_err(Dropped::Malformed)?;
        let id = packet.identifier();
        let handle = *self
            .by_id
            .get(&(server, id))
            .ok_or(Dropped::UnknownIdentifier(id))?;
        let p = self
            .pending
            .get(&handle)
            .ok_or(Dropped::UnknownIdentifier(id))?;
        let code = packet.code_raw();
        if !matches!(
            Code::try_from(code),
            Ok(Code::AccessAccept | Code::AccessReject | Code::AccessChallenge)
        ) {
            return Err(Dropped::UnexpectedCode(code));
        }
        let secret = self.config.servers[server].secret.expose();
        wire::verify_response_authenticator(packet.bytes(), &p.authenticator, secret).map_err(
            |e| match e {
                WireError::BadResponseAuthenticator => Dropped::BadResponseAuthenticator,
                other => Dropped::Malformed(other),
            },
        )?;
        let repr = Repr::parse(&packet).map_err(Dropped::Malformed)?;
        wire::verify_message_authenticator(packet.bytes(), &p.authenticator, secret).map_err(
            |e| match e {
                WireError::MissingMessageAuthenticator => Dropped::MissingMessageAuthenticator,
                WireError::BadMessageAuthenticator => Dropped::BadMessageAuthenticator,
                other => Dropped::Malformed(other),
            },
        )?;
        Ok((handle, repr))
    }

    fn outcome(&mut self, request: RequestHandle, p: &Pending, repr: &Repr) -> Event {
        let eap_message = repr.eap_message();
        let u32_attr = |f: fn(&Attribute) -> Option<u32>| repr.attributes.iter().find_map(f);
        let session_timeout = u32_attr(|a| match a {
            Attribute::SessionTimeout(x) => Some(*x),
            _ => None,
        });
        let reply = match repr.code {
            Code::AccessChallenge => {
                self.counters.challenges += 1;
                let Some(eap_message) = eap_message.filter(|e| !e.is_empty()) else {
                    return Event::Failed {
                        request,
                        error: RequestError::ChallengeWithoutEapMessage,
                    };
                };
                Reply::Challenge(Challenge {
                    eap_message,
                    state: repr.state().map(|v| State {
                        value: v.to_vec(),
                        server: p.server,
                    }),
                    session_timeout,
                })
            }
            Code::AccessAccept => {
                self.counters.accepts += 1;
                let msk = match self.msk(p, repr) {
                    Ok(m) => m,
                    Err(error) => return Event::Failed { request, error },
                };
                Reply::Accept(Accept {
                    eap_message,
                    msk,
                    user_name: repr.attributes.iter().find_map(|a| match a {
                        Attribute::UserName(v) => Some(v.clone()),
                        _ => None,
                    }),
                    class: repr
                        .attributes
                        .iter()
                        .filter_map(|a| match a {
                            Attribute::Class(v) => Some(v.clone()),
                            _ => None,
                        })
                        .collect(),
                    session_timeout,
                    termination_action: u32_attr(|a| match a {
                        Attribute::TerminationAction(x) => Some(*x),
                        _ => None,
                    }),
                })
            }
            _ => {
                self.counters.rejects += 1;
                Reply::Reject(Reject { eap_message })
            }
        };
        Event::Reply { request, reply }
    }

    fn msk(&self, p: &Pending, repr: &Repr) -> Result<Option<SecretBytes>, RequestError> {
        let recv: Vec<&[u8]> = repr.microsoft_attributes(MS_MPPE_RECV_KEY).collect();
        let send: Vec<&[u8]> = repr.microsoft_attributes(MS_MPPE_SEND_KEY).collect();
        match (recv.as_slice(), send.as_slice()) {
            ([], []) => Ok(None),
            ([r], [s]) => {
                let secret = self.config.servers[p.server].secret.expose();
                let r = wire::decrypt_mppe_key(r, secret, &p.authenticator)
                    .map_err(RequestError::MppeKey)?;
                let s = wire::decrypt_mppe_key(s, secret, &p.authenticator)
                    .map_err(RequestError::MppeKey)?;
                let mut msk = Vec::with_capacity(r.len() + s.len());
                msk.extend_from_slice(r.expose());
                msk.extend_from_slice(s.expose());
                Ok(Some(SecretBytes::new(msk)))
            }
            (r, s) => Err(RequestError::MppeKeyCount {
                recv: r.len(),
                send: s.len(),
            }),
        }
    }

    /// The first server not yet tried that has a free Identifier: `preferred` if it is alive,
    /// else the first alive one in order, else the first in order.
    fn choose_server(
        &self,
        now: Instant,
        tried: &[bool],
        preferred: Option<usize>,
    ) -> Option<usize> {
        let usable = |i: usize| {
            !tried.get(i).copied().unwrap_or(true) && self.servers[i].in_use.iter().any(|u| !u)
        };
        if let Some(i) = preferred.filter(|&i| i < self.servers.len())
            && usable(i)
            && self.servers[i].alive(now)
        {
            return Some(i);
        }
        let all = 0..self.servers.len();
        all.clone()
            .find(|&i| usable(i) && self.servers[i].alive(now))
            .or_else(|| all.into_iter().find(|&i| usable(i)))
    }

    /// Builds `p`'s request for `server` (new Identifier and Request Authenticator), queues its
    /// first transmission and sets the deadline. On error nothing is allocated.
    fn start_on(&mut self, now: Instant, p: &mut Pending, server: usize) -> Result<(), SendError> {
        let authenticator: [u8; AUTHENTICATOR_LEN] = self.rng.array()?;
        let id = self.servers[server]
            .allocate()
            .ok_or(SendError::NoIdentifier)?;
        let packet = match self.build(&p.request, server, id, authenticator) {
            Ok(b) => b,
            Err(e) => {
                self.servers[server].release(id);
                return Err(e);
            }
        };
        p.server = server;
        p.identifier = id;
        p.authenticator = authenticator;
        p.packet = packet;
        p.transmissions = 1;
        p.deadline = later(now, self.config.retransmit_timeout);
        self.transmits.push_back(Transmit {
            server,
            destination: self.config.servers[server].addr,
            packet: p.packet.clone(),
        });
        Ok(())
    }

    fn build(
        &self,
        request: &AccessRequest,
        server: usize,
        identifier: u8,
        authenticator: [u8; AUTHENTICATOR_LEN],
    ) -> Result<Vec<u8>, SendError> {
        let c = &self.config;
        let mut attributes = vec![Attribute::MessageAuthenticator([0; 16])];
        if !request.user_name.is_empty() {
            attributes.push(Attribute::UserName(request.user_name.clone()));
        }
        if let Some(a) = c.nas_ip_address {
            attributes.push(Attribute::NasIpAddress(a));
        }
        if let Some(n) = &c.nas_identifier {
            attributes.push(Attribute::NasIdentifier(n.clone()));
        }
        if let Some(v) = request.called_station_id.as_ref().filter(|v| !v.is_empty()) {
            attributes.push(Attribute::CalledStationId(v.clone()));
        }
        if let Some(v) = request
            .calling_station_id
            .as_ref()
            .filter(|v| !v.is_empty())
        {
            attributes.push(Attribute::CallingStationId(v.clone()));
        }
        if let Some(m) = c.framed_mtu {
            attributes.push(Attribute::FramedMtu(m));
        }
        if let Some(s) = request.state.as_ref().filter(|s| !s.value.is_empty()) {
            attributes.push(Attribute::State(s.value.clone()));
        }
        let mut repr = Repr {
            code: Code::AccessRequest,
            identifier,
            authenticator,
            attributes,
        };
        if request.eap_message.is_empty() {
            repr.attributes.push(Attribute::EapMessage(Vec::new()));
        } else {
            repr.push_eap_message(&request.eap_message);
        }
        let mut packet = repr.to_bytes()?;
        wire::sign_request(&mut packet, c.servers[server].secret.expose())?;
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::wire::VendorSpecific;

    fn addr(i: usize) -> SocketAddr {
        format!("192.0.2.{}:1812", i + 1).parse().unwrap()
    }

    fn secret(i: usize) -> Vec<u8> {
        format!("secret-{i}").into_bytes()
    }

    fn config(n: usize) -> ClientConfig {
        let servers = (0..n)
            .map(|i| ServerConfig {
                addr: addr(i),
                secret: SecretBytes::new(secret(i)),
            })
            .collect();
        let mut c = ClientConfig::new(servers, b"nas-1");
        c.retransmit_timeout = Duration::from_secs(1);
        c.max_transmissions = 3;
        c.dead_time = Duration::from_secs(30);
        c
    }

    fn client(n: usize) -> RadiusClient {
        RadiusClient::new(config(n), RngHandle::seeded(7)).unwrap()
    }

    fn t(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    fn eap_request(n: usize) -> AccessRequest {
        let mut eap = vec![2, 1, 0, 0, 1];
        eap.extend((0..n.saturating_sub(5)).map(|i| u8::try_from(i % 200).unwrap()));
        let len = u16::try_from(eap.len()).unwrap().to_be_bytes();
        eap[2..4].copy_from_slice(&len);
        AccessRequest {
            user_name: b"alice".to_vec(),
            eap_message: eap,
            calling_station_id: Some(b"02-00-00-00-00-01".to_vec()),
            ..AccessRequest::default()
        }
    }

    /// The parsed request in `tx`, after checking its Message-Authenticator as a server would.
    fn server_view(tx: &Transmit) -> Repr {
        let r = Repr::parse(&Packet::new_checked(&tx.packet[..]).unwrap()).unwrap();
        wire::verify_message_authenticator(&tx.packet, &r.authenticator, &secret(tx.server))
            .unwrap();
        r
    }

    /// A signed reply to `tx` with `attrs` (and a Message-Authenticator first if `ma`).
    fn answer(tx: &Transmit, code: Code, attrs: Vec<Attribute>, ma: bool) -> Vec<u8> {
        let req = server_view(tx);
        let mut attributes = Vec::new();
        if ma {
            attributes.push(Attribute::MessageAuthenticator([0; 16]));
        }
        attributes.extend(attrs);
        let mut b = Repr {
            code,
            identifier: req.identifier,
            authenticator: [0; 16],
            attributes,
        }
        .to_bytes()
        .unwrap();
        wire::sign_response(&mut b, &req.authenticator, &secret(tx.server)).unwrap();
        b
    }

    fn eap(bytes: &[u8]) -> Vec<Attribute> {
        let mut r = Repr {
            code: Code::AccessChallenge,
            identifier: 0,
            authenticator: [0; 16],
            attributes: Vec::new(),
        };
        r.push_eap_message(bytes);
        r.attributes
    }

    fn reply(c: &mut RadiusClient) -> (RequestHandle, Reply) {
        match c.poll_event() {
            Some(Event::Reply { request, reply }) => (request, reply),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn config_is_checked() {
        let rng = RngHandle::seeded(1);
        assert_eq!(
            RadiusClient::new(config(0), rng.clone()).unwrap_err(),
            ConfigError::NoServers
        );
        let mut c = config(1);
        c.servers[0].secret = SecretBytes::new(Vec::new());
        assert_eq!(
            RadiusClient::new(c, rng.clone()).unwrap_err(),
            ConfigError::EmptySecret(addr(0))
        );
        let mut c = config(1);
        c.nas_identifier = None;
        assert_eq!(
            RadiusClient::new(c, rng.clone()).unwrap_err(),
            ConfigError::NoNasIdentity
        );
        let mut c = config(1);
        c.max_transmissions = 0;
        assert_eq!(
            RadiusClient::new(c, rng).unwrap_err(),
            ConfigError::ZeroRetransmission
        );
    }

    #[test]
    fn access_request_layout() {
        let mut c = client(1);
        let mut cfg_ip = config(1);
        cfg_ip.nas_ip_address = Some(Ipv4Addr::new(10, 0, 0, 1));
        cfg_ip.framed_mtu = Some(1200);
        let mut c2 = RadiusClient::new(cfg_ip, RngHandle::seeded(3)).unwrap();
        let req = eap_request(600);
        c.send(t(0), req.clone()).unwrap();
        c2.send(t(0), req.clone()).unwrap();
        let tx = c.poll_transmit().unwrap();
        assert!(c.poll_transmit().is_none());
        assert_eq!(tx.destination, addr(0));
        let r = server_view(&tx);
        assert_eq!(r.code, Code::AccessRequest);
        // Message-Authenticator first (BlastRADIUS), then the rest.
        assert!(matches!(
            r.attributes[0],
            Attribute::MessageAuthenticator(_)
        ));
        assert_eq!(r.attributes[1], Attribute::UserName(b"alice".to_vec()));
        assert_eq!(r.attributes[2], Attribute::NasIdentifier(b"nas-1".to_vec()));
        assert_eq!(
            r.attributes[3],
            Attribute::CallingStationId(b"02-00-00-00-00-01".to_vec())
        );
        assert_eq!(r.eap_message().unwrap(), req.eap_message);
        assert_eq!(r.attributes.len(), 4 + 3);
        assert_eq!(r.state(), None);
        let r2 = server_view(&c2.poll_transmit().unwrap());
        assert!(
            r2.attributes
                .contains(&Attribute::NasIpAddress(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert!(r2.attributes.contains(&Attribute::FramedMtu(1200)));
        // Different random Request Authenticators.
        assert_ne!(r.authenticator, r2.authenticator);
        // EAP-Start: one empty EAP-Message.
        c.send(t(0), AccessRequest::default()).unwrap();
        let r3 = server_view(&c.poll_transmit().unwrap());
        assert_eq!(r3.eap_message(), Some(Vec::new()));
        assert!(
            !r3.attributes
                .iter()
                .any(|a| matches!(a, Attribute::UserName(_)))
        );
        // Too big for one packet.
        assert!(matches!(
            c.send(t(0), eap_request(4000)),
            Err(SendError::Wire(WireError::TooLong(_)))
        ));
    }

    #[test]
    fn challenge_then_accept_with_msk() {
        let mut c = client(2);
        let h = c.send(t(0), eap_request(30)).unwrap();
        let tx = c.poll_transmit().unwrap();
        let mut attrs = eap(&[
            1, 2, 0, 22, 4, 16, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
        ]);
        attrs.push(Attribute::State(b"state-1".to_vec()));
        attrs.push(Attribute::SessionTimeout(30));
        let b = answer(&tx, Code::AccessChallenge, attrs, true);
        assert_eq!(c.handle_reply(t(5), addr(0), &b), Ok(h));
        let (got, r) = reply(&mut c);
        assert_eq!(got, h);
        let Reply::Challenge(ch) = r else {
            panic!("not a challenge")
        };
        assert_eq!(ch.eap_message.len(), 22);
        assert_eq!(ch.session_timeout, Some(30));
        let state = ch.state.unwrap();
        assert_eq!((state.value(), state.server()), (&b"state-1"[..], 0));
        assert_eq!(c.outstanding(), 0);
        assert_eq!(c.poll_timeout(), None);

        let mut next = eap_request(22);
        next.state = Some(state);
        let h2 = c.send(t(10), next).unwrap();
        let tx2 = c.poll_transmit().unwrap();
        assert_eq!(tx2.server, 0);
        let req2 = server_view(&tx2);
        assert_eq!(req2.state(), Some(&b"state-1"[..]));
        let recv = [0x11u8; 32];
        let send = [0x22u8; 32];
        let enc = |k: &[u8], salt| {
            wire::encrypt_mppe_key(k, salt, &secret(0), &req2.authenticator).unwrap()
        };
        let mut attrs = eap(&[3, 2, 0, 4]);
        attrs.push(Attribute::VendorSpecific(VendorSpecific::microsoft(
            MS_MPPE_SEND_KEY,
            &enc(&send, [0x80, 1]),
        )));
        attrs.push(Attribute::VendorSpecific(VendorSpecific::microsoft(
            MS_MPPE_RECV_KEY,
            &enc(&recv, [0x80, 2]),
        )));
        attrs.push(Attribute::Class(b"c1".to_vec()));
        attrs.push(Attribute::TerminationAction(1));
        attrs.push(Attribute::UserName(b"alice@realm".to_vec()));
        let b = answer(&tx2, Code::AccessAccept, attrs, true);
        assert_eq!(c.handle_reply(t(12), addr(0), &b), Ok(h2));
        let Reply::Accept(acc) = reply(&mut c).1 else {
            panic!("not an accept")
        };
        assert_eq!(acc.eap_message.unwrap(), [3, 2, 0, 4]);
        assert_eq!(acc.msk.unwrap().expose(), [recv, send].concat());
        assert_eq!(acc.class, vec![b"c1".to_vec()]);
        assert_eq!(acc.termination_action, Some(1));
        assert_eq!(acc.user_name.unwrap(), b"alice@realm");
        let cn = c.counters();
        assert_eq!((cn.challenges, cn.accepts, cn.dropped()), (1, 1, 0));
    }

    #[test]
    fn reject_and_authentic_but_unusable_replies() {
        let mut c = client(1);
        let h = c.send(t(0), eap_request(10)).unwrap();
        let tx = c.poll_transmit().unwrap();
        let b = answer(&tx, Code::AccessReject, eap(&[4, 1, 0, 4]), true);
        c.handle_reply(t(1), addr(0), &b).unwrap();
        let (got, Reply::Reject(rej)) = reply(&mut c) else {
            panic!("not a reject")
        };
        assert_eq!((got, rej.eap_message.unwrap()), (h, vec![4, 1, 0, 4]));

        let h = c.send(t(2), eap_request(10)).unwrap();
        let tx = c.poll_transmit().unwrap();
        let b = answer(
            &tx,
            Code::AccessChallenge,
            vec![Attribute::State(b"s".to_vec())],
            true,
        );
        c.handle_reply(t(3), addr(0), &b).unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(Event::Failed { request, error: RequestError::ChallengeWithoutEapMessage })
                if request == h
        ));

        c.send(t(4), eap_request(10)).unwrap();
        let tx = c.poll_transmit().unwrap();
        let ra = server_view(&tx).authenticator;
        let k = wire::encrypt_mppe_key(&[1; 32], [0x80, 0], &secret(0), &ra).unwrap();
        let vsa = Attribute::VendorSpecific(VendorSpecific::microsoft(MS_MPPE_RECV_KEY, &k));
        let b = answer(&tx, Code::AccessAccept, vec![vsa], true);
        c.handle_reply(t(5), addr(0), &b).unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(Event::Failed {
                error: RequestError::MppeKeyCount { recv: 1, send: 0 },
                ..
            })
        ));

        // Keys encrypted with another Request Authenticator do not decrypt.
        c.send(t(6), eap_request(10)).unwrap();
        let tx = c.poll_transmit().unwrap();
        let k = wire::encrypt_mppe_key(&[1; 32], [0x80, 0], &secret(0), &[9; 16]).unwrap();
        let attrs = vec![
            Attribute::VendorSpecific(VendorSpecific::microsoft(MS_MPPE_RECV_KEY, &k)),
            Attribute::VendorSpecific(VendorSpecific::microsoft(MS_MPPE_SEND_KEY, &k)),
        ];
        let b = answer(&tx, Code::AccessAccept, attrs, true);
        c.handle_reply(t(7), addr(0), &b).unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(Event::Failed {
                error: RequestError::MppeKey(_),
                ..
            })
        ));
    }

    #[test]
    fn invalid_replies_are_dropped_and_counted() {
        let mut c = client(2);
        let h = c.send(t(0), eap_request(10)).unwrap();
        let tx = c.poll_transmit().unwrap();
        let good = answer(&tx, Code::AccessAccept, eap(&[3, 1, 0, 4]), true);

        // BlastRADIUS: a correctly signed reply without Message-Authenticator.
        let no_ma = answer(&tx, Code::AccessAccept, eap(&[3, 1, 0, 4]), false);
        assert_eq!(
            c.handle_reply(t(1), addr(0), &no_ma),
            Err(Dropped::MissingMessageAuthenticator)
        );
        let no_ma_reject = answer(&tx, Code::AccessReject, vec![], false);
        assert_eq!(
            c.handle_reply(t(1), addr(0), &no_ma_reject),
            Err(Dropped::MissingMessageAuthenticator)
        );
        // A wrong Message-Authenticator under a correct Response Authenticator.
        let mut bad_ma = good.clone();
        bad_ma[22] ^= 1;
        let ra = server_view(&tx).authenticator;
        wire::sign_response(&mut bad_ma, &ra, &secret(0)).unwrap();
        // sign_response recomputed the MA; break it again and redo only the authenticator.
        bad_ma[22] ^= 1;
        let auth = wire::response_authenticator(&bad_ma, &ra, &secret(0)).unwrap();
        bad_ma[4..20].copy_from_slice(&auth);
        assert_eq!(
            c.handle_reply(t(1), addr(0), &bad_ma),
            Err(Dropped::BadMessageAuthenticator)
        );
        // Any change without the secret breaks the Response Authenticator.
        let mut tampered = good.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            c.handle_reply(t(1), addr(0), &tampered),
            Err(Dropped::BadResponseAuthenticator)
        );
        // Signed with the other server's secret.
        let wrong_secret = {
            let req = Repr::parse(&Packet::new_checked(&tx.packet[..]).unwrap()).unwrap();
            let mut b = Repr {
                code: Code::AccessAccept,
                identifier: req.identifier,
                authenticator: [0; 16],
                attributes: vec![Attribute::MessageAuthenticator([0; 16])],
            }
            .to_bytes()
            .unwrap();
            wire::sign_response(&mut b, &req.authenticator, &secret(1)).unwrap();
            b
        };
        assert_eq!(
            c.handle_reply(t(1), addr(0), &wrong_secret),
            Err(Dropped::BadResponseAuthenticator)
        );
        // From the other server or a stranger.
        assert_eq!(
            c.handle_reply(t(1), addr(1), &good),
            Err(Dropped::UnknownIdentifier(good[1]))
        );
        let stranger: SocketAddr = "198.51.100.1:1812".parse().unwrap();
        assert_eq!(
            c.handle_reply(t(1), stranger, &good),
            Err(Dropped::UnknownSource(stranger))
        );
        // Another Identifier, truncated, bad Length, bad attribute, wrong code.
        let mut other_id = good.clone();
        other_id[1] = other_id[1].wrapping_add(1);
        assert_eq!(
            c.handle_reply(t(1), addr(0), &other_id),
            Err(Dropped::UnknownIdentifier(other_id[1]))
        );
        assert_eq!(
            c.handle_reply(t(1), addr(0), &good[..19]),
            Err(Dropped::Malformed(WireError::Truncated(19)))
        );
        assert!(matches!(
            c.handle_reply(t(1), addr(0), &good[..good.len() - 1]),
            Err(Dropped::Malformed(WireError::BadLength { .. }))
        ));
        let mut bad_attr = good.clone();
        bad_attr[21] = 200;
        let auth = wire::response_authenticator(&bad_attr, &ra, &secret(0));
        assert!(auth.is_ok());
        bad_attr[4..20].copy_from_slice(&auth.unwrap());
        assert_eq!(
            c.handle_reply(t(1), addr(0), &bad_attr),
            Err(Dropped::Malformed(WireError::BadAttributeLength {
                offset: 20
            }))
        );
        let as_request = answer(&tx, Code::AccessRequest, vec![], true);
        assert_eq!(
            c.handle_reply(t(1), addr(0), &as_request),
            Err(Dropped::UnexpectedCode(1))
        );
        assert!(c.poll_event().is_none());
        assert_eq!(c.outstanding(), 1);
        let n = c.counters();
        assert_eq!(n.missing_message_authenticator, 2);
        assert_eq!(n.bad_message_authenticator, 1);
        assert_eq!(n.bad_response_authenticator, 2);
        assert_eq!(n.unknown_identifier, 2);
        assert_eq!(n.unknown_source, 1);
        assert_eq!(n.malformed, 3);
        assert_eq!(n.unexpected_code, 1);
        assert_eq!(n.dropped(), 12);

        // The genuine reply still completes the request; its duplicate is dropped.
        assert_eq!(c.handle_reply(t(2), addr(0), &good), Ok(h));
        assert!(matches!(reply(&mut c).1, Reply::Accept(_)));
        assert_eq!(
            c.handle_reply(t(3), addr(0), &good),
            Err(Dropped::UnknownIdentifier(good[1]))
        );
        assert!(c.poll_event().is_none());
        assert_eq!(c.counters().accepts, 1);
    }

    #[test]
    fn retransmission_failover_and_hold_down() {
        let mut c = client(2);
        let h = c.send(t(0), eap_request(10)).unwrap();
        let first = c.poll_transmit().unwrap();
        assert_eq!(first.server, 0);
        assert_eq!(c.poll_timeout(), Some(t(1000)));
        c.handle_timeout(t(999));
        assert!(c.poll_transmit().is_none());
        for at in [1000, 2000] {
            c.handle_timeout(t(at));
            assert_eq!(
                c.poll_transmit().unwrap(),
                first,
                "identical retransmission"
            );
            assert_eq!(c.poll_timeout(), Some(t(at + 1000)));
        }
        // Third transmission timed out: on to server 1 as a new request.
        c.handle_timeout(t(3000));
        let moved = c.poll_transmit().unwrap();
        assert_eq!(moved.server, 1);
        assert_eq!(moved.destination, addr(1));
        let (a, b) = (server_view(&first), server_view(&moved));
        assert_ne!(a.authenticator, b.authenticator);
        assert_eq!(a.eap_message(), b.eap_message());
        assert!(!c.server_alive(0, t(3000)));
        assert!(c.server_alive(1, t(3000)));
        // A late answer from server 0 to the old Identifier is dropped.
        let late = answer(&first, Code::AccessAccept, vec![], true);
        assert_eq!(
            c.handle_reply(t(3100), addr(0), &late),
            Err(Dropped::UnknownIdentifier(a.identifier))
        );
        let ok = answer(&moved, Code::AccessAccept, vec![], true);
        assert_eq!(c.handle_reply(t(3200), addr(1), &ok), Ok(h));
        assert!(matches!(reply(&mut c).1, Reply::Accept(_)));
        let n = *c.counters();
        assert_eq!((n.retransmissions, n.failovers), (2, 1));

        // Held down: new requests go to server 1 until the dead time is over.
        c.send(t(4000), eap_request(10)).unwrap();
        let tx = c.poll_transmit().unwrap();
        assert_eq!(tx.server, 1);
        c.cancel(RequestHandle(1));
        assert_eq!(c.poll_timeout(), None);
        c.send(t(33_000), eap_request(10)).unwrap();
        assert_eq!(c.poll_transmit().unwrap().server, 0);
        c.cancel(RequestHandle(2));

        // Neither answers: 3 + 3 transmissions, then NoResponse.
        let h = c.send(t(40_000), eap_request(10)).unwrap();
        let mut sent = vec![c.poll_transmit().unwrap().server];
        let mut now = 40_000;
        let failed = loop {
            if let Some(ev) = c.poll_event() {
                break ev;
            }
            now += 1000;
            c.handle_timeout(t(now));
            while let Some(tx) = c.poll_transmit() {
                sent.push(tx.server);
            }
            assert!(now < 50_000, "no failure reported");
        };
        assert!(matches!(
            failed,
            Event::Failed { request, error: RequestError::NoResponse { servers_tried: 2 } }
                if request == h
        ));
        assert_eq!(sent, [0, 0, 0, 1, 1, 1]);
        assert_eq!(now, 46_000);
        assert_eq!(c.outstanding(), 0);
        assert_eq!(c.counters().no_response, 1);
        // Both held down: the first in order is still tried.
        c.send(t(46_001), eap_request(10)).unwrap();
        assert_eq!(c.poll_transmit().unwrap().server, 0);
    }

    #[test]
    fn failed_request_event_names_the_request() {
        let mut cfg = config(1);
        cfg.max_transmissions = 1;
        let mut c = RadiusClient::new(cfg, RngHandle::seeded(9)).unwrap();
        let h = c.send(t(0), eap_request(10)).unwrap();
        c.handle_timeout(t(1000));
        match c.poll_event() {
            Some(Event::Failed { request, error }) => {
                assert_eq!(request, h);
                assert_eq!(error, RequestError::NoResponse { servers_tried: 1 });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_goes_back_to_its_server() {
        let mut c = client(2);
        let state = State {
            value: b"from-1".to_vec(),
            server: 1,
        };
        let mut req = eap_request(10);
        req.state = Some(state);
        c.send(t(0), req).unwrap();
        let tx = c.poll_transmit().unwrap();
        assert_eq!(tx.server, 1);
        assert_eq!(server_view(&tx).state(), Some(&b"from-1"[..]));
    }

    #[test]
    fn identifiers_are_not_reused_while_outstanding() {
        let mut c = client(1);
        let mut ids = Vec::new();
        let mut txs = Vec::new();
        for _ in 0..256 {
            c.send(t(0), eap_request(10)).unwrap();
            let tx = c.poll_transmit().unwrap();
            ids.push(tx.packet[1]);
            txs.push(tx);
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert_eq!(c.send(t(0), eap_request(10)), Err(SendError::NoIdentifier));
        // Answer the one with Identifier 7; the next request gets exactly that one.
        let i = ids.iter().position(|&x| x == 7).unwrap();
        let b = answer(&txs[i], Code::AccessReject, vec![], true);
        c.handle_reply(t(1), addr(0), &b).unwrap();
        c.send(t(2), eap_request(10)).unwrap();
        assert_eq!(c.poll_transmit().unwrap().packet[1], 7);

        // Round robin: a freed Identifier is not the next one handed out.
        let mut c = client(1);
        c.send(t(0), eap_request(10)).unwrap();
        let tx0 = c.poll_transmit().unwrap();
        let b = answer(&tx0, Code::AccessReject, vec![], true);
        c.handle_reply(t(1), addr(0), &b).unwrap();
        c.send(t(2), eap_request(10)).unwrap();
        assert_eq!(
            c.poll_transmit().unwrap().packet[1],
            tx0.packet[1].wrapping_add(1)
        );
    }

    #[test]
    fn random_source_failure() {
        let mut cfg = config(2);
        cfg.max_transmissions = 1;
        let mut c = RadiusClient::new(cfg.clone(), RngHandle::fixed([5u8; 16])).unwrap();
        let h = c.send(t(0), eap_request(10)).unwrap();
        assert_eq!(
            server_view(&c.poll_transmit().unwrap()).authenticator,
            [5; 16]
        );
        assert!(matches!(
            c.send(t(0), eap_request(10)),
            Err(SendError::Rng(RngError::Exhausted { .. }))
        ));
        c.handle_timeout(t(1000));
        assert!(c.poll_transmit().is_none());
        match c.poll_event() {
            Some(Event::Failed {
                request,
                error: RequestError::Rng(_),
            }) => assert_eq!(request, h),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.outstanding(), 0);
    }
}
