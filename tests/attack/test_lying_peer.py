"""Finding 2 of issue 14: peers claiming height 10**12 (answering nothing or garbage)
must not stall a restarted node's catch-up nor keep /readyz at 503."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import httpx
import pytest

from almoner.node.chain.crypto import KeyPair
from almoner.node.devnet.network import create_devnet
from almoner.node.server.config import CONFIG_NAME, write_config
from tests.attack.fakepeer import lying_peers
from tests.attack.live import assert_commits, assert_healthy_fast
from tests.cluster.harness import FAST_PARAMS, Cluster, running_cluster


def add_peers(home: Path, urls: list[str]) -> None:
    path = home / CONFIG_NAME
    values = tomllib.loads(path.read_text(encoding="utf-8"))
    for url in urls:
        values["peers"][KeyPair.generate().public_key.hex()] = url
    write_config(path, values)


def catch_up_past_liars(tmp_path: Path, modes: tuple[str, ...], within_s: float) -> None:
    create_devnet(tmp_path, nodes=1, base_port=None, params=FAST_PARAMS, observers=1)
    with lying_peers(*modes) as urls, running_cluster(tmp_path, nodes=1, observers=1) as c:
        assert_commits(c)
        assert_commits(c)
        target = c.height("validator-0")
        observer = c.url("observer-0")
        c.procs.stop("observer-0")
        add_peers(c.devnet.home("observer-0"), urls)
        for _ in range(3):
            assert_commits(c)  # the observer falls behind
        target = c.height("validator-0")
        c.start("observer-0")
        started = time.monotonic()
        while time.monotonic() - started < within_s:
            assert_healthy_fast(observer)
            ready = httpx.get(f"{observer}/readyz", timeout=1)
            if ready.status_code == 200 and ready.json()["height"] >= target:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"observer not caught up in {within_s}s: {_status(c)}")
        assert_commits(c)
        c.wait_until(lambda: c.height("observer-0") >= c.height("validator-0"), 10, "follow")
        log = (c.devnet.home("observer-0") / "node.log").read_text(errors="replace")
        assert "strike" in log, "the liars were struck"


def _status(c: Cluster) -> object:
    return httpx.get(f"{c.url('observer-0')}/v1/status", timeout=2).json()


def test_liars_claiming_a_huge_height_do_not_stall_catch_up(tmp_path: Path) -> None:
    catch_up_past_liars(tmp_path, ("empty", "garbage"), within_s=15)


@pytest.mark.attack
def test_a_stalling_liar_is_dropped_and_catch_up_completes(tmp_path: Path) -> None:
    """A peer trickling a byte a second passes per-read timeouts; the fetch's total time
    limit strikes it, and catch-up falls back to an honest peer."""
    catch_up_past_liars(tmp_path, ("stall", "empty", "garbage"), within_s=45)


@pytest.mark.attack
def test_a_restarted_validator_catches_up_past_liars(tmp_path: Path) -> None:
    """The original finding: a validator restarted behind, with a peer claiming 10**12."""
    with lying_peers("empty", "garbage") as urls, running_cluster(tmp_path) as c:
        c.stop("validator-3")
        add_peers(c.devnet.home("validator-3"), urls)
        for _ in range(6):
            assert_commits(c, "validator-0")  # three of four: still a quorum
        target = c.height("validator-0")
        c.start("validator-3")
        deadline = time.monotonic() + 30
        while c.height("validator-3") < target:
            assert_healthy_fast(c.url("validator-3"))
            assert time.monotonic() < deadline, f"validator-3 stuck at {c.height('validator-3')}"
            time.sleep(0.2)
        assert_commits(c, "validator-3")
        log = (c.devnet.home("validator-3") / "node.log").read_text(errors="replace")
        assert "strike" in log
