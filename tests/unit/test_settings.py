from __future__ import annotations

import pytest

from groundwork_shared.settings import ServiceSettings, load


def test_defaults_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROUNDWORK_GRPC_LISTEN", raising=False)
    assert load(ServiceSettings).grpc_listen == "127.0.0.1:50051"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GROUNDWORK_GRPC_LISTEN", "nonsense"),
        ("GROUNDWORK_GRPC_LISTEN", "127.0.0.1:99999"),
        ("GROUNDWORK_DB_POOL_MAX", "0"),
        ("GROUNDWORK_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_setting_stops_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as info:
        load(ServiceSettings)
    assert variable in str(info.value)
    assert repr(value) in str(info.value)
