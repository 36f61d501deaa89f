//! IKEv2 cryptographic transforms and key schedule (RFC 7296 §2.13–2.17, RFC 5282, RFC 4615).
