//! `cargo bench -p radius --bench md5`: the MD5 costs of one RADIUS reply (kmp-api's
//! `md5_parts` / `hmac_md5_parts`): MD5 of a short input, HMAC-MD5 of a 200-octet packet (the
//! Message-Authenticator), and verifying a signed Access-Accept (Response Authenticator +
//! Message-Authenticator).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use kmp_api::crypto::hmac::{hmac_md5_parts, md5_parts};
use radius::wire::{self, Attribute, Code, Repr};

fn bench(c: &mut Criterion) {
    let secret = b"kmp-radius-bench-secret";
    let packet = [0x5au8; 200];
    c.bench_function("md5_parts 40 octets", |b| {
        b.iter(|| md5_parts(&[black_box(&packet[..24]), secret]).unwrap())
    });
    c.bench_function("hmac_md5_parts 200 octets", |b| {
        b.iter(|| hmac_md5_parts(secret, &[black_box(&packet)]).unwrap())
    });
    let request_auth = [7u8; 16];
    let mut reply = Repr {
        code: Code::AccessAccept,
        identifier: 9,
        authenticator: request_auth,
        attributes: vec![
            Attribute::MessageAuthenticator([0; 16]),
            Attribute::EapMessage(vec![3, 1, 0, 4]),
            Attribute::State(vec![1; 16]),
        ],
    }
    .to_bytes()
    .unwrap();
    wire::sign_response(&mut reply, &request_auth, secret).unwrap();
    c.bench_function("verify Access-Accept (Response Auth + Message-Auth)", |b| {
        b.iter(|| {
            wire::verify_response_authenticator(black_box(&reply), &request_auth, secret).unwrap();
            wire::verify_message_authenticator(black_box(&reply), &request_auth, secret).unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
