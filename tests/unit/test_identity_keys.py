from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from groundwork_identity import keys, passwords, tokens
from groundwork_shared.errors import InvalidArgument

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
DAY = timedelta(days=1)
TEN_MIN = timedelta(minutes=10)


def test_bootstrap_creates_a_key_active_now() -> None:
    assert keys.next_activation([], T0, DAY, TEN_MIN) == T0


def test_next_key_is_published_before_it_signs() -> None:
    first = keys.new_key(T0)
    assert keys.next_activation([first], T0 + timedelta(hours=1), DAY, TEN_MIN) is None
    due = T0 + DAY - TEN_MIN
    activation = keys.next_activation([first], due, DAY, TEN_MIN)
    assert activation == T0 + DAY
    second = keys.new_key(activation)
    # Published now, but the first key keeps signing until the second's activation.
    assert keys.current([first, second], due) == first
    assert {k.kid for k in keys.published([first, second], due, TEN_MIN)} == {first.kid, second.kid}
    assert keys.next_activation([first, second], due, DAY, TEN_MIN) is None


def test_previous_key_stays_published_until_its_tokens_expired() -> None:
    first, second = keys.new_key(T0), keys.new_key(T0 + DAY)
    just_after = T0 + DAY + timedelta(minutes=5)
    assert keys.current([first, second], just_after) == second
    assert first in keys.published([first, second], just_after, TEN_MIN)
    later = T0 + DAY + TEN_MIN + keys.CLOCK_SKEW + timedelta(seconds=1)
    assert keys.published([first, second], later, TEN_MIN) == [second]


def test_late_rotation_still_prepublishes() -> None:
    first = keys.new_key(T0)
    late = T0 + 3 * DAY
    assert keys.next_activation([first], late, DAY, TEN_MIN) == late + TEN_MIN


def test_access_token_has_every_claim_and_verifies_with_the_jwk() -> None:
    key = keys.new_key(T0)
    policy = tokens.TokenPolicy("https://issuer", "groundwork", TEN_MIN, DAY)
    token = tokens.access_token(key, policy, "user-1", ["user"], datetime.now(UTC))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == key.kid
    public = jwt.PyJWK(key.public_jwk)
    claims = jwt.decode(
        token, public, algorithms=["EdDSA"], audience="groundwork", issuer="https://issuer"
    )
    assert {"iss", "aud", "sub", "exp", "nbf", "iat", "jti", "roles"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 600
    other = jwt.PyJWK(keys.new_key(T0).public_jwk)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["EdDSA"], audience="groundwork")


def test_private_keys_are_encrypted_at_rest() -> None:
    from cryptography.fernet import Fernet, InvalidToken

    kek, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    key = keys.new_key(T0)
    blob = keys.encrypt(kek, key.private_pem)
    assert key.private_pem not in blob
    assert keys.decrypt(kek, blob) == key.private_pem
    with pytest.raises(InvalidToken):
        keys.decrypt(wrong, blob)


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    a, b = tokens.new_refresh_token(), tokens.new_refresh_token()
    assert a != b and len(a) >= 43
    assert tokens.refresh_token_hash(a) != a.encode()
    assert len(tokens.refresh_token_hash(a)) == 32


@pytest.mark.parametrize(
    ("email", "password", "fields"),
    [
        ("nobody", "long enough password", {"email"}),
        ("a@b", "long enough password", {"email"}),
        ("a b@c.de", "long enough password", {"email"}),
        ("ok@example.com", "short", {"password"}),
        ("ok@example.com", "x" * 129, {"password"}),
        ("bad", "short", {"email", "password"}),
    ],
)
def test_credentials_are_validated(email: str, password: str, fields: set[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        passwords.validate_credentials(email, password)
    assert {v.field for v in info.value.violations} == fields


async def test_passwords_hash_with_argon2id_and_verify() -> None:
    stored = await passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify_password(stored, "correct horse battery")
    assert not await passwords.verify_password(stored, "wrong horse battery")
    assert not await passwords.verify_password(None, "correct horse battery")
