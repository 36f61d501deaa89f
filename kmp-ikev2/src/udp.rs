//! The UDP binding: the same sans-IO sessions on a blocking UDP socket (RFC 7296 §2.11,
//! RFC 3948 §2.2), std only, one session per run — enough to talk to a standard IKEv2 daemon
//! such as strongSwan (DECISIONS I8).
//!
//! ```no_run
//! # use kmp_ikev2::{config::Ikev2Config, session::Ikev2Factory, udp::{LinkIds, UdpEndpoint}};
//! # use kmp_api::ExtendedAddress;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let factory = Ikev2Factory::new(Ikev2Config::from_toml("psk = \"secret\"")?)?;
//! let ids = LinkIds {
//!     local: ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]),
//!     peer: ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]),
//! };
//! let mut ep = UdpEndpoint::bind("127.0.0.1:0")?;
//! let run = ep.connect("127.0.0.1:500".parse()?, &factory, ids, std::time::Duration::from_secs(5))?;
//! assert!(run.link_keys().is_some());
//! # Ok(()) }
//! ```
//!
//! - **Framing.** On the NAT-T port 4500 (ours or the peer's) every IKE message carries the
//!   4-octet non-ESP marker 0x00000000 in front; it is added on sending and stripped on
//!   receiving. A datagram on such a socket whose first four octets are not zero is ESP and is
//!   ignored, as is a one-octet NAT keepalive (0xFF). On any other port the datagram is the IKE
//!   message itself. [`UdpEndpoint::with_non_esp_marker`] overrides the choice.
//! - **Addresses.** UDP peers have no EUI-64, but sessions and their key installs are keyed by
//!   one. The caller gives both ends' EUI-64s in [`LinkIds`]; the session's `peer` is that
//!   fixed configured value whatever UDP address the peer uses. With the default `eui64`
//!   identities these are also the ID_KEY_IDs on the wire; with `local_id`/`remote_id`
//!   configured they only name the peer in the key store.
//! - **One peer.** The initiator only accepts datagrams from the address it sent to; the
//!   responder takes the first datagram a [`KmpFactory::new_responder`] accepts and from then
//!   on only listens to that IP address; when the initiator floats to another port (its NAT-T
//!   port after NAT detection), the responder answers there once the session has accepted a
//!   message from it. We never float ourselves.
//! - **Timers.** The socket's read timeout is the session's [`KmpSession::poll_timeout`] (and
//!   the caller's overall limit), so retransmissions and the half-open timeout run as over MPX.
//! - **Results.** Everything the session asked for except sending (InstallKeys, RemoveKeys,
//!   Finished) is handed back in order in [`Run::actions`]; nothing is installed anywhere.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use kmp_api::session::{
    Action, KeyInstall, KmpFactory, KmpSession, Outcome, Role, SessionContext, SessionError,
};

use crate::session::Ikev2Factory;
use kmp_api::{ExtendedAddress, Instant, RngHandle};

/// The NAT-T port (RFC 3948): IKE messages there carry the non-ESP marker.
pub const NAT_T_PORT: u16 = 4500;
/// The non-ESP marker in front of IKE messages on port 4500 (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// The EUI-64s the session is created with (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkIds {
    /// Ours (the session's `local`).
    pub local: ExtendedAddress,
    /// The peer's, whatever its UDP address (the session's `peer`).
    pub peer: ExtendedAddress,
}

/// Why a run stopped without the session finishing.
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    /// The socket failed.
    #[error("UDP: {0}")]
    Io(#[from] io::Error),
    /// The factory or the session refused to start.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The caller's time limit passed before the session finished.
    #[error("no result within the time limit")]
    TimedOut,
}

/// One session run over UDP: the session (still usable, e.g. for [`UdpEndpoint::delete`]), the
/// peer's address and what the session produced.
pub struct Run {
    /// The session.
    pub session: Box<dyn KmpSession>,
    /// The peer's UDP address.
    pub peer_addr: SocketAddr,
    /// Every action other than `Send`, in order.
    pub actions: Vec<Action>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("role", &self.session.role())
            .field("peer_addr", &self.peer_addr)
            .field("actions", &self.actions)
            .finish()
    }
}

impl Run {
    /// The outcome the session reported (the first Finished), if any.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.actions.iter().find_map(|a| match a {
            Action::Finished(o) => Some(o),
            _ => None,
        })
    }

    /// The first key install, if any.
    pub fn link_keys(&self) -> Option<&KeyInstall> {
        self.actions.iter().find_map(|a| match a {
            Action::InstallKeys(k) => Some(k),
            _ => None,
        })
    }
}

/// A blocking UDP socket that runs IKEv2 sessions; see the [module docs](self).
#[derive(Debug)]
pub struct UdpEndpoint {
    socket: UdpSocket,
    marker: Option<bool>,
    epoch: std::time::Instant,
    /// Microseconds since the Unix epoch at `epoch`: session time counts from the Unix epoch
    /// (as the runtime's system clock does) but advances monotonically.
    origin_us: u64,
    rng: RngHandle,
}

impl UdpEndpoint {
    /// Binds a UDP socket to `addr` (port 0 picks one).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpEndpoint> {
        Ok(UdpEndpoint {
            socket: UdpSocket::bind(addr)?,
            marker: None,
            epoch: std::time::Instant::now(),
            origin_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            rng: RngHandle::os(),
        })
    }

    /// Forces the non-ESP marker on (`true`) or off (`false`) instead of deciding by port.
    pub fn with_non_esp_marker(mut self, on: bool) -> UdpEndpoint {
        self.marker = Some(on);
        self
    }

    /// Uses `rng` for the sessions instead of the OS generator (tests).
    pub fn with_rng(mut self, rng: RngHandle) -> UdpEndpoint {
        self.rng = rng;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn now(&self) -> Instant {
        let us = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(self.origin_us.saturating_add(us))
    }

    fn uses_marker(&self, peer: SocketAddr) -> bool {
        self.marker.unwrap_or_else(|| {
            peer.port() == NAT_T_PORT
                || self
                    .socket
                    .local_addr()
                    .is_ok_and(|a| a.port() == NAT_T_PORT)
        })
    }

    fn context(&self, ids: LinkIds, role: Role) -> SessionContext {
        SessionContext {
            local: ids.local,
            peer: ids.peer,
            role,
            rng: self.rng.clone(),
            now: self.now(),
            open_responder_sessions: 0,
        }
    }

    /// Initiator: creates a session with `factory`, starts it towards `peer_addr` and runs it
    /// until it reports Finished (then returns) or `limit` passes ([`UdpError::TimedOut`]; the
    /// session's own retransmission limit normally ends it first).
    pub fn connect(
        &mut self,
        peer_addr: SocketAddr,
        factory: &Ikev2Factory,
        ids: LinkIds,
        limit: std::time::Duration,
    ) -> Result<Run, UdpError> {
        let end = std::time::Instant::now() + limit;
        let factory = factory.for_udp(self.local_addr()?, peer_addr);
        let mut session = factory.new_initiator(self.context(ids, Role::Initiator))?;
        session.start(self.now())?;
        let mut run = Run {
            session,
            peer_addr,
            actions: Vec::new(),
        };
        self.flush(&mut run)?;
        self.drive(&mut run, end, true)?;
        Ok(run)
    }

    /// Responder: waits for the first datagram `factory` accepts as the start of an exchange
    /// (an IKE_SA_INIT request), creates the session for its sender and runs it until Finished
    /// or `limit` passes.
    pub fn accept(
        &mut self,
        factory: &Ikev2Factory,
        ids: LinkIds,
        limit: std::time::Duration,
    ) -> Result<Run, UdpError> {
        let end = std::time::Instant::now() + limit;
        let mut buf = vec![0u8; 65_536];
        loop {
            let Some((from, range)) = self.receive(&mut buf, Some(end), None)? else {
                if std::time::Instant::now() >= end {
                    return Err(UdpError::TimedOut);
                }
                continue;
            };
            let pdu = buf.get(range).unwrap_or(&[]);
            let session = match factory
                .for_udp(self.local_addr()?, from)
                .new_responder(self.context(ids, Role::Responder), pdu)
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%from, error = %e, "UDP: first datagram refused");
                    continue;
                }
            };
            let mut run = Run {
                session,
                peer_addr: from,
                actions: Vec::new(),
            };
            if let Err(e) = run.session.handle_datagram(self.now(), pdu) {
                tracing::debug!(%from, error = %e, "UDP: first datagram dropped by the session");
            }
            self.flush(&mut run)?;
            self.drive(&mut run, end, true)?;
            return Ok(run);
        }
    }

    /// Keeps serving `run`'s session (answering requests, retransmitting) for `duration`,
    /// e.g. to answer a peer's INFORMATIONAL after the exchange finished.
    pub fn serve(&mut self, run: &mut Run, duration: std::time::Duration) -> Result<(), UdpError> {
        let end = std::time::Instant::now() + duration;
        self.drive(run, end, false)
    }

    /// KMP-DELETE: the session sends its delete notification (best effort) and ends.
    pub fn delete(&mut self, run: &mut Run) -> Result<(), UdpError> {
        run.session.delete(self.now());
        self.flush(run).map(|_| ())
    }

    /// Sends what the session wants sent and records the rest; returns whether it finished.
    fn flush(&mut self, run: &mut Run) -> Result<bool, UdpError> {
        let mut finished = false;
        while let Some(a) = run.session.poll_action() {
            match a {
                Action::Send(pdu) => {
                    let out = if self.uses_marker(run.peer_addr) {
                        [&NON_ESP_MARKER[..], &pdu].concat()
                    } else {
                        pdu
                    };
                    self.socket.send_to(&out, run.peer_addr)?;
                }
                other => {
                    finished |= matches!(other, Action::Finished(_));
                    run.actions.push(other);
                }
            }
        }
        Ok(finished)
    }

    /// Runs the session until `end`, or until it finishes when `until_finished`.
    fn drive(
        &mut self,
        run: &mut Run,
        end: std::time::Instant,
        until_finished: bool,
    ) -> Result<(), UdpError> {
        if until_finished && run.outcome().is_some() {
            return Ok(());
        }
        let mut buf = vec![0u8; 65_536];
        loop {
            if std::time::Instant::now() >= end {
                return if until_finished {
                    Err(UdpError::TimedOut)
                } else {
                    Ok(())
                };
            }
            let timer = run.session.poll_timeout();
            let got = self.receive(&mut buf, Some(end), timer)?;
            let now = self.now();
            match got {
                Some((from, pdu)) if from == run.peer_addr => {
                    if let Err(e) = run
                        .session
                        .handle_datagram(now, buf.get(pdu).unwrap_or(&[]))
                    {
                        tracing::debug!(%from, error = %e, "UDP: datagram dropped by the session");
                    }
                }
                Some((from, pdu))
                    if from.ip() == run.peer_addr.ip() && run.session.role() == Role::Responder =>
                {
                    // An initiator that detected a NAT moves to its NAT-T port (RFC 7296
                    // §2.23; strongSwan to its `port_nat_t`). Followed once the session has
                    // accepted a message from there (integrity-checked from IKE_AUTH on).
                    match run
                        .session
                        .handle_datagram(now, buf.get(pdu).unwrap_or(&[]))
                    {
                        Ok(()) => {
                            tracing::debug!(%from, "UDP: the initiator moved to another port");
                            run.peer_addr = from;
                        }
                        Err(e) => {
                            tracing::debug!(%from, error = %e, "UDP: datagram from another port dropped");
                        }
                    }
                }
                Some((from, _)) => {
                    tracing::debug!(%from, "UDP: datagram from another address ignored");
                }
                None => {}
            }
            if run.session.poll_timeout().is_some_and(|t| t <= self.now()) {
                run.session.handle_timeout(self.now());
            }
            if self.flush(run)? && until_finished {
                return Ok(());
            }
        }
    }

    /// Waits for one IKE datagram until `end` or the session timer `timer`; returns its sender
    /// and the IKE message's range in `buf` (marker stripped), or `None` when a deadline came
    /// first.
    fn receive(
        &self,
        buf: &mut [u8],
        end: Option<std::time::Instant>,
        timer: Option<Instant>,
    ) -> Result<Option<(SocketAddr, std::ops::Range<usize>)>, UdpError> {
        let mut wait = end.map(|e| e.saturating_duration_since(std::time::Instant::now()));
        if let Some(t) = timer {
            let t = std::time::Duration::from_micros(
                t.saturating_duration_since(self.now()).as_micros(),
            );
            wait = Some(wait.map_or(t, |w| w.min(t)));
        }
        let wait = wait.map(|w| w.max(std::time::Duration::from_millis(1)));
        self.socket.set_read_timeout(wait)?;
        let (n, from) = match self.socket.recv_from(buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            // A previous send_to hit a closed port (ICMP): not fatal for UDP.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if self.uses_marker(from) {
            if n < NON_ESP_MARKER.len() || buf.get(..4) != Some(&NON_ESP_MARKER[..]) {
                // ESP (a non-zero SPI) or a NAT keepalive: not ours.
                tracing::trace!(%from, n, "UDP: non-IKE datagram on the NAT-T port ignored");
                return Ok(None);
            }
            return Ok(Some((from, 4..n)));
        }
        Ok(Some((from, 0..n)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::config::Ikev2Config;
    use crate::session::Ikev2Factory;
    use kmp_api::session::{FailureReason, KeyDirection};
    use std::time::Duration;

    const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xa]);
    const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xb]);

    fn factory(toml: &str) -> Ikev2Factory {
        Ikev2Factory::new(Ikev2Config::from_toml(toml).unwrap()).unwrap()
    }

    /// Our initiator against our responder over loopback UDP; returns both runs.
    fn exchange(
        ic: &str,
        rc: &str,
        marker: bool,
    ) -> (Result<Run, UdpError>, Result<Run, UdpError>) {
        let mut r = UdpEndpoint::bind("127.0.0.1:0")
            .unwrap()
            .with_non_esp_marker(marker);
        let r_addr = r.local_addr().unwrap();
        let rf = factory(rc);
        let responder = std::thread::spawn(move || {
            r.accept(&rf, LinkIds { local: B, peer: A }, Duration::from_secs(10))
        });
        let mut i = UdpEndpoint::bind("127.0.0.1:0")
            .unwrap()
            .with_non_esp_marker(marker);
        if marker {
            // An ESP packet (non-zero SPI) and a NAT keepalive first: both must be ignored.
            i.socket
                .send_to(&[0, 0, 0x10, 0x01, 0, 0, 0, 1, 0xaa], r_addr)
                .unwrap();
            i.socket.send_to(&[0xff], r_addr).unwrap();
        }
        let run_i = i.connect(
            r_addr,
            &factory(ic),
            LinkIds { local: A, peer: B },
            Duration::from_secs(10),
        );
        (run_i, responder.join().unwrap())
    }

    fn keys(run: &Run, dir: KeyDirection) -> Vec<u8> {
        run.link_keys()
            .unwrap()
            .link_keys
            .iter()
            .find(|k| k.direction == dir)
            .unwrap()
            .key
            .expose()
            .to_vec()
    }

    #[test]
    fn loopback_exchange_plain_and_with_marker() {
        for marker in [false, true] {
            let c =
                "psk = \"udp test\"\nlocal_ts = [\"127.0.0.1/32\"]\nremote_ts = [\"0.0.0.0/0\"]";
            let rc =
                "psk = \"udp test\"\nlocal_ts = [\"0.0.0.0/0\"]\nremote_ts = [\"127.0.0.0/8\"]";
            let (i, r) = exchange(c, rc, marker);
            let (i, r) = (i.unwrap(), r.unwrap());
            assert!(matches!(i.outcome(), Some(Outcome::Success(_))), "{i:?}");
            assert!(matches!(r.outcome(), Some(Outcome::Success(_))), "{r:?}");
            assert_eq!(i.link_keys().unwrap().peer, B);
            assert_eq!(r.link_keys().unwrap().peer, A);
            assert_eq!(
                keys(&i, KeyDirection::Transmit),
                keys(&r, KeyDirection::Receive)
            );
            assert_eq!(
                keys(&i, KeyDirection::Receive),
                keys(&r, KeyDirection::Transmit)
            );
        }
    }

    #[test]
    fn loopback_wrong_psk_and_wrong_identity() {
        let (i, r) = exchange("psk = \"one\"", "psk = \"two\"", false);
        let (i, r) = (i.unwrap(), r.unwrap());
        assert_eq!(
            i.outcome(),
            Some(&Outcome::Failure(FailureReason::AuthenticationFailed))
        );
        assert_eq!(
            r.outcome(),
            Some(&Outcome::Failure(FailureReason::AuthenticationFailed))
        );
        assert!(i.link_keys().is_none() && r.link_keys().is_none());
        let (i, r) = exchange(
            "psk = \"k\"\nlocal_id = \"fqdn:i.test\"",
            "psk = \"k\"\nremote_id = \"fqdn:someone-else.test\"",
            false,
        );
        assert_eq!(
            i.unwrap().outcome(),
            Some(&Outcome::Failure(FailureReason::AuthenticationFailed))
        );
        assert_eq!(
            r.unwrap().outcome(),
            Some(&Outcome::Failure(FailureReason::AuthenticationFailed))
        );
    }

    #[test]
    fn loopback_no_common_selectors() {
        let (i, r) = exchange(
            "psk = \"k\"\nlocal_ts = [\"10.0.0.1/32\"]",
            "psk = \"k\"\nremote_ts = [\"10.0.0.2/32\"]",
            false,
        );
        assert_eq!(
            i.unwrap().outcome(),
            Some(&Outcome::Failure(FailureReason::NegotiationFailed))
        );
        assert_eq!(
            r.unwrap().outcome(),
            Some(&Outcome::Failure(FailureReason::NegotiationFailed))
        );
    }

    #[test]
    fn initiator_times_out_without_a_peer() {
        // A bound socket that never answers: the session's retransmissions end the run.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut i = UdpEndpoint::bind("127.0.0.1:0").unwrap();
        let run = i
            .connect(
                silent.local_addr().unwrap(),
                &factory("psk = \"k\"\nretransmit_ms = 20\nmax_retransmits = 2"),
                LinkIds { local: A, peer: B },
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(
            run.outcome(),
            Some(&Outcome::Failure(FailureReason::Timeout { attempts: 3 }))
        );
        let mut buf = [0u8; 2048];
        silent
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut n = 0;
        while silent.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        assert_eq!(n, 3, "first request and two retransmissions");
        // And the caller's limit stops a responder nobody talks to.
        let mut r = UdpEndpoint::bind("127.0.0.1:0").unwrap();
        assert!(matches!(
            r.accept(
                &factory("psk = \"k\""),
                LinkIds { local: B, peer: A },
                Duration::from_millis(50)
            ),
            Err(UdpError::TimedOut)
        ));
    }
}
