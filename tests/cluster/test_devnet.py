"""`almoner devnet` (behind `make devnet`): demo loaded, Ctrl-C stops cleanly, a rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from almoner.node.devnet.network import free_port


def start(root: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "almoner.cli", "devnet", "--dir", str(root),
         "--base-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )  # fmt: skip


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 180) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"devnet exited early:\n{''.join(seen)}")
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {timeout}s:\n{''.join(seen)}")


def interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_devnet_runs_the_demo_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    with start(root, free_port()) as proc:
        out = read_until(proc, "Ctrl-C stops")
        assert "created devnet" in out and "demo loaded: 20 txs committed" in out
        urls = json.loads((root / "urls.json").read_text())
        assert sorted(urls) == [f"validator-{i}" for i in range(4)]
        for name in ("genesis.json", "keys/validator-3.key", "keys/regulator.key",
                     "keys/platform-2.key", "keys/charity-3.key"):  # fmt: skip
            assert (root / name).is_file(), name
        platform = json.loads((root / "keys/platform-1.key").read_text())["public_key"]
        trace = httpx.get(f"{urls['validator-1']}/v1/donations/{platform}/GN-1002/trace").json()
        assert trace["donation"]["confirmed"] is True
        assert [hop["kind"] for hop in trace["hops"]] == ["transfer"]
        height = httpx.get(f"{urls['validator-0']}/v1/status").json()["height"]
        assert height >= 20
        assert "stopped" in interrupt(proc)
    with start(root, free_port()) as proc:
        out = read_until(proc, "Ctrl-C stops")
        assert "resuming devnet" in out and "demo loaded" not in out
        urls = json.loads((root / "urls.json").read_text())
        assert httpx.get(f"{urls['validator-2']}/v1/status").json()["height"] >= height
        interrupt(proc)
