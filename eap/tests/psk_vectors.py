#!/usr/bin/env python3
"""Recomputes the EAP-PSK message vectors of `psk_known_answer` in eap_psk.rs from the RFC 4764
construction with Python `cryptography` (AES-ECB, AES-CTR, CMAC), independently of the Rust
code. EAX is assembled from CMAC and CTR as in the EAX paper. Run: python3 psk_vectors.py"""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC


def aes(k, b):
    e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return e.update(b) + e.finalize()


def cmac(k, m):
    c = CMAC(algorithms.AES(k))
    c.update(m)
    return c.finalize()


def xor_last(b, i):
    return b[:15] + bytes([b[15] ^ i])


def eax_seal(k, n, h, m):
    n2 = cmac(k, bytes(15) + b"\x00" + n)
    h2 = cmac(k, bytes(15) + b"\x01" + h)
    e = Cipher(algorithms.AES(k), modes.CTR(n2)).encryptor()
    c = e.update(m) + e.finalize()
    c2 = cmac(k, bytes(15) + b"\x02" + c)
    tag = bytes(a ^ b ^ d for a, b, d in zip(n2, c2, h2))
    return c, tag


psk = bytes(range(16))
id_s, id_p = b"server", b"peer"
rand_s = bytes(range(0x20, 0x30))
rand_p = bytes(range(0x10, 0x20))
z = aes(psk, bytes(16))
ak, kdk = aes(psk, xor_last(z, 1)), aes(psk, xor_last(z, 2))
x = aes(kdk, rand_p)
tek = aes(kdk, xor_last(x, 1))
msk = b"".join(aes(kdk, xor_last(x, i)) for i in range(2, 6))
emsk = b"".join(aes(kdk, xor_last(x, i)) for i in range(6, 10))
mac_p = cmac(ak, id_p + id_s + rand_s + rand_p)
mac_s = cmac(ak, id_s + rand_p)

m2 = b"\x40" + rand_s + rand_p + mac_p + id_p
# #3 in a Request with Identifier 2, N = 0, R = DONE_SUCCESS.
td3_len = 1 + 16 + 16 + 4 + 16 + 1
hdr3 = bytes([1, 2]) + (4 + 1 + td3_len).to_bytes(2, "big") + b"\x2f" + b"\x80" + rand_s
c3, t3 = eax_seal(tek, bytes(12) + (0).to_bytes(4, "big"), hdr3, b"\x80")
m3 = b"\x80" + rand_s + mac_s + (0).to_bytes(4, "big") + t3 + c3
# #4 in a Response with Identifier 2, N = 1, R = DONE_SUCCESS.
td4_len = 1 + 16 + 4 + 16 + 1
hdr4 = bytes([2, 2]) + (4 + 1 + td4_len).to_bytes(2, "big") + b"\x2f" + b"\xc0" + rand_s
c4, t4 = eax_seal(tek, bytes(12) + (1).to_bytes(4, "big"), hdr4, b"\x80")
m4 = b"\xc0" + rand_s + (1).to_bytes(4, "big") + t4 + c4
for name, v in [("m2", m2), ("m3", m3), ("m4", m4), ("msk", msk), ("emsk", emsk),
                ("session_id", b"\x2f" + rand_p + rand_s)]:
    print(name, v.hex())
