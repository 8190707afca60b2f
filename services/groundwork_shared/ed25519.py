"""Ed25519 signing keys in the two forms the project needs: PKCS#8 PEM for
signing, and the public JWK (RFC 8037) that verifies offline. Used by identity
(access tokens), ticketing (ticket tokens) and the waiting room (admission tokens)."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_x(key: Ed25519PrivateKey) -> str:
    """The raw public key, base64url without padding (the JWK's `x`)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": public_x(key),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }


class Signer:
    """One Ed25519 key that signs JWTs (EdDSA) under a `kid` derived from it, with
    its public JWK for the verifiers. Used where one configured key is enough:
    tickets, admission tokens."""

    def __init__(self, pem: bytes, kid_prefix: str, variable: str) -> None:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{variable} must be an Ed25519 key")
        self._key = key
        self.kid = f"{kid_prefix}-{public_x(key)[:8]}"
        self.jwk: dict[str, Any] = public_jwk(key, self.kid)

    @classmethod
    def from_base64(cls, value: str, kid_prefix: str, variable: str) -> Signer:
        """From a setting holding the PEM base64-encoded (to fit one variable)."""
        if not value:
            raise SystemExit(f"{variable} is required")
        return cls(base64.b64decode(value), kid_prefix, variable)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def jwks(self) -> bytes:
        return json.dumps({"keys": [self.jwk]}, separators=(",", ":")).encode()


def new_key_base64() -> str:
    """A fresh key in the form Signer.from_base64 reads."""
    return base64.b64encode(private_pem(Ed25519PrivateKey.generate())).decode()
