"""`make test`'s pytest: the suite in two lanes at once, one pytest process each.

The lanes share nothing a test holds: each level has loopback addresses of its
own (e2e 127.77 and up, integration 127.78; tests/e2e/conftest.py and
tests/integration/conftest.py), each lane its own temporary directory and log,
and what both may build or install (the Go tools, Debian packages) is taken
under a lock. Much of either lane is waiting (a cluster coming up, a stream's
heartbeat, a restart), so together they take little more than the longer one.

    python -m tests.lanes [PYTEST ARGS...]    # the args go to both lanes

Each lane's output goes to build/test-logs/LANE.log and is printed whole when
both are done; a line a minute says where each one is meanwhile."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LANES = {"unit+e2e": ["tests/unit", "tests/e2e"], "integration": ["tests/integration"]}
LOGS = Path("build/test-logs")
REPORT_EVERY = 60.0


@dataclass
class Lane:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    output: IO[bytes]
    basetemp: Path

    def where(self) -> str:
        """The last line the lane wrote (pytest's progress: a file and its dots)."""
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1][-90:] if lines else "starting"


def start(name: str, paths: list[str], args: list[str]) -> Lane:
    log = LOGS / f"{name.replace('+', '-')}.log"
    output = log.open("wb")
    basetemp = Path(tempfile.mkdtemp(prefix=f"gw-{name.replace('+', '-')}-"))
    command = [sys.executable, "-m", "pytest", f"--basetemp={basetemp}", *paths, *args]
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    return Lane(name, process, log, output, basetemp)


def main(args: list[str]) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    lanes = [start(name, paths, args) for name, paths in LANES.items()]
    try:
        while running := [lane for lane in lanes if lane.process.poll() is None]:
            try:
                running[0].process.wait(timeout=REPORT_EVERY)
            except subprocess.TimeoutExpired:
                minutes = (time.monotonic() - started) / 60
                states = " | ".join(
                    f"{lane.name}: {'done' if lane.process.poll() is not None else lane.where()}"
                    for lane in lanes
                )
                print(f"[{minutes:4.1f} min] {states}", flush=True)
    finally:
        for lane in lanes:
            if lane.process.poll() is None:  # interrupted: stop the other lane too
                lane.process.terminate()
                lane.process.wait()
            lane.output.close()
    failed = [lane for lane in lanes if lane.process.returncode != 0]
    for lane in lanes:
        print(f"\n===== {lane.name} (exit {lane.process.returncode}) =====", flush=True)
        sys.stdout.write(lane.log.read_text(errors="replace"))
        if lane in failed:
            print(f"(kept for a post-mortem: {lane.basetemp})")
        else:
            shutil.rmtree(lane.basetemp, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    verdict = "failed: " + ", ".join(lane.name for lane in failed) if failed else "passed"
    print(f"\nboth lanes in {minutes:.1f} min; {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
