"""Run one identity instance: python -m groundwork_identity"""

from __future__ import annotations

from groundwork.identity.v1 import identity_pb2_grpc
from groundwork_identity import SERVICE_NAME
from groundwork_identity.service import IdentityService
from groundwork_identity.settings import IdentitySettings
from groundwork_identity.workers import KeyRing
from groundwork_shared.database import create_pool, reachable
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot


async def main() -> None:
    settings = boot("identity", IdentitySettings)
    if not settings.key_encryption_key:
        raise SystemExit("GROUNDWORK_KEY_ENCRYPTION_KEY is required (a Fernet key)")
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    ring = KeyRing(pool, settings)
    await ring.refresh()
    service = IdentityService(pool, ring, settings)

    async def has_signing_key() -> None:
        ring.signing_key()

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=lambda server: identity_pb2_grpc.add_IdentityServiceServicer_to_server(
                service, server
            ),
            probes=[reachable(pool), has_signing_key],
            workers=[ring.watch],
            on_close=[pool.close],
        ),
    )


if __name__ == "__main__":
    run(main())
