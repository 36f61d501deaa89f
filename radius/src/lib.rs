//! A RADIUS client for EAP pass-through: the packet codec (RFC 2865), EAP-Message and
//! Message-Authenticator (RFC 3579, always sent and always required on replies), MS-MPPE key
//! attributes (RFC 2548), and request state with retransmission and failover between servers;
//! sans-IO.

#![forbid(unsafe_code)]

pub mod client;
pub mod udp;
pub mod wire;

pub use client::{
    Accept, AccessRequest, Challenge, ClientConfig, ConfigError, Counters, Dropped, Event,
    RadiusClient, Reject, Reply, RequestError, RequestHandle, SendError, ServerConfig, State,
    Transmit,
};
