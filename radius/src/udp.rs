//! A blocking UDP binding for the sans-IO [`RadiusClient`]: one socket, one request at a time,
//! std only; for tests and tools, not for a gateway (which drives the client from its runtime).
//!
//! ```no_run
//! # use radius::{AccessRequest, ClientConfig, ServerConfig, udp::UdpClient};
//! # use kmp_api::crypto::SecretBytes;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ServerConfig {
//!     addr: "127.0.0.1:1812".parse()?,
//!     secret: SecretBytes::from_slice(b"testing123"),
//! };
//! let mut udp = UdpClient::bind("127.0.0.1:0", ClientConfig::new(vec![server], b"nas"))?;
//! let request = AccessRequest { user_name: b"bob".to_vec(), ..AccessRequest::default() };
//! let reply = udp.exchange(request, std::time::Duration::from_secs(5))?;
//! # let _ = reply; Ok(()) }
//! ```
//!
//! The socket's read timeout follows [`RadiusClient::poll_timeout`], so retransmission and
//! failover run exactly as in the core. Datagrams for other (cancelled or answered) requests
//! and invalid ones are dropped by the core and counted in [`RadiusClient::counters`]. A
//! failed `send_to` is logged and left to the retransmission timer.

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};

use kmp_api::{Instant, RngHandle};

use crate::client::{
    AccessRequest, ClientConfig, ConfigError, Event, RadiusClient, Reply, RequestError, SendError,
};
use crate::wire::MAX_LEN;

/// Why [`UdpClient::exchange`] returned without a reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UdpError {
    /// The socket failed.
    #[error("UDP: {0}")]
    Io(#[from] io::Error),
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The request ended without a usable reply.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The caller's time limit passed first (the request is cancelled).
    #[error("no RADIUS reply within the time limit")]
    TimedOut,
}

/// A RADIUS client on a blocking UDP socket; see the [module docs](self).
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    client: RadiusClient,
    epoch: std::time::Instant,
}

impl UdpClient {
    /// Binds a socket to `local` (port 0 picks one) for a client with `config` and the OS
    /// random source.
    pub fn bind(local: impl ToSocketAddrs, config: ClientConfig) -> Result<UdpClient, UdpError> {
        UdpClient::bind_with_rng(local, config, RngHandle::os())
    }

    /// As [`UdpClient::bind`], with an explicit random source.
    pub fn bind_with_rng(
        local: impl ToSocketAddrs,
        config: ClientConfig,
        rng: RngHandle,
    ) -> Result<UdpClient, UdpError> {
        Ok(UdpClient {
            socket: UdpSocket::bind(local)?,
            client: RadiusClient::new(config, rng)?,
            epoch: std::time::Instant::now(),
        })
    }

    /// The socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The sans-IO core (counters, server state).
    pub fn client(&self) -> &RadiusClient {
        &self.client
    }

    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn flush(&mut self) {
        while let Some(tx) = self.client.poll_transmit() {
            if let Err(e) = self.socket.send_to(&tx.packet, tx.destination) {
                tracing::warn!(to = %tx.destination, error = %e, "RADIUS send failed");
            }
        }
    }

    /// Sends `request` and waits for its reply, retransmitting and failing over as configured,
    /// for at most `limit`.
    pub fn exchange(
        &mut self,
        request: AccessRequest,
        limit: std::time::Duration,
    ) -> Result<Reply, UdpError> {
        let started = std::time::Instant::now();
        let handle = self.client.send(self.now(), request)?;
        let mut buf = vec![0u8; MAX_LEN + 1];
        loop {
            self.flush();
            while let Some(ev) = self.client.poll_event() {
                match ev {
                    Event::Reply { request, reply } if request == handle => return Ok(reply),
                    Event::Failed { request, error } if request == handle => {
                        return Err(error.into());
                    }
                    _ => {}
                }
            }
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                self.client.cancel(handle);
                return Err(UdpError::TimedOut);
            }
            let now = self.now();
            let wait = self
                .client
                .poll_timeout()
                .map_or(left, |d| {
                    std::time::Duration::from_micros(d.saturating_duration_since(now).as_micros())
                })
                .min(left)
                .max(std::time::Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let _ = self.client.handle_reply(self.now(), from, &buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => {
                    self.client.cancel(handle);
                    return Err(e.into());
                }
            }
            let now = self.now();
            if self.client.poll_timeout().is_some_and(|d| d <= now) {
                self.client.handle_timeout(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::client::ServerConfig;
    use crate::wire::{self, Attribute, Code, Packet, Repr};
    use kmp_api::Duration;
    use kmp_api::crypto::SecretBytes;

    /// Answers every Access-Request on `socket` with an Access-Accept carrying an EAP-Success
    /// and MS-MPPE keys, until `count` requests were answered.
    fn accepting_server(socket: UdpSocket, secret: &'static [u8], count: usize) {
        let mut buf = [0u8; 4096];
        for _ in 0..count {
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            let req = Repr::parse(&Packet::new_checked(&buf[..n]).unwrap()).unwrap();
            wire::verify_message_authenticator(&buf[..n], &req.authenticator, secret).unwrap();
            let key = |k: u8, salt| {
                let v = wire::encrypt_mppe_key(&[k; 32], salt, secret, &req.authenticator);
                Attribute::VendorSpecific(wire::VendorSpecific::microsoft(
                    if k == 1 {
                        wire::MS_MPPE_RECV_KEY
                    } else {
                        wire::MS_MPPE_SEND_KEY
                    },
                    &v.unwrap(),
                ))
            };
            let mut b = Repr {
                code: Code::AccessAccept,
                identifier: req.identifier,
                authenticator: [0; 16],
                attributes: vec![
                    Attribute::MessageAuthenticator([0; 16]),
                    Attribute::EapMessage(vec![3, 1, 0, 4]),
                    key(1, [0x81, 1]),
                    key(2, [0x82, 2]),
                ],
            }
            .to_bytes()
            .unwrap();
            wire::sign_response(&mut b, &req.authenticator, secret).unwrap();
            socket.send_to(&b, from).unwrap();
        }
    }

    #[test]
    fn failover_from_a_silent_server_over_udp() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let live = UdpSocket::bind("127.0.0.1:0").unwrap();
        let servers = vec![
            ServerConfig {
                addr: silent.local_addr().unwrap(),
                secret: SecretBytes::from_slice(b"secret-silent"),
            },
            ServerConfig {
                addr: live.local_addr().unwrap(),
                secret: SecretBytes::from_slice(b"secret-live"),
            },
        ];
        let mut config = ClientConfig::new(servers, b"nas-udp-test");
        config.retransmit_timeout = Duration::from_millis(40);
        config.max_transmissions = 2;
        config.dead_time = Duration::from_secs(60);
        let server = std::thread::spawn(move || accepting_server(live, b"secret-live", 2));
        let mut udp = UdpClient::bind("127.0.0.1:0", config).unwrap();
        let request = AccessRequest {
            user_name: b"bob".to_vec(),
            eap_message: vec![2, 1, 0, 8, 1, b'b', b'o', b'b'],
            ..AccessRequest::default()
        };
        let reply = udp
            .exchange(request.clone(), std::time::Duration::from_secs(5))
            .unwrap();
        let Reply::Accept(acc) = reply else {
            panic!("expected Access-Accept")
        };
        assert_eq!(acc.msk.unwrap().expose(), [[1u8; 32], [2u8; 32]].concat());
        let n = *udp.client().counters();
        assert_eq!((n.retransmissions, n.failovers, n.accepts), (1, 1, 1));
        // The silent server got both transmissions of the first request.
        silent.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while let Ok((len, _)) = silent.recv_from(&mut buf) {
            got.push(buf[..len].to_vec());
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], got[1]);
        // Held down: the next request goes straight to the live server.
        let reply = udp
            .exchange(request, std::time::Duration::from_secs(5))
            .unwrap();
        assert!(matches!(reply, Reply::Accept(_)));
        assert!(silent.recv_from(&mut buf).is_err());
        assert_eq!(udp.client().counters().failovers, 1);
        server.join().unwrap();
    }

    #[test]
    fn no_server_answers() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let servers = vec![ServerConfig {
            addr: silent.local_addr().unwrap(),
            secret: SecretBytes::from_slice(b"s"),
        }];
        let mut config = ClientConfig::new(servers, b"nas");
        config.retransmit_timeout = Duration::from_millis(20);
        config.max_transmissions = 2;
        let mut udp = UdpClient::bind("127.0.0.1:0", config).unwrap();
        let err = udp
            .exchange(AccessRequest::default(), std::time::Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(
            err,
            UdpError::Request(RequestError::NoResponse { servers_tried: 1 })
        ));
        // The caller's limit, shorter than the retransmission schedule.
        let servers = vec![ServerConfig {
            addr: silent.local_addr().unwrap(),
            secret: SecretBytes::from_slice(b"s"),
        }];
        let mut udp = UdpClient::bind("127.0.0.1:0", ClientConfig::new(servers, b"nas")).unwrap();
        let err = udp
            .exchange(
                AccessRequest::default(),
                std::time::Duration::from_millis(50),
            )
            .unwrap_err();
        assert!(matches!(err, UdpError::TimedOut));
        assert_eq!(udp.client().outstanding(), 0);
    }
}
