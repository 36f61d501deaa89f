//! IKEv2 (RFC 7296) as IEEE 802.15.9 KMP ID 3 (cargo feature `kmp-ikev2` in the binaries):
//! the message codec ([`wire`]), the cryptographic transforms and key schedule ([`crypto`]),
//! the configuration ([`config`]) and the sessions ([`session`]: IKE_SA_INIT and IKE_AUTH with
//! shared-key authentication, one child SA whose keys become 802.15.4 link keys,
//! INFORMATIONAL) and the UDP binding ([`udp`], tested against strongSwan). Still to come:
//! CREATE_CHILD_SA rekeying, the RKMP routing-key profile. Authentication ([`auth`]): shared key,
//! RFC 7427 signatures and the classic methods with X.509 certificates or raw public keys.

pub mod auth;
pub mod config;
pub mod crypto;
pub mod session;
pub mod udp;
pub mod wire;
