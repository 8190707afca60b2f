"""The Python services of the mesh: how to run, migrate and seed each one.
Names match mesh.yaml; a test fails if the two disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from groundwork_cli.runtime.secrets import ADMIN_EMAIL, Secrets
from groundwork_envoy.model import Mesh


@dataclass(frozen=True)
class SeedContext:
    reset: bool
    secrets: Secrets
    mesh: Mesh


# (database URL, context) -> what was done, or None when there was nothing to do.
Seeder = Callable[[str, SeedContext], Awaitable[str | None]]
# (service, instance) -> that instance's address in this profile
Address = Callable[[str, int], str]
EnvFor = Callable[[Secrets, Mesh, Address], dict[str, str]]


def _no_env(secrets: Secrets, mesh: Mesh, address: Address) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ServiceEntry:
    module: str  # run with `python -m MODULE`
    migrations: Path | None  # None: the service has no database
    seed: Seeder | None = None
    env: EnvFor = field(default=_no_env)


async def _seed_catalog(url: str, ctx: SeedContext) -> str | None:
    from groundwork_catalog.seed import seed

    conn = await asyncpg.connect(url)
    try:
        created = await seed(conn, reset=ctx.reset)
    finally:
        await conn.close()
    return f"seeded {created} events" if created else None


def _identity_env(secrets: Secrets, mesh: Mesh, address: Address) -> dict[str, str]:
    return {
        "GROUNDWORK_KEY_ENCRYPTION_KEY": secrets.identity_kek(),
        "GROUNDWORK_JWT_ISSUER": mesh.auth.issuer,
        "GROUNDWORK_JWT_AUDIENCE": mesh.auth.audience,
    }


async def _seed_identity(url: str, ctx: SeedContext) -> str | None:
    """A signing key before the edge first fetches the JWKS, and a demo admin."""
    from groundwork_identity import repository
    from groundwork_identity.passwords import hash_password
    from groundwork_identity.settings import IdentitySettings
    from groundwork_identity.workers import ensure_keys

    # The database is the one given: in a Job, GROUNDWORK_POSTGRES_URL is also set
    # (for every service's database), which alone the settings would refuse.
    settings = IdentitySettings(key_encryption_key=ctx.secrets.identity_kek(), database_url=url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        key = await ensure_keys(
            pool,
            settings.key_encryption_key,
            datetime.now(UTC),
            timedelta(seconds=settings.key_rotation_seconds),
            timedelta(seconds=settings.key_prepublish_seconds),
        )
        password_hash = await hash_password(ctx.secrets.admin_password())
        async with pool.acquire() as conn:
            admin = await repository.create_account(
                conn, ADMIN_EMAIL, password_hash, ["user", "admin"]
            )
    finally:
        await pool.close()
    done = ([f"signing key {key.kid}"] if key else []) + (
        [f"account {ADMIN_EMAIL}"] if admin else []
    )
    return "created " + ", ".join(done) if done else None


def _ticketing_env(secrets: Secrets, mesh: Mesh, address: Address) -> dict[str, str]:
    return {"GROUNDWORK_TICKET_SIGNING_KEY": secrets.ticket_signing_key()}


def _waitingroom_env(secrets: Secrets, mesh: Mesh, address: Address) -> dict[str, str]:
    metrics = [
        f"http://{address(name, i)}:{mesh.ports.metrics}/metrics"
        for name in mesh.metrics_sources("waitingroom")
        for i in range(mesh.services[name].instances)
    ]
    return {
        "GROUNDWORK_ADMISSION_SIGNING_KEY": secrets.admission_signing_key(),
        "GROUNDWORK_ADMISSION_ISSUER": mesh.auth.admission.issuer,
        "GROUNDWORK_ADMISSION_AUDIENCE": mesh.auth.admission.audience,
        "GROUNDWORK_WAITINGROOM_BOOKING_METRICS": ",".join(metrics),
    }


def services() -> dict[str, ServiceEntry]:
    import groundwork_booking
    import groundwork_catalog
    import groundwork_identity
    import groundwork_payments
    import groundwork_ticketing

    return {
        "identity": ServiceEntry(
            "groundwork_identity",
            Path(groundwork_identity.MIGRATIONS),
            _seed_identity,
            _identity_env,
        ),
        "ratelimit": ServiceEntry("groundwork_ratelimit", None),
        "waitingroom": ServiceEntry("groundwork_waitingroom", None, env=_waitingroom_env),
        "realtime": ServiceEntry("groundwork_realtime", None),
        "booking": ServiceEntry("groundwork_booking", Path(groundwork_booking.MIGRATIONS)),
        "payments": ServiceEntry("groundwork_payments", Path(groundwork_payments.MIGRATIONS)),
        "ticketing": ServiceEntry(
            "groundwork_ticketing", Path(groundwork_ticketing.MIGRATIONS), env=_ticketing_env
        ),
        "catalog": ServiceEntry(
            "groundwork_catalog", Path(groundwork_catalog.MIGRATIONS), _seed_catalog
        ),
    }
