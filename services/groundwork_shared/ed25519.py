"""Ed25519 signing keys in the two forms the project needs: PKCS#8 PEM for
signing, and the public JWK (RFC 8037) that verifies offline. Used by identity
(access tokens) and ticketing (ticket tokens)."""

from __future__ import annotations

import base64
from typing import Any

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
