//! The IEEE 802.15.9 MPX data service over IEEE 802.15.4.
//!
//! - [`wire`]: zero-copy views and `Repr`s for 802.15.4 frames, IEs and the MPX IE.

pub mod pib;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod security;
pub mod service;
pub mod wire;
