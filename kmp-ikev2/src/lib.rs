//! IKEv2 (RFC 7296) as IEEE 802.15.9 KMP ID 3: the message codec ([`wire`]) and the
//! cryptographic transforms and key schedule ([`crypto`]). The session state machines, the
//! RKMP routing-key profile and the UDP binding build on these.

pub mod crypto;
pub mod wire;
