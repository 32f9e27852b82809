"""known_hosts reading as OpenSSH does it: [addr]:port names, hashed entries, patterns, markers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from provisioner.remote.known_hosts import key_types_to_prefer, known_hosts_name, read_known_hosts

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOqVf0ZbQK6QqNpAmuJ+b0bc5n6GYl3dq7m9k0i0Qy1S"


def _hashed(name: str) -> str:
    salt = os.urandom(20)
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


def _names(tmp_path: Path, text: str, name: str) -> list[int]:
    kh = tmp_path / "known_hosts"
    kh.write_text(text)
    return [k.lineno for k in read_known_hosts(str(kh), name)]


def test_port_22_uses_the_bare_address_and_other_ports_brackets() -> None:
    assert known_hosts_name("10.0.0.5", 22) == "10.0.0.5"
    assert known_hosts_name("10.0.0.5", 2222) == "[10.0.0.5]:2222"


def test_bracketed_entry_matches_only_its_port(tmp_path: Path) -> None:
    text = f"[10.0.0.5]:2222 ssh-ed25519 {KEY}\n10.0.0.5 ssh-ed25519 {KEY}\n"
    assert _names(tmp_path, text, "[10.0.0.5]:2222") == [1]
    assert _names(tmp_path, text, "10.0.0.5") == [2]
    assert _names(tmp_path, text, "[10.0.0.5]:2223") == []


def test_hashed_entries_match_their_name_only(tmp_path: Path) -> None:
    text = f"{_hashed('[h.example]:2222')} ssh-ed25519 {KEY}\n{_hashed('other')} ssh-ed25519 {KEY}\n"
    assert _names(tmp_path, text, "[h.example]:2222") == [1]
    assert _names(tmp_path, text, "h.example") == []


def test_comma_lists_wildcards_and_negation(tmp_path: Path) -> None:
    text = (f"a.example,10.0.0.9 ssh-ed25519 {KEY}\n"
            f"*.fleet.example,!bad.fleet.example ssh-ed25519 {KEY}\n"
            f"10.0.0.? ssh-ed25519 {KEY}\n")
    assert _names(tmp_path, text, "10.0.0.9") == [1, 3]
    assert _names(tmp_path, text, "GW1.Fleet.Example") == [2]  # host names compare case-insensitively
    assert _names(tmp_path, text, "bad.fleet.example") == []
    assert _names(tmp_path, text, "10.0.0.10") == []


def test_comments_markers_and_damaged_lines(tmp_path: Path) -> None:
    text = (f"# a comment\n\n@revoked h ssh-ed25519 {KEY}\n@cert-authority h ssh-ed25519 {KEY}\n"
            "h ssh-ed25519 !!!notbase64\nh ssh-ed25519\n"
            f"h ssh-ed25519 {KEY} trailing comment\n")
    found = read_known_hosts(str(tmp_path / "missing"), "h")
    assert found == []
    kh = tmp_path / "known_hosts"
    kh.write_text(text)
    found = read_known_hosts(str(kh), "h")
    assert [(k.lineno, k.marker) for k in found] == [(3, "@revoked"), (4, "@cert-authority"), (7, None)]
    assert found[2].fingerprint.startswith("SHA256:") and not found[2].fingerprint.endswith("=")


def test_known_key_types_are_asked_for_first(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(f"h ssh-rsa {KEY}\nh ecdsa-sha2-nistp256 {KEY}\n")
    supported = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256")
    assert key_types_to_prefer(read_known_hosts(str(kh), "h"), supported) == [
        "rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-ed25519"]
