"""The agent a contained playbook run logs in with: it signs with the keys it holds, skips
what is not a usable key, and refuses what OpenSSH forwards to a node (no network needed)."""

import os
import struct
import subprocess

from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from engine.playbooks import agent


def _string(data):
    return struct.pack(">I", len(data)) + data


def _key(tmp_path, kind, passphrase=""):
    path = os.path.join(tmp_path, f"id_{kind}")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", path],
        check=True,
        capture_output=True,
    )
    with open(path) as f:
        return f.read(), open(path + ".pub").read()


def _identities(a, state=None):
    answer = a.answer(bytes([agent.REQUEST_IDENTITIES]), state if state is not None else {})
    assert answer[0] == agent.IDENTITIES_ANSWER
    r = agent._Reader(answer[1:])
    return [(r.string(), r.string()) for _ in range(r.uint32())]


def test_it_signs_with_each_kind_of_key_and_the_signature_verifies(tmp_path):
    for kind in ("ed25519", "ecdsa", "rsa"):
        private, public = _key(tmp_path, kind)
        a = agent.Agent([(private, kind)])
        [(blob, comment)] = _identities(a)
        assert comment == kind.encode()
        flags = agent.RSA_SHA2_256 if kind == "rsa" else 0
        request = (
            bytes([agent.SIGN_REQUEST])
            + _string(blob)
            + _string(b"data")
            + struct.pack(">I", flags)
        )
        answer = a.answer(request, {})
        assert answer[0] == agent.SIGN_RESPONSE
        signature = agent._Reader(agent._Reader(answer[1:]).string())
        name, raw = signature.string(), signature.string()
        pub = load_ssh_public_key(public.encode())
        if kind == "ed25519":
            pub.verify(raw, b"data")
        elif kind == "rsa":
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            assert name == b"rsa-sha2-256"
            pub.verify(raw, b"data", padding.PKCS1v15(), hashes.SHA256())
        else:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

            parts = agent._Reader(raw)
            r = int.from_bytes(parts.string(), "big")
            s = int.from_bytes(parts.string(), "big")
            pub.verify(encode_dss_signature(r, s), b"data", ec.ECDSA(hashes.SHA256()))


def test_what_is_not_a_usable_key_is_skipped(tmp_path):
    encrypted, _ = _key(tmp_path, "ed25519", passphrase="s3cret")
    assert agent.load_key("garbage") is None
    assert agent.load_key(encrypted) is None
    assert agent.Agent([("garbage", "x"), (encrypted, "y")]).keys == {}


def test_a_forwarded_connection_gets_nothing(tmp_path):
    private, _ = _key(tmp_path, "ed25519")
    a = agent.Agent([(private, "k")])
    state = {}
    bind = (
        bytes([agent.EXTENSION])
        + _string(agent.SESSION_BIND)
        + _string(b"hostkey")
        + _string(b"session")
        + _string(b"sig")
        + b"\x01"  # forwarding
    )
    assert a.answer(bind, state) == bytes([agent.FAILURE])
    assert a.answer(bytes([agent.REQUEST_IDENTITIES]), state) == bytes([agent.FAILURE])
    assert len(_identities(a)) == 1  # a connection of the run itself still sees the key


def test_it_refuses_to_add_remove_or_lock_keys(tmp_path):
    private, _ = _key(tmp_path, "ed25519")
    a = agent.Agent([(private, "k")])
    for kind in (17, 18, 19, 22, 23):  # add, remove, remove all, lock, unlock
        assert a.answer(bytes([kind]) + b"\0\0\0\0", {}) == bytes([agent.FAILURE])
    assert len(_identities(a)) == 1
