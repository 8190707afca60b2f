"""schemathesis against the running edge, from the OpenAPI document the edge serves
(/openapi.json, generated from the protos): every operation, as an admin where it
needs a token, with schema-valid and schema-breaking input. No answer may be a
server error, and every answer must conform to the document (status, content
type, body). Bounded: a fixed number of examples per operation with a fixed seed;
failures found are kept in a Hypothesis database beside this file, so a found
case is tried first on every later run.

It runs on a mesh of its own (127.81.x.y): the events and rooms it creates must
not change what other tests see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.e2e.conftest import Mesh, make_mesh

EXAMPLES_PER_OPERATION = 50
# Kept in the repository: a case that once failed is replayed first, every run.
DATABASE = DirectoryBasedExampleDatabase(str(Path(__file__).parent / "schemathesis-db"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    mesh = make_mesh(tmp_path_factory.mktemp("fuzzed"), 81)
    # Thousands of requests from one address: the per-client limits would answer
    # most of them 429 and leave the services untested.
    mesh.env.update(
        GROUNDWORK_EDGE_CLIENT_RPS="100000",
        GROUNDWORK_EDGE_CLIENT_BURST="100000",
        GROUNDWORK_RATELIMIT_AUTH_PER_MINUTE="1000000",
        GROUNDWORK_RATELIMIT_USER_PER_MINUTE="1000000",
    )
    with mesh.running():
        yield mesh


@pytest.fixture(scope="module")
def api(fuzzed: Mesh) -> Any:
    document = httpx.get(f"{fuzzed.http}/openapi.json").json()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=fuzzed.http)
    return loaded


@pytest.fixture(scope="module")
def admin_headers(fuzzed: Mesh) -> dict[str, str]:
    return {"authorization": f"Bearer {fuzzed.admin_token()}"}


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_every_operation_holds_to_the_document(api: Any, admin_headers: dict[str, str]) -> None:
    """Each operation as its own Hypothesis run (schemathesis' pytest plugin does
    not load under this pytest), positive and negative input; every failure of
    every operation is reported together."""
    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}
    results = list(api.get_all_operations())
    unusable = [repr(r.err()) for r in results if not hasattr(r, "ok")]
    assert not unusable, unusable  # the document itself must be usable
    operations = [r.ok() for r in results]
    assert len(operations) >= 38
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # @seed below @settings: seed() turns the database off for the
            # settings it sees, and these come after it.
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=DATABASE,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @seed(20261202)
            def run(case: schemathesis.Case[Any]) -> None:
                response = case.call_and_validate(headers=admin_headers, checks=CHECKS, timeout=20)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            # One database entry per operation and mode (the key would otherwise be
            # this loop's one function, the same for all).
            run._hypothesis_internal_database_key = (  # type: ignore[attr-defined]
                f"{operation.label} {mode.value}".encode()
            )
            try:
                run()
            except Unsatisfiable:
                # No input breaks this operation's schema (no parameters, or only a
                # free-form string in the path): nothing negative to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as error:  # each check's failure, with the case to replay
                failures[f"{operation.label} ({mode.value})"] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())
    # It reached the services, with good input and bad.
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 100, statuses
    print("schemathesis answers by status:", dict(sorted(statuses.items())))
