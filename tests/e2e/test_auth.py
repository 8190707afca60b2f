"""Authentication and authorization at the edge: JWKS through the mesh, public,
authenticated and admin routes, refresh rotation, and identity headers that a
client cannot forge."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime

import grpc
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from groundwork.identity.v1 import identity_pb2 as ipb
from groundwork.identity.v1 import identity_pb2_grpc
from tests import edge_flows
from tests.e2e.conftest import PASSWORD, Mesh


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_jwks_is_public_and_verifies_issued_tokens(mesh: Mesh) -> None:
    jwks = httpx.get(f"{mesh.http}/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["content-type"] == "application/json"
    token = mesh.user_token()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks.json()["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        token, key, algorithms=["EdDSA"], audience="groundwork", issuer="https://groundwork.local"
    )
    assert claims["roles"] == ["user"]


def test_me_requires_a_valid_token(mesh: Mesh) -> None:
    assert httpx.get(f"{mesh.http}/v1/me").status_code == 401
    assert httpx.get(f"{mesh.http}/v1/me", headers=_bearer("not.a.token")).status_code == 401
    me = httpx.get(f"{mesh.http}/v1/me", headers=_bearer(mesh.user_token()))
    assert me.status_code == 200 and me.json()["roles"] == ["user"]


def test_tokens_the_edge_must_refuse(mesh: Mesh) -> None:
    token = mesh.user_token()
    claims = jwt.decode(token, options={"verify_signature": False})
    kid, private_pem = mesh.signing_key()  # the real key: only the claims are wrong
    now = int(datetime.now(UTC).timestamp())
    public_x = next(
        k for k in httpx.get(f"{mesh.http}/.well-known/jwks.json").json()["keys"] if k["kid"] == kid
    )["x"]

    def signed(changes: dict[str, object], key_id: str = kid) -> str:
        return jwt.encode(
            {**claims, **changes}, private_pem, algorithm="EdDSA", headers={"kid": key_id}
        )

    header, _, signature = token.split(".")
    tampered_payload = (
        base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["admin"]}).encode())
        .rstrip(b"=")
        .decode()
    )
    forged = {
        "alg none": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "HS256 keyed with the public key": jwt.encode(
            claims, public_x, algorithm="HS256", headers={"kid": kid}
        ),
        "another key": jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
        ),
        "expired": signed({"exp": now - 3600, "iat": now - 4000, "nbf": now - 4000}),
        "not yet valid": signed({"nbf": now + 3600, "exp": now + 7200}),
        "wrong audience": signed({"aud": "someone-else"}),
        "wrong issuer": signed({"iss": "https://evil.example"}),
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "unknown kid": signed({}, key_id="no-such-key"),
        "no expiry": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            private_pem,
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
    }
    assert httpx.get(f"{mesh.http}/v1/me", headers=_bearer(signed({}))).status_code == 200
    # The scheme is case-insensitive (RFC 9110 §11.1) in its usual spellings.
    for scheme in ("bearer", "BEARER"):
        spelled = {"authorization": f"{scheme} {token}"}
        assert httpx.get(f"{mesh.http}/v1/me", headers=spelled).status_code == 200, scheme
    # A token in the query string is for WebSocket upgrades only: as native gRPC
    # (the route matches without the query) it is no token at all. (REST refuses
    # the parameter itself, as an unknown one.)
    with httpx.Client(http2=True, verify=mesh.tls()) as h2:
        in_query = h2.post(
            f"{mesh.https}/groundwork.identity.v1.IdentityService/GetMe",
            params={"access_token": token},
            content=b"\x00\x00\x00\x00\x00",  # an empty GetMeRequest, framed
            headers={"content-type": "application/grpc", "te": "trailers"},
        )
    assert in_query.headers["grpc-status"] == "16"  # UNAUTHENTICATED
    rest = httpx.get(f"{mesh.http}/v1/me", params={"access_token": token})
    assert rest.status_code in (400, 401)
    for name, bad in forged.items():
        reply = httpx.get(f"{mesh.http}/v1/me", headers=_bearer(bad))
        assert reply.status_code == 401, name


def test_client_cannot_forge_identity_headers(mesh: Mesh) -> None:
    token = mesh.user_token()
    me = httpx.get(f"{mesh.http}/v1/me", headers=_bearer(token)).json()
    fake_claims = base64.urlsafe_b64encode(json.dumps({"roles": ["admin"]}).encode()).decode()
    forged = httpx.get(
        f"{mesh.http}/v1/me",
        headers={
            **_bearer(token),
            "x-groundwork-user-id": "someone-else",
            "x-groundwork-claims": fake_claims,
        },
    )
    assert forged.json() == me  # the service saw the verified claims only
    # And a forged admin claim does not pass the edge's role check.
    create = httpx.post(
        f"{mesh.http}/v1/events",
        json={},
        headers={**_bearer(token), "x-groundwork-claims": fake_claims},
    )
    assert create.status_code == 403


def test_admin_writes(mesh: Mesh) -> None:
    event = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1}).json()["events"][0]
    prices = {"FLOOR": 15000, "LOWER": 9000, "UPPER": 4500}
    body = edge_flows.event_body(mesh.http, "Admin Created Show", prices)
    assert httpx.post(f"{mesh.http}/v1/events", json=body).status_code == 401
    user = httpx.post(f"{mesh.http}/v1/events", json=body, headers=_bearer(mesh.user_token()))
    assert user.status_code == 403 and user.headers["content-type"] == "application/json"
    admin = _bearer(mesh.admin_token())
    first = httpx.post(f"{mesh.http}/v1/events", json=body, headers=admin)
    assert first.status_code == 200, first.text
    retry = httpx.post(f"{mesh.http}/v1/events", json=body, headers=admin)
    assert retry.json() == first.json()  # idempotent: the same event, not a second one
    created = first.json()
    assert created["seats_available"] == event["venue"]["capacity"]
    assert created["min_price_cents"] == "4500"
    reused = httpx.post(f"{mesh.http}/v1/events", json={**body, "name": "Other"}, headers=admin)
    assert reused.status_code == 400 and reused.json()["code"] == 9  # FAILED_PRECONDITION

    patch = httpx.patch(
        f"{mesh.http}/v1/events/{created['event_id']}",
        headers=admin,
        json={"name": "Renamed Show", "update_mask": "name"},
    )
    assert patch.status_code == 200, patch.text
    assert httpx.get(f"{mesh.http}/v1/events/{created['event_id']}").json()["name"] == (
        "Renamed Show"
    )
    bad = httpx.patch(
        f"{mesh.http}/v1/events/{created['event_id']}",
        headers=admin,
        json={"venue_id": "x", "update_mask": "venue_id"},
    )
    assert bad.status_code == 400


def test_refresh_rotation_and_logout_through_the_edge(mesh: Mesh) -> None:
    email = f"rot-{uuid.uuid4().hex[:8]}@example.com"
    httpx.post(f"{mesh.http}/v1/auth/signup", json={"email": email, "password": PASSWORD})
    pair = mesh.login(email, PASSWORD)
    new = httpx.post(f"{mesh.http}/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert new.status_code == 200
    replay = httpx.post(
        f"{mesh.http}/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert replay.status_code == 401
    # The reuse revoked the family: the newest token is dead too.
    dead = httpx.post(
        f"{mesh.http}/v1/auth/refresh", json={"refresh_token": new.json()["refresh_token"]}
    )
    assert dead.status_code == 401


def test_signup_login_logout_and_bad_input_through_the_edge(mesh: Mesh) -> None:
    email = f"flow-{uuid.uuid4().hex[:8]}@example.com"
    first = httpx.post(f"{mesh.http}/v1/auth/signup", json={"email": email, "password": PASSWORD})
    duplicate = httpx.post(
        f"{mesh.http}/v1/auth/signup", json={"email": email, "password": "another long password"}
    )
    assert first.status_code == duplicate.status_code == 200
    assert first.json() == duplicate.json()
    wrong = httpx.post(f"{mesh.http}/v1/auth/login", json={"email": email, "password": "nope" * 4})
    assert wrong.status_code == 401
    pair = mesh.login(email, PASSWORD)
    out = httpx.post(f"{mesh.http}/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 200
    again = httpx.post(
        f"{mesh.http}/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert again.status_code == 401
    for body, field in [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "ok@example.com", "password": "short"}, "password"),
        ({"email": 42, "password": PASSWORD}, "email"),
    ]:
        reply = httpx.post(f"{mesh.http}/v1/auth/signup", json=body)
        assert reply.status_code == 400, reply.text
        assert reply.headers["content-type"] == "application/json"
        assert field in reply.json()["message"]
    garbage = httpx.post(
        f"{mesh.http}/v1/auth/signup",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert garbage.status_code == 400 and garbage.headers["content-type"] == "application/json"


def test_login_errors_do_not_enumerate_users(mesh: Mesh) -> None:
    replies = [
        httpx.post(
            f"{mesh.http}/v1/auth/login", json={"email": email, "password": "wrong pw 123456"}
        )
        for email in ("admin@groundwork.local", f"ghost-{time.time_ns()}@example.com")
    ]
    assert [r.status_code for r in replies] == [401, 401]
    assert replies[0].json()["message"] == replies[1].json()["message"]


def test_native_grpc_carries_the_token_too(mesh: Mesh) -> None:
    token = mesh.user_token()
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        me = stub.GetMe(
            ipb.GetMeRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
        assert list(me.roles) == ["user"]
        try:
            stub.GetMe(ipb.GetMeRequest(), timeout=10)
            raise AssertionError("GetMe without a token succeeded")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
