"""`almoner tx …` against a real network, through the console entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from almoner.node.chain.codec import H, decode, encode, to_json_view
from almoner.node.chain.tx import make_tx
from tests.cluster.harness import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("net")) as c:
        yield c


def almoner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "almoner.cli", *args], capture_output=True, text=True, check=False,
        env={**os.environ}, timeout=120,
    )  # fmt: skip


def key_file(c: Cluster, name: str) -> str:
    return str(c.devnet.root / "keys" / f"{name}.key")


def test_single_tx_commands(cluster: Cluster) -> None:
    node = cluster.url("validator-2")
    charity = cluster.key("charity-1").public_key.hex()
    out = almoner("tx", "campaign", "--campaign", "clinic", "--title", "诊所", "--currency", "EUR",
                  "--goal", "100000", "--key", key_file(cluster, "charity-1"), "--node", node,
                  "--wait", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    receipt = json.loads(out.stdout)
    assert receipt["status"] == "committed" and receipt["height"] >= 1
    out = almoner("tx", "donate", "--donation", "cli-1", "--donor", "aa" * 32, "--charity", charity,
                  "--campaign", "clinic", "--amount", "5000", "--currency", "EUR",
                  "--key", key_file(cluster, "platform-1"), "--node", node, "--wait")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("committed ")
    overdraft = almoner("tx", "disburse", "--disbursement", "x", "--fund", "clinic",
                        "--amount", "999999", "--currency", "EUR", "--category", "program",
                        "--payee", "p", "--purpose", "q", "--key", key_file(cluster, "charity-1"),
                        "--node", node)  # fmt: skip
    assert overdraft.returncode == 1
    assert "insufficient_funds" in overdraft.stderr and "Traceback" not in overdraft.stderr
    usage = almoner("tx", "donate", "--donation", "cli-2", "--donor", "zz", "--charity", charity,
                    "--amount", "1", "--currency", "EUR", "--key", key_file(cluster, "platform-1"),
                    "--node", node)  # fmt: skip
    assert usage.returncode == 2 and "--donor" in usage.stderr
    unreachable = almoner("tx", "confirm", "--platform", "ab" * 32, "--donation", "cli-1",
                          "--key", key_file(cluster, "charity-1"),
                          "--node", "http://127.0.0.1:1")  # fmt: skip
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr


def test_bulk_submit_json_lines_and_msgpack(cluster: Cluster, tmp_path: Path) -> None:
    platform = cluster.key("platform-2")
    charity = cluster.key("charity-2").public_key
    txs = [
        make_tx(cluster.chain_id, "donation.record", platform, {
            "donation": f"bulk-{i}", "donor": H(b"%d" % i), "charity": charity, "campaign": None,
            "amount": 100 + i, "currency": "CNY", "received_at": 1_700_000_000_000}, i)
        for i in range(40)
    ]  # fmt: skip
    bad = dict(txs[0])
    bad["sig"] = bytes(64)
    lines = tmp_path / "txs.jsonl"
    lines.write_text("\n".join(json.dumps(to_json_view(t)) for t in [*txs[:30], bad]) + "\n")
    out = almoner("tx", "submit", str(lines), "--node", cluster.url("validator-0"))
    assert out.returncode == 1
    assert "30 accepted, 1 rejected" in out.stdout and "bad_signature" in out.stderr
    stream = tmp_path / "txs.msgpack"
    stream.write_bytes(b"".join(encode(t) for t in txs[30:]))
    out = almoner("tx", "submit", str(stream), "--node", cluster.url("validator-1"), "--json")
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert [r["status"] for r in results] == ["pending"] * 10
    ids = [bytes.fromhex(r["tx_id"]) for r in results]
    with cluster.client("validator-3") as client:

        def all_committed() -> bool:
            return all(client.tx(t)["status"] == "committed" for t in ids)

        cluster.wait_until(all_committed, 30, "bulk txs committed")
        committed = decode(encode(client.tx(ids[0])["tx"]))
    assert committed == txs[30]
