"""Heartbeat blocks on an idle network, and equivocation recorded on the ledger end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from click.testing import CliRunner

from almoner.cli.main import cli
from almoner.consensus import Vote
from almoner.node.chain.codec import H
from almoner.node.chain.consensus_crypto import NodeSigner
from tests.cluster.harness import running_cluster
from tests.p2p_peer import send_msgs

HEARTBEAT_MS = 1500


def test_idle_network_makes_only_heartbeat_blocks(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "net", params={"heartbeat_ms": HEARTBEAT_MS}) as c:
        url = c.url("validator-0")
        c.wait_until(lambda: c.height("validator-0") >= 3, 30, "three heartbeat blocks")
        blocks = httpx.get(f"{url}/v1/blocks", params={"from": 1, "limit": 3},
                           headers={"accept": "application/json"}).json()  # fmt: skip
        genesis_time = c.devnet.genesis.genesis_time
        times = [genesis_time] + [b["header"]["time"] for b in blocks]
        for block, previous in zip(blocks, times, strict=False):
            assert block["header"]["tx_count"] == 0
            assert block["header"]["txs_root"] == H(b"").hex()
            # Empty blocks only once the heartbeat is due, never back to back.
            assert block["header"]["time"] - previous >= HEARTBEAT_MS


def test_equivocation_becomes_committed_evidence(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "net") as c:
        with c.client("validator-0") as client:
            client.submit(c.donation("platform-1", "charity-1"), wait=True)
        culprit = c.key("validator-3")
        signer = NodeSigner(culprit)
        height = c.height("validator-0") + 1
        votes = [
            signer.sign_vote(
                Vote("prevote", c.chain_id, height, 0, os.urandom(32), culprit.public_key)
            )
            for _ in range(2)
        ]
        msgs = [{"type": "vote", "vote": v.to_map()} for v in votes]
        for name in ("validator-0", "validator-1"):
            # As the culprit, on its own channel (this replaces the running validator-3's
            # stream until it reconnects); the committed evidence below shows it was read.
            send_msgs(c.url(name), c.key(name).public_key, culprit, c.chain_id, msgs)

        def committed() -> list[dict[str, object]]:
            evidence = httpx.get(f"{c.url('validator-2')}/v1/evidence").json()
            found: list[dict[str, object]] = evidence["committed"]
            return found

        found = c.wait_until(committed, 60, "the evidence.submit tx to commit")
        assert any(e["validator"] == culprit.public_key.hex() for e in found), found
        # Seen evidence is pruned once committed (issue 14): it is listed as committed.
        evidence = httpx.get(f"{c.url('validator-0')}/v1/evidence").json()
        assert all(e["validator"] != culprit.public_key.hex() for e in evidence["seen"])
        assert any(e["validator"] == culprit.public_key.hex() for e in evidence["committed"])
        nodes = [arg for name in c.names for arg in ("--node", c.url(name))]
        result = CliRunner().invoke(
            cli, ["audit-nodes", *nodes, "--genesis", str(c.devnet.root / "genesis.json"), "--json"]
        )
        report = json.loads(result.stdout)
        listed = [e for e in report["evidence"] if e["validator"] == culprit.public_key.hex()]
        assert listed and listed[0]["status"] == "committed"
