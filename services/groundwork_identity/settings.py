"""Identity's own settings (beyond the shared ones)."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import Field, field_validator

from groundwork_shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    jwt_issuer: str = Field(default="https://groundwork.local", min_length=1)
    jwt_audience: str = Field(default="groundwork", min_length=1)
    access_token_seconds: int = Field(default=600, ge=30, le=3600)
    refresh_token_seconds: int = Field(default=14 * 24 * 3600, ge=300, le=90 * 24 * 3600)
    # A new signing key every this many seconds; it is published this long before
    # it signs (longer than the edge caches the JWKS).
    key_rotation_seconds: int = Field(default=24 * 3600, ge=60)
    key_prepublish_seconds: int = Field(default=600, ge=0)
    # Fernet key that encrypts signing keys at rest (Fernet.generate_key()).
    key_encryption_key: str = Field(default="", repr=False)

    @field_validator("key_encryption_key")
    @classmethod
    def _usable_fernet_key(cls, value: str) -> str:
        try:
            Fernet(value.encode())
        except (ValueError, TypeError) as error:
            raise ValueError(
                "must be a Fernet key (python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from error
        return value
