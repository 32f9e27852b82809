"""The ciphers and MACs the SSH transport offers in its handshake, and why those."""

from __future__ import annotations

# What the handshake offers, most preferred first; only these, whatever paramiko's defaults add. Key exchange
# keeps paramiko's order: the post-quantum hybrid mlkem768x25519 and curve25519 first (both done in C, ~0.1 ms),
# the finite-field groups last (25-75 ms of pure-Python CPU per connection, only for servers without the others).
# Ciphers: the AEAD AES-GCM modes first (one C call per packet; no separate MAC for paramiko to compute and
# compare byte by byte in Python), then AES-CTR; CBC modes and 3DES are not offered. MACs (for CTR only):
# encrypt-then-MAC first, SHA-2 only; hmac-sha1 and hmac-md5 are not offered.
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")
MACS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512")
