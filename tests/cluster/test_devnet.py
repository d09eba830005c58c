"""`almoner devnet` (behind `make devnet`): demo loaded, Ctrl-C stops cleanly, a rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from almoner.node.devnet.network import free_port


def start(root: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "almoner.cli", "devnet", "--dir", str(root),
         "--base-port", str(port), *extra],
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
        track = next(line for line in out.splitlines() if "track a demo donation:" in line)
        page = httpx.get(track.split(": ", 1)[1].strip())
        assert page.status_code == 200 and 'data-testid="trace-step"' in page.text
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


def node_cmd(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "almoner.cli", "devnet", "node", *args, "--dir", str(root)],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def commit_donation(root: Path, url: str, n: int) -> int:
    """One donation committed through `url`; the height it was committed at."""
    from almoner.node.chain.codec import H
    from almoner.node.chain.keys import load_key_file
    from almoner.node.chain.tx import encode_tx, make_tx

    charity = load_key_file(root / "keys/charity-1.key").public_key
    body = {
        "donation": f"survive-{n}",
        "donor": H(b"%d" % n),
        "charity": charity,
        "campaign": None,
        "amount": 5,
        "currency": "USD",
        "received_at": 1_700_000_000_000,
    }
    platform = load_key_file(root / "keys/platform-1.key")
    raw = encode_tx(make_tx("almoner-devnet", "donation.record", platform, body, time.time_ns()))
    answer = httpx.post(
        f"{url}/v1/txs",
        params={"wait": "commit"},
        content=raw,
        headers={"content-type": "application/msgpack"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["height"])


def test_devnet_rides_out_one_node_death_and_restarts_it(tmp_path: Path) -> None:
    from tests.cluster.harness import wait_until

    root = tmp_path / "devnet"
    proc = start(root, free_port(), "--no-demo")
    try:
        read_until(proc, "Ctrl-C stops")
        urls = json.loads((root / "urls.json").read_text())
        pid = int((root / "nodes/validator-3/node.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # dies on its own, as far as the devnet knows
        out = read_until(proc, "validator-3 exited with status -9")
        assert "the other 3 keep running" in out

        def status(name: str) -> dict[str, Any]:
            answer: dict[str, Any] = httpx.get(f"{urls[name]}/v1/status", timeout=5).json()
            return answer

        heights = [commit_donation(root, urls[f"validator-{n}"], n) for n in range(3)]
        assert heights == sorted(heights) and heights[-1] > heights[0], heights
        wait_until(
            lambda: all(status(f"validator-{i}")["height"] >= heights[-1] for i in range(3)),
            60,
            "the three to commit without validator-3",
        )
        assert proc.poll() is None, "the devnet must keep running"
        answer = node_cmd(root, "start", "3")
        assert answer.returncode == 0, answer.stderr
        assert "validator-3 is up" in answer.stdout

        def same_head() -> bool:
            at = status("validator-0")["height"]
            if status("validator-3")["height"] < at:
                return False
            hashes = {
                httpx.get(f"{urls[n]}/v1/blocks/{at}", timeout=5).json()["block_hash"]
                for n in ("validator-0", "validator-3")
            }
            return len(hashes) == 1

        wait_until(same_head, 60, "validator-3 back at the others' head")
        stopped = node_cmd(root, "stop", "validator-1")
        assert stopped.returncode == 0 and "validator-1 is down" in stopped.stdout
        assert "validator-1 stopped" in read_until(proc, "validator-1 stopped")
        assert commit_donation(root, urls["validator-3"], 10) > heights[-1]
        assert node_cmd(root, "restart", "1").returncode == 0
        bad = node_cmd(root, "restart", "9")
        assert bad.returncode != 0 and "no node '9'" in bad.stderr
        assert proc.poll() is None
        assert "stopped" in interrupt(proc)
    finally:
        if proc.poll() is None:  # stops its nodes too (never proc.kill(): orphans them)
            proc.terminate()
        proc.communicate(timeout=60)  # and closes its pipe, even if it exited early
    gone = node_cmd(root, "start", "3")
    assert gone.returncode != 0 and "no `almoner devnet` is running" in gone.stderr
