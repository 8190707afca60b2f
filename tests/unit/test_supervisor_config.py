from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from groundwork_cli.runtime.layout import Layout
from groundwork_cli.runtime.plan import Process
from groundwork_cli.runtime.supervisor import program_section


async def _ok() -> None:
    return None


def test_program_section_quotes_commands_and_environment(tmp_path: Path) -> None:
    process = Process(
        "postgres",
        ["/bin/postgres", "-c", "unix_socket_directories=", "-c", "x=a b"],
        gate=_ok,
        binds=[],
        user="embedded_postgres",
        stop_signal="INT",
    )
    text = program_section(Layout(tmp_path), process, 10, {"URL": 'postgresql://u:p%"w@h/db'})
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    section = parser["program:postgres"]
    assert shlex.split(section["command"]) == [
        "/bin/postgres",
        "-c",
        "unix_socket_directories=",
        "-c",
        "x=a b",
    ]
    assert section["stopasgroup"] == section["killasgroup"] == "true"
    assert section["stopsignal"] == "INT"
    assert section["user"] == "embedded_postgres"
    assert "%%" in section["environment"]  # supervisord expands %(...)s: percent is escaped
