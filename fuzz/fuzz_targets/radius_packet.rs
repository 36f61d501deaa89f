//! RADIUS packets: the codec never panics; whatever parses emits to the same octets (up to
//! Length) and parses back equal. Replies with arbitrary octets never panic the client: as they
//! come, with the outstanding Identifier patched in, and signed with the right secret (then no
//! authenticator check may fail, and a packet that parses must reach an outcome or a typed
//! drop). An MS-MPPE value that decrypts re-encrypts to the same octets.
#![no_main]

use kmp_api::crypto::SecretBytes;
use kmp_api::{Instant, RngHandle};
use libfuzzer_sys::fuzz_target;
use radius::wire::{self, Packet, Repr};
use radius::{AccessRequest, ClientConfig, Dropped, RadiusClient, ServerConfig};

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data)
        && let Ok(r) = Repr::parse(&p)
    {
        let out = r.to_bytes().expect("a parsed packet fits");
        assert_eq!(out, p.bytes(), "emit differs from the parsed octets");
        let again = Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap();
        assert_eq!(again, r);
    }

    let server = "192.0.2.1:1812".parse().unwrap();
    let config = ClientConfig::new(
        vec![ServerConfig {
            addr: server,
            secret: SecretBytes::from_slice(SECRET),
        }],
        b"fuzz",
    );
    let mut client = RadiusClient::new(config, RngHandle::seeded(1)).unwrap();
    client
        .send(Instant::ZERO, AccessRequest::default())
        .unwrap();
    let tx = client.poll_transmit().unwrap();
    let request = Packet::new_checked(&tx.packet[..]).unwrap();
    let (id, ra) = (request.identifier(), request.authenticator());

    let _ = client.handle_reply(Instant::ZERO, server, data);
    let mut patched = data.to_vec();
    if patched.len() > 1 {
        patched[1] = id;
    }
    let _ = client.handle_reply(Instant::ZERO, server, &patched);
    if client.outstanding() == 1 && wire::sign_response(&mut patched, &ra, SECRET).is_ok() {
        match client.handle_reply(Instant::ZERO, server, &patched) {
            Ok(_) => assert!(client.poll_event().is_some()),
            Err(Dropped::BadResponseAuthenticator | Dropped::BadMessageAuthenticator) => {
                panic!("a correctly signed reply failed an authenticator check")
            }
            Err(_) => {}
        }
    }

    if let Ok(key) = wire::decrypt_mppe_key(data, SECRET, &ra) {
        let salt = [data[0], data[1]];
        match wire::encrypt_mppe_key(key.expose(), salt, SECRET, &ra) {
            Ok(enc) => assert_eq!(enc, data),
            // Decryption takes any length; one attribute holds at most this much.
            Err(_) => assert!(key.len() > wire::MAX_MPPE_KEY_LEN),
        }
    }
});
