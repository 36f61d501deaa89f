//! EAPOL over Ethernet (IEEE 802.1X-2020 clause 11) on a Linux interface: the I/O glue behind
//! `eapol-wired`, which runs the sans-IO [`eap`] state machines over a real link.
//!
//! - [`EapolLink`]: an `AF_PACKET`/`SOCK_RAW` socket for EtherType 0x888E on one interface.
//!   Frames go to the PAE group address 01-80-C2-00-00-03 and are received from it (and from
//!   our own address); the EAPOL PDU inside is coded with [`kmp_mka::eapol`].
//! - [`run_authenticator`] / [`run_supplicant`]: the event loops, with real time (a monotonic
//!   clock turned into [`kmp_api::time::Instant`]) and an overall time limit.
//!
//! The workspace forbids `unsafe`, and `socket2` builds no `sockaddr_ll` from parts, so the link
//! address of the interface is learnt instead of built: an unbound `ETH_P_ALL` packet socket
//! watches while a zero-length UDP datagram is broadcast (255.255.255.255:9, the discard port)
//! out of the interface (`SO_BINDTODEVICE`); the kernel reports that outgoing frame with a
//! `sockaddr_ll` naming the interface, which then addresses every frame we send (for
//! `SOCK_RAW` only its interface index matters; our frames carry their own Ethernet header).
//! The interface index and our MAC address come from the same frame, so nothing is read from
//! `/sys` (which shows another namespace's interfaces under a bare `unshare -n`).
//! Received frames come from an unbound socket for 0x888E and are kept only when their
//! `sockaddr_ll` names our interface (read through `SockAddr`'s `Hash`, which hashes the raw
//! address). No multicast membership is added (that is a `PACKET_ADD_MEMBERSHIP` socket option
//! socket2 does not offer): veth and software links deliver the group address anyway; on a
//! NIC that filters multicast, add it first with `ip maddr add 01:80:c2:00:00:03 dev IFACE`.

use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant as StdInstant};

use anyhow::{Context as _, anyhow, bail};
use eap::authenticator::{AuthAction, AuthOutcome, Authenticator};
use eap::method::MethodKeys;
use eap::peer::{Peer, PeerAction, PeerOutcome};
use eap::wire::{MethodId, Packet};
use kmp_api::time::Instant;
use kmp_mka::eapol::{EapolBody, EapolRepr, HEADER_LEN, ProtocolVersion};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// EtherType of EAPOL (IEEE 802.1X "PAE EtherType").
pub const ETHERTYPE_EAPOL: u16 = 0x888e;
/// The PAE group address (802.1X-2020 Table 11-1, "Nearest non-TPMR Bridge").
pub const PAE_GROUP: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x03];
/// The EAPOL version we send (802.1X-2004; hostapd and wpa_supplicant 2.10 take 1 or 2).
pub const EAPOL_VERSION: ProtocolVersion = ProtocolVersion::V2004;

const ETH_HEADER_LEN: usize = 14;
const ETH_P_ALL: u16 = 0x0003;
/// Offsets inside `struct sockaddr_ll`: family (2), protocol (2), ifindex (4), hatype (2),
/// pkttype (1), halen (1), addr (8).
const SLL_IFINDEX: core::ops::Range<usize> = 4..8;
const SLL_LEN: usize = 20;

/// The raw octets of a socket address, through its `Hash` (the only safe view socket2 gives of
/// a `sockaddr_ll`): `[u8]::hash` writes the length, then the octets.
fn sockaddr_bytes(addr: &SockAddr) -> Vec<u8> {
    struct Recorder(Vec<u8>);
    impl Hasher for Recorder {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }
    let mut r = Recorder(Vec::new());
    addr.hash(&mut r);
    let len = usize::try_from(addr.len()).unwrap_or(0).min(r.0.len());
    r.0.split_off(r.0.len() - len)
}

/// The interface index a `sockaddr_ll` names, if it is one.
fn sll_ifindex(addr: &SockAddr) -> Option<i32> {
    if addr.domain() != Domain::PACKET {
        return None;
    }
    let b = sockaddr_bytes(addr);
    if b.len() < SLL_LEN {
        return None;
    }
    Some(i32::from_ne_bytes(b[SLL_IFINDEX].try_into().ok()?))
}

fn packet_socket(ethertype: u16) -> io::Result<Socket> {
    // The protocol of a packet socket is the EtherType in network order.
    let proto = i32::from(ethertype.to_be());
    Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto)))
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One received EAPOL frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Source MAC address.
    pub src: [u8; 6],
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// The EAPOL PDU, Ethernet padding removed (exactly header + Packet Body Length octets).
    pub eapol: Vec<u8>,
}

/// EAPOL on one Ethernet interface.
pub struct EapolLink {
    rx: Socket,
    tx: Socket,
    /// A `sockaddr_ll` naming the interface (learnt, see the module docs).
    out: SockAddr,
    ifindex: i32,
    mac: [u8; 6],
    iface: String,
}

impl EapolLink {
    /// Opens EAPOL on `iface` (needs CAP_NET_RAW; the interface must be up).
    pub fn open(iface: &str) -> anyhow::Result<EapolLink> {
        let rx = packet_socket(ETHERTYPE_EAPOL)
            .context("AF_PACKET socket for EtherType 0x888E (needs CAP_NET_RAW)")?;
        let (out, ifindex, mac) = learn_link_address(iface)?;
        let tx = packet_socket(ETHERTYPE_EAPOL).context("AF_PACKET socket for sending")?;
        Ok(EapolLink {
            rx,
            tx,
            out,
            ifindex,
            mac,
            iface: iface.to_owned(),
        })
    }

    /// Our MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Sends one EAPOL PDU to `dst`.
    pub fn send(&self, dst: [u8; 6], eapol: &EapolRepr<'_>) -> anyhow::Result<()> {
        let mut frame = Vec::with_capacity(ETH_HEADER_LEN + eapol.buffer_len());
        frame.extend_from_slice(&dst);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&ETHERTYPE_EAPOL.to_be_bytes());
        frame.extend_from_slice(&eapol.to_vec().map_err(|e| anyhow!("EAPOL encode: {e}"))?);
        let n = self
            .tx
            .send_to(&frame, &self.out)
            .with_context(|| format!("send on {}", self.iface))?;
        if n != frame.len() {
            bail!(
                "send on {}: short write ({n} of {})",
                self.iface,
                frame.len()
            );
        }
        Ok(())
    }

    /// Sends an EAP packet in an EAPOL-EAP frame to `dst`.
    pub fn send_eap(&self, dst: [u8; 6], eap: &[u8]) -> anyhow::Result<()> {
        self.send(
            dst,
            &EapolRepr {
                version: EAPOL_VERSION,
                body: EapolBody::EapPacket(eap),
            },
        )
    }

    /// The next EAPOL frame received on our interface for us (to the PAE group address or our
    /// own address) until `deadline`; `None` when the deadline passed.
    pub fn recv(&self, deadline: StdInstant) -> anyhow::Result<Option<Frame>> {
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.rx
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let from = match self.rx.peek_sender() {
                Ok(a) => a,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e).context("receive"),
            };
            let n = (&self.rx).read(&mut buf).context("receive")?;
            if sll_ifindex(&from) != Some(self.ifindex) || n < ETH_HEADER_LEN + HEADER_LEN {
                continue;
            }
            let dst: [u8; 6] = buf[0..6].try_into()?;
            let src: [u8; 6] = buf[6..12].try_into()?;
            if src == self.mac || (dst != PAE_GROUP && dst != self.mac) {
                continue;
            }
            if buf[12..14] != ETHERTYPE_EAPOL.to_be_bytes() {
                continue; // VLAN-tagged or otherwise not plain EAPOL
            }
            let pdu = &buf[ETH_HEADER_LEN..n];
            let body_len = usize::from(u16::from_be_bytes([pdu[2], pdu[3]]));
            // Ethernet pads short frames to 60 octets: keep what the header announces.
            let Some(eapol) = pdu.get(..HEADER_LEN + body_len) else {
                continue;
            };
            return Ok(Some(Frame {
                src,
                dst,
                eapol: eapol.to_vec(),
            }));
        }
    }
}

/// Finds a `sockaddr_ll` naming `iface`, with its index and MAC address (see the module docs):
/// our probe is the outgoing frame from our UDP port to port 9.
fn learn_link_address(iface: &str) -> anyhow::Result<(SockAddr, i32, [u8; 6])> {
    const PACKET_OUTGOING: u8 = 4;
    let watch = packet_socket(ETH_P_ALL).context("AF_PACKET socket (needs CAP_NET_RAW)")?;
    let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_broadcast(true)?;
    udp.bind_device(Some(iface.as_bytes()))
        .with_context(|| format!("interface {iface:?}: SO_BINDTODEVICE (does it exist?)"))?;
    udp.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))?;
    let port = udp
        .local_addr()?
        .as_socket_ipv4()
        .map(|a| a.port())
        .ok_or_else(|| anyhow!("probe socket has no IPv4 address"))?;
    let to = SockAddr::from(SocketAddrV4::new(Ipv4Addr::BROADCAST, 9));
    let limit = StdInstant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 2048];
    while StdInstant::now() < limit {
        udp.send_to(&[], &to)
            .with_context(|| format!("probe broadcast on {iface} (is it up?)"))?;
        let probe_until = StdInstant::now() + Duration::from_millis(300);
        loop {
            let left = probe_until.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                break;
            }
            watch.set_read_timeout(Some(left))?;
            let Ok(from) = watch.peek_sender() else {
                continue;
            };
            let n = (&watch).read(&mut buf).unwrap_or(0);
            let sll = sockaddr_bytes(&from);
            if from.domain() != Domain::PACKET || sll.len() < SLL_LEN || sll[10] != PACKET_OUTGOING
            {
                continue;
            }
            let f = &buf[..n];
            if f.len() < ETH_HEADER_LEN + 20 + 8 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
                continue;
            }
            let udp_at = ETH_HEADER_LEN + usize::from(f[14] & 0x0f) * 4;
            let Some(ports) = f.get(udp_at..udp_at + 4) else {
                continue;
            };
            if ports[0..2] != port.to_be_bytes() || ports[2..4] != 9u16.to_be_bytes() {
                continue;
            }
            let ifindex = i32::from_ne_bytes(sll[SLL_IFINDEX].try_into()?);
            let mac: [u8; 6] = f[6..12].try_into()?;
            return Ok((from, ifindex, mac));
        }
    }
    bail!("interface {iface}: could not learn its link address (our probe was not seen on it)")
}

/// The outcome of a successful run, as printed by `eapol-wired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// The EAP method that ran.
    pub method: MethodId,
    /// The identity: the peer's from its Identity Response (authenticator) or ours.
    pub identity: Vec<u8>,
    /// The other side's MAC address.
    pub peer_mac: [u8; 6],
    /// The method's keys.
    pub keys: MethodKeys,
}

impl Success {
    /// The JSON line for tests: the MSK's SHA-256 (never the MSK) and the Session-Id.
    pub fn to_json(&self, role: &str) -> serde_json::Value {
        let method = match self.method {
            MethodId::Legacy(t) => serde_json::json!(t.0),
            other => serde_json::json!(format!("{other:?}")),
        };
        serde_json::json!({
            "role": role,
            "result": "success",
            "method": method,
            "identity": String::from_utf8_lossy(&self.identity),
            "peer_mac": format_mac(&self.peer_mac),
            "msk_sha256": hex::encode(kmp_api::crypto::hmac::sha256(self.keys.msk.expose())),
            "session_id": hex::encode(&self.keys.session_id),
        })
    }
}

/// Project time on a monotonic clock whose origin is `origin`.
fn project_now(origin: StdInstant) -> Instant {
    Instant::from_micros(u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// The std instant of a project deadline.
fn std_deadline(origin: StdInstant, at: Instant) -> StdInstant {
    origin + Duration::from_micros(at.as_micros())
}

/// Runs `auth` (not yet started) as the authenticator PAE on `link`: waits for an EAPOL-Start
/// from a supplicant, then converses with it until the EAP outcome or `limit`.
pub fn run_authenticator(
    link: &EapolLink,
    mut auth: Authenticator,
    limit: Duration,
) -> anyhow::Result<Success> {
    let origin = StdInstant::now();
    let end = origin + limit;
    // Wait for a supplicant.
    let supplicant = loop {
        let Some(f) = link.recv(end)? else {
            bail!("no EAPOL-Start from a supplicant within {limit:?}");
        };
        match EapolRepr::parse_bytes(&f.eapol) {
            Ok(EapolRepr {
                body: EapolBody::Start(_),
                ..
            }) => break f.src,
            Ok(_) | Err(_) => continue,
        }
    };
    tracing::info!("EAPOL-Start from {}", format_mac(&supplicant));
    auth.start(project_now(origin))
        .map_err(|e| anyhow!("authenticator start: {e}"))?;
    loop {
        while let Some(act) = auth.poll_action() {
            match act {
                AuthAction::Send(pkt) => link.send_eap(PAE_GROUP, &pkt)?,
                AuthAction::Finished(AuthOutcome::Success {
                    identity,
                    method,
                    keys,
                }) => {
                    let keys = keys.ok_or_else(|| anyhow!("method {method:?} derived no keys"))?;
                    return Ok(Success {
                        method,
                        identity,
                        peer_mac: supplicant,
                        keys,
                    });
                }
                AuthAction::Finished(AuthOutcome::Failure(why)) => {
                    bail!("EAP authentication failed: {why:?}")
                }
            }
        }
        let wake = auth
            .poll_timeout()
            .map(|t| std_deadline(origin, t).min(end))
            .unwrap_or(end);
        match link.recv(wake)? {
            Some(f) if f.src == supplicant => match EapolRepr::parse_bytes(&f.eapol) {
                Ok(EapolRepr {
                    body: EapolBody::EapPacket(eap),
                    ..
                }) => {
                    if let Err(e) = auth.handle_packet(project_now(origin), eap) {
                        tracing::debug!("EAP packet discarded: {e}");
                    }
                }
                Ok(EapolRepr {
                    body: EapolBody::Logoff(_),
                    ..
                }) => bail!("the supplicant logged off"),
                Ok(_) => {}
                Err(e) => tracing::debug!("bad EAPOL frame: {e}"),
            },
            Some(_) => {}
            None => {
                if StdInstant::now() >= end {
                    bail!("no EAP outcome within {limit:?}");
                }
                auth.handle_timeout(project_now(origin));
            }
        }
    }
}

/// Runs `peer` as the supplicant PAE on `link`: sends EAPOL-Start (again every
/// `start_period` until an EAP Request comes), then converses with the first authenticator
/// that answers until the EAP outcome or `limit`.
pub fn run_supplicant(
    link: &EapolLink,
    mut peer: Peer,
    identity: &[u8],
    start_period: Duration,
    limit: Duration,
) -> anyhow::Result<Success> {
    let origin = StdInstant::now();
    let end = origin + limit;
    let start = EapolRepr {
        version: EAPOL_VERSION,
        body: EapolBody::Start(&[]),
    };
    let mut authenticator: Option<[u8; 6]> = None;
    let mut next_start = origin;
    loop {
        while let Some(act) = peer.poll_action() {
            match act {
                PeerAction::Send(pkt) => link.send_eap(PAE_GROUP, &pkt)?,
                PeerAction::Notification(text) => {
                    tracing::info!("EAP Notification: {}", String::from_utf8_lossy(&text));
                }
                PeerAction::Finished(PeerOutcome::Success { method, keys }) => {
                    let keys = keys.ok_or_else(|| anyhow!("method {method:?} derived no keys"))?;
                    return Ok(Success {
                        method,
                        identity: identity.to_vec(),
                        peer_mac: authenticator.unwrap_or(PAE_GROUP),
                        keys,
                    });
                }
                PeerAction::Finished(PeerOutcome::Failure(why)) => {
                    bail!("EAP authentication failed: {why:?}")
                }
            }
        }
        let now = StdInstant::now();
        if authenticator.is_none() && now >= next_start {
            link.send(PAE_GROUP, &start)?;
            next_start = now + start_period;
        }
        let mut wake = end;
        if authenticator.is_none() {
            wake = wake.min(next_start);
        }
        if let Some(t) = peer.poll_timeout() {
            wake = wake.min(std_deadline(origin, t));
        }
        match link.recv(wake)? {
            Some(f) => {
                if authenticator.is_some_and(|a| a != f.src) {
                    continue;
                }
                let Ok(EapolRepr {
                    body: EapolBody::EapPacket(eap),
                    ..
                }) = EapolRepr::parse_bytes(&f.eapol)
                else {
                    continue;
                };
                if authenticator.is_none() {
                    if !matches!(Packet::parse(eap), Ok(Packet::Request { .. })) {
                        continue;
                    }
                    tracing::info!("authenticator {}", format_mac(&f.src));
                    authenticator = Some(f.src);
                }
                if let Err(e) = peer.handle_packet(project_now(origin), eap) {
                    tracing::debug!("EAP packet discarded: {e}");
                }
            }
            None => {
                if StdInstant::now() >= end {
                    bail!("no EAP outcome within {limit:?}");
                }
                peer.handle_timeout(project_now(origin));
            }
        }
    }
}
