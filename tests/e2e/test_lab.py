"""`groundwork lab` on the test mesh: each experiment's quick variant runs for real
and its result has the shape and sense the fundamental predicts (never a wall-clock
threshold), and the report opens in a real browser with every plot loaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import Browser, binaries
from tests.e2e.conftest import Mesh


@pytest.fixture(scope="module")
def results(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("lab")
    names = [
        "formats",
        "indexes",
        "isolation",
        "servers",
        "security",
        "proxies",
        "protocols",
        "caching",
        "delivery",
        "hol",
        "balancing",
    ]
    run = mesh.cli("lab", *names, "--quick", "--out", str(out), timeout=600)
    assert "seats sold twice" in run.stdout
    yield out


def _figures(results: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
    assert document["command"] == f"groundwork lab {name} --quick"
    assert document["machine"]["cpus"] >= 1 and document["explanation"]
    assert (results / document["plot"]).read_bytes().startswith(b"\x89PNG")
    figures: dict[str, Any] = document["figures"]
    return figures


def test_the_lab_names_its_experiments_and_refuses_unknown_ones(mesh: Mesh) -> None:
    listed = mesh.cli("lab", "--list").stdout
    for name in ("protocols", "formats", "proxies", "caching", "indexes", "isolation", "servers"):
        assert name in listed
    unknown = mesh.cli("lab", "telepathy", check=False)
    assert unknown.returncode == 2
    assert "no experiment telepathy; there are protocols, hol, formats, proxies" in unknown.stderr


def test_protobuf_is_smaller_than_json_and_compression_smaller_still(results: Path) -> None:
    figures = _figures(results, "formats")
    assert set(figures) == {
        "an event",
        "a page of 20 events",
        "a seat map",
        "an availability read",
    }
    for message in figures.values():
        assert message["protobuf_bytes"] < message["json_bytes"]
        for codec in ("gzip", "brotli", "zstd"):
            assert message[f"json_{codec}_bytes"] < message["json_bytes"]
        assert message["protobuf_decode_us"] > 0 and message["json_decode_us"] > 0
    # The compact shape says as much about every seat in far fewer bytes.
    assert figures["an availability read"]["json_bytes"] * 20 < figures["a seat map"]["json_bytes"]


def test_the_catalogs_queries_seek_their_indexes_and_scan_without(results: Path) -> None:
    figures = _figures(results, "indexes")
    assert len(figures["results"]) == 2 * len(figures["sizes"])
    for row in figures["results"]:
        assert "Seq Scan on events" in row["without"]["plan"]
        index = "events_by_start" if row["query"] == "ListEvents" else "events_by_city_start"
        assert f"Index Scan on {index}" in row["with"]["plan"], row
        # The seek reads a handful of pages; the scan reads the table.
        assert row["with"]["shared_buffers"] < row["without"]["shared_buffers"]


def test_only_the_naive_hold_sells_a_seat_twice(results: Path) -> None:
    figures = _figures(results, "isolation")
    naive = figures.pop("naive (READ COMMITTED)")
    # 4 buyers read within a millisecond of each other and think 2 ms before
    # writing: a trial without an overlap is rare, 30 without one unheard of.
    assert naive["double_sold"] >= 1
    assert set(figures) == {"conditional UPDATE", "SELECT ... FOR UPDATE", "SERIALIZABLE + retry"}
    for variant in figures.values():
        assert variant["double_sold"] == 0
    assert figures["SERIALIZABLE + retry"]["retries"] >= 1  # correct only by retrying


def test_every_server_architecture_answers_every_request(results: Path) -> None:
    figures = _figures(results, "servers")
    assert len(figures["results"]) == 3
    for points in figures["results"].values():
        assert [p["clients"] for p in points] == [1, 8, 32]
        for point in points:
            assert point["succeeded"] == point["requests"] > 0 and point["non_2xx"] == 0
            assert point["p99_ms"] >= point["p50_ms"] >= figures["wait_ms"]


def test_tls_handshakes_are_counted_and_argon2_grows_with_its_parameters(results: Path) -> None:
    figures = _figures(results, "security")
    rates = figures["tls_handshakes_per_second"]
    assert set(rates) == {"TLS1.2 full", "TLS1.2 resumed", "TLS1.3 full", "TLS1.3 resumed"}
    assert all(rate > 0 for rate in rates.values())
    costs = list(figures["argon2id_verify_ms"].values())
    # 64 times the work (4 passes over 128 MiB against 1 over 8): no noise hides it.
    assert costs[-1] > costs[0] > 0
    limits = figures["rate_limits"]
    abusive, polite = (
        limits["abusive (h2load, one user)"],
        limits["polite (2 req/s, another user and address)"],
    )
    # The flood exceeds the user's quota (600 a minute): most of it is refused with 429...
    assert abusive["refused"] > 0 and abusive["ok"] + abusive["refused"] == abusive["requests"]
    # ...and the other user, at 2 a second, is never refused.
    assert polite["requests"] >= 1 and polite["refused"] == 0


def test_every_protocol_and_every_hop_answers_every_request(results: Path) -> None:
    protocols = _figures(results, "protocols")
    assert len(protocols["results"]) == 5
    for points in protocols["results"].values():
        assert [p["clients"] for p in points] == [1, 8]
        assert all(p["succeeded"] == p["requests"] and p["non_2xx"] == 0 for p in points)
    # HTTP/3 against HTTP/2 with Python clients alike (h2load has no QUIC here).
    assert list(protocols["python_clients"]) == ["HTTP/2 TLS, httpx", "HTTP/3 QUIC, aioquic"]
    for points in protocols["python_clients"].values():
        assert [p["clients"] for p in points] == [1, 8]
        assert all(p["succeeded"] == p["requests"] > 0 for p in points), points
    assert next(iter(protocols["setup_ms"])) == "TCP connect"
    assert "QUIC (TLS 1.3 inside), aioquic" in protocols["setup_ms"]
    assert all(ms > 0 for ms in protocols["setup_ms"].values())
    proxies = _figures(results, "proxies")
    paths = list(proxies["closed_loop"])
    assert paths[0] == "Envoy direct response, REST h2c (ceiling)"
    assert {
        "app alone, gRPC",
        "two bare proxies + mTLS, gRPC",
        "edge + sidecar, gRPC",
        "one bare L4 proxy (tcp_proxy), gRPC",
    } <= set(paths)
    for figures in proxies["closed_loop"].values():
        assert figures["succeeded"] > 0 and figures["non_2xx"] == 0


def test_a_cache_saves_queries_and_single_flight_tames_a_stampede(results: Path) -> None:
    figures = _figures(results, "caching")
    steady = figures["steady"]
    assert steady["no cache"]["queries"] == steady["no cache"]["reads"], steady
    # Each expiry of the key costs at most one round of concurrent misses, however
    # long the phase took on this machine (its expiries are counted, not assumed).
    aside = steady["cache-aside (Redis, 1 s TTL)"]
    assert 0 < aside["queries"] <= aside["concurrency"] * (1 + aside["expiries"]), aside
    stampede = figures["stampede"]
    assert stampede["without single-flight"]["queries"] > 1, stampede
    assert stampede["with single-flight"]["queries"] == 1, stampede
    (edge,) = figures["edge"].values()
    assert edge["succeeded"] == edge["requests"] > 0 and edge["non_2xx"] == 0, edge


def test_only_the_id_in_the_effects_transaction_gives_exactly_once(results: Path) -> None:
    modes = _figures(results, "delivery")["modes"]
    for figures in modes.values():
        assert figures["produced"] == 300 and figures["kills"] == 5
        assert figures["effects"] == figures["produced"] - figures["lost"] + figures["duplicated"]
    # What each discipline can never do, however the crashes fall:
    assert modes["at most once"]["duplicated"] == 0
    assert modes["at least once"]["lost"] == 0
    assert modes["effectively once"]["lost"] == modes["effectively once"]["duplicated"] == 0
    latency = _figures(results, "delivery")["latency"]
    assert latency["push: XREAD BLOCK"]["p50_ms"] < latency["polling every 100 ms"]["p50_ms"]


def test_both_transports_cross_the_impaired_link_at_every_loss(results: Path) -> None:
    figures = _figures(results, "hol")
    assert set(figures["results"]) == {"HTTP/2 over TCP", "HTTP/3 over QUIC"}
    for points in figures["results"].values():
        assert [p["loss"] for p in points] == [0.0, 0.02]
        for point in points:
            assert point["succeeded"] == point["requests"] == 100
            # Every answer crossed the link at least twice its one-way delay.
            assert point["p50_ms"] >= 2 * figures["delay_ms"]


def test_every_policy_reaches_every_replica_but_ring_hash_keeps_keys_apart(
    results: Path,
) -> None:
    figures = _figures(results, "balancing")
    assert list(figures["results"]) == ["round robin", "least request", "random", "ring hash"]
    for name, policy in figures["results"].items():
        assert policy["succeeded"] == policy["requests"] and policy["non_2xx"] == 0
        # The front Envoy's own per-host counters add up to what h2load sent.
        assert sum(policy["served"]) == policy["requests"], name
        assert all(count > 0 for count in policy["served"]), name


def test_the_report_opens_in_a_browser_with_every_plot(mesh: Mesh, results: Path) -> None:
    written = mesh.cli("lab", "report", "--out", str(results)).stdout
    assert str(results / "report.html") in written
    browser = Browser("", *binaries())
    try:
        browser.driver.get((results / "report.html").as_uri())
        browser.until(
            lambda: (
                browser.driver.execute_script(
                    "return [...document.images].every((i) => i.complete && i.naturalWidth > 0)"
                    " && document.images.length"
                )
                == 11
            ),
            "eleven plots loaded",
        )
        assert [s.get_attribute("id") for s in browser.all("section")] == [
            "balancing",
            "caching",
            "delivery",
            "formats",
            "hol",
            "indexes",
            "isolation",
            "protocols",
            "proxies",
            "security",
            "servers",
        ]
        assert browser.errors() == []
    finally:
        browser.close()
