"""Secrets of the local mesh, generated on first use and kept in the state
directory (0600): the identity key-encryption key, the ticket and admission
signing keys, and the demo admin's password.
On Kubernetes the chart generates them once into Secrets."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

ADMIN_EMAIL = "admin@groundwork.local"


@dataclass(frozen=True)
class Secrets:
    directory: Path

    def _get(self, name: str, make: Callable[[], str]) -> str:
        path = self.directory / name
        if not path.exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_text(make())
            path.chmod(0o600)
        return path.read_text().strip()

    def identity_kek(self) -> str:
        return self._get("identity-kek", lambda: Fernet.generate_key().decode())

    def ticket_signing_key(self) -> str:
        from groundwork_ticketing.signing import new_signing_key

        return self._get("ticket-signing-key", new_signing_key)

    def admission_signing_key(self) -> str:
        from groundwork_shared.ed25519 import new_key_base64

        return self._get("admission-signing-key", new_key_base64)

    def admin_password(self) -> str:
        return self._get("admin-password", lambda: secrets.token_urlsafe(18))

    def admin_password_file(self) -> Path:
        self.admin_password()
        return self.directory / "admin-password"
