"""Secrets of the local mesh, generated on first use and kept in the state
directory (0600): the identity key-encryption key, the ticket and admission
signing keys, and the demo admin's password.
On Kubernetes the chart generates them once into Secrets."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

ADMIN_EMAIL = "admin@groundwork.local"


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, from its first byte (a
    write then chmod leaves it readable in between)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    path.chmod(0o600)  # a file that existed keeps its mode through O_CREAT


@dataclass(frozen=True)
class Secrets:
    directory: Path

    def _get(self, name: str, make: Callable[[], str]) -> str:
        path = self.directory / name
        if not path.exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(path, make())
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
