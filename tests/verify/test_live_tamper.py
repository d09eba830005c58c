"""A node whose LevelDB was edited behind its back fails `almoner verify --node` (exit 1,
naming the height), while the honest nodes pass. Real processes, real LevelDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import plyvel

from almoner.node.chain import schema
from almoner.node.chain.codec import decode, encode
from tests.cluster.harness import running_cluster


def verify_node(url: str, genesis: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "almoner.cli",
            "verify",
            "--node",
            url,
            "--genesis",
            str(genesis),
            "--json",
            "--jobs",
            "2",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert b"Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def test_edited_leveldb_fails_verify_at_that_height(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "net") as c:
        with c.client("validator-0") as client:
            receipts = [
                client.submit(c.donation("platform-1", "charity-1", 1_000 + i), wait=True)
                for i in range(3)
            ]
        target = receipts[1]["height"]
        top = max(r["height"] for r in receipts)
        c.wait_until(lambda: all(c.height(n) >= top for n in c.names), 30, "all nodes at the top")

        victim = "validator-3"
        c.stop(victim)
        db = plyvel.DB(str(c.devnet.home(victim) / "data"))
        try:
            key = schema.BLOCK + schema.u64(target)
            block = decode(db.get(key), max_size=1 << 30)
            index = receipts[1]["index_in_block"]
            assert block["txs"][index]["type"] == "donation.record"
            block["txs"][index]["body"]["amount"] = 999_999
            db.put(key, encode(block), sync=True)
        finally:
            db.close()
        c.start(victim)

        genesis = c.devnet.root / "genesis.json"
        code, report = verify_node(c.url(victim), genesis)
        assert code == 1
        assert report["ok"] is False
        assert report["violation"] == {
            "height": target,
            "tx_index": index,
            "rule": "bad_signature",
            "message": report["violation"]["message"],  # type: ignore[index]
        }
        for honest in ("validator-0", "validator-1"):
            code, report = verify_node(c.url(honest), genesis)
            assert code == 0 and report["ok"] is True
