//! EAP-TLS (RFC 5216 with TLS 1.2, RFC 9190 with TLS 1.3) through OpenSSL.
