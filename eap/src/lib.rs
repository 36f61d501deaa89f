//! EAP (RFC 3748): the packet codec, peer and authenticator state machines in the spirit of
//! RFC 4137, and the methods EAP-TLS (RFC 5216, RFC 9190), EAP-PSK (RFC 4764) and EAP-pwd
//! (RFC 5931); sans-IO, shared by IEEE 802.1X (`kmp-mka`) and PANA.
//!
//! - [`wire`]: the packet codec.
//! - [`method`]: the interface every method implements ([`method::PeerMethod`],
//!   [`method::ServerMethod`]).

#![forbid(unsafe_code)]

pub mod method;
pub mod tls;
pub mod wire;
