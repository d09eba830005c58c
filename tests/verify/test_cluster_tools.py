"""export, verify --node, trace and audit-nodes against a real 4-validator cluster loaded with
the demo story (donations, confirmations, transfers, disbursements, a refund)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from almoner.cli.main import cli
from almoner.node.audit.audit_nodes import check_trace
from almoner.node.chain.genesis import dump_genesis
from almoner.node.devnet.demo import load_demo
from tests.cluster.harness import Cluster, running_cluster
from tests.localchain import local_genesis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("tools") / "net") as c:
        load_demo(c.devnet, c.url("validator-0"))
        top = c.height("validator-0")
        c.wait_until(lambda: all(c.height(n) >= top for n in c.names), 30, "all nodes at the top")
        yield c


def genesis(c: Cluster) -> str:
    return str(c.devnet.root / "genesis.json")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_export_then_verify_offline(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "chain.almoner"
    code, stdout, err = run(
        "export",
        "--node",
        cluster.url("validator-1"),
        "--out",
        str(out),
        "--genesis",
        genesis(cluster),
        "--json",
    )
    assert (code, err) == (0, "")
    exported = json.loads(stdout)
    assert exported["blocks"] >= 1 and exported["txs"] >= 20
    code, stdout, _ = run("verify", "--archive", str(out), "--genesis", genesis(cluster), "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["head"]["height"] == exported["blocks"]
    assert report["head"]["log_size"] == exported["txs"]
    assert report["tx_types"]["donation.refund"] == 1
    assert report["tx_types"]["funds.disburse"] == 3


def test_verify_node_passes_on_every_honest_node(cluster: Cluster) -> None:
    for name in cluster.names:
        code, stdout, _ = run(
            "verify",
            "--node",
            cluster.url(name),
            "--genesis",
            genesis(cluster),
            "--json",
            "--jobs",
            "1",
        )
        assert code == 0, stdout
        report = json.loads(stdout)
        assert report["ok"] is True and report["head"]["log_size"] >= 20


def test_verify_node_unreachable_exits_2(cluster: Cluster) -> None:
    code, stdout, err = run("verify", "--node", "http://127.0.0.1:9", "--genesis", genesis(cluster))
    assert code == 2 and stdout == "" and err.startswith("almoner: ")


def trace_json(cluster: Cluster, platform: str, donation: str) -> tuple[int, dict[str, Any]]:
    code, stdout, err = run(
        "trace",
        cluster.key(platform).public_key.hex(),
        donation,
        "--node",
        cluster.url("validator-2"),
        "--genesis",
        genesis(cluster),
        "--json",
    )
    assert err == ""
    return code, json.loads(stdout)


def test_trace_of_a_spent_donation_is_verified(cluster: Cluster) -> None:
    code, result = trace_json(cluster, "platform-1", "GN-1001")
    assert code == 0
    assert result["verified"] is True and result["problems"] == []
    assert result["donation"]["confirmed"] is True
    spent = [h for h in result["hops"] if h["kind"] == "disburse"]
    assert spent and spent[0]["payee"] == "Turkana Drilling Co."
    assert len(spent[0]["evidence"]) == 2
    ids = {result["donation"]["tx_id"], *(h["tx_id"] for h in result["hops"])}
    ids.add(result["confirmation"]["tx_id"])  # "confirmed" is proven like every hop
    assert set(result["proven_tx_ids"]) == ids
    assert len(result["certified_head"]["signers"]) >= 3


def test_trace_of_a_refunded_donation_and_human_output(cluster: Cluster) -> None:
    code, result = trace_json(cluster, "platform-2", "SD-0002")
    assert code == 0 and result["verified"] is True
    assert [h["kind"] for h in result["hops"]] == ["refund"]
    assert result["held"][0]["amount"] == 300_00 - 50_00
    code, stdout, _ = run(
        "trace",
        cluster.key("platform-2").public_key.hex(),
        "SD-0002",
        "--node",
        cluster.url("validator-0"),
        "--genesis",
        genesis(cluster),
    )
    assert code == 0
    assert "Refunded" in stdout and "Still held" in stdout and "VERIFIED" in stdout


def test_trace_of_an_unknown_donation_exits_1(cluster: Cluster) -> None:
    code, _, err = run(
        "trace",
        cluster.key("platform-1").public_key.hex(),
        "no-such-donation",
        "--node",
        cluster.url("validator-0"),
        "--genesis",
        genesis(cluster),
    )
    assert code == 1 and "no-such-donation" in err


def test_trace_check_catches_a_node_that_lies(cluster: Cluster) -> None:
    """The real trace verifies; changing what it says about a hop, or its proof, does not."""
    with cluster.client("validator-0") as client:
        trace = client.trace(cluster.key("platform-1").public_key, "GN-1001")
        view = client.block(trace["head"]["height"])
        ids = [trace["donation"]["tx_id"], *(h["tx_id"] for h in trace["hops"])]
        ids.append(trace["confirmation"]["tx_id"])
        txs = {tid: client.tx(tid)["tx"] for tid in ids}
    g = cluster.devnet.genesis
    assert check_trace(g, trace, view["header"], view["commit"], txs).verified
    confirmation = trace.pop("confirmation")
    unproven = check_trace(g, trace, view["header"], view["commit"], txs)
    assert not unproven.verified and "confirmation" in unproven.problems[0]
    trace["confirmation"] = {"tx_id": trace["hops"][0]["tx_id"], "height": 1}
    wrong = check_trace(g, trace, view["header"], view["commit"], txs)
    assert not wrong.verified and "confirmation" in wrong.problems[0]
    trace["confirmation"] = confirmation
    hop = next(h for h in trace["hops"] if h["kind"] == "disburse")
    hop["payee"] = "Someone else"
    lied = check_trace(g, trace, view["header"], view["commit"], txs)
    assert not lied.verified and "payee" in lied.problems[0]
    hop["payee"] = "Turkana Drilling Co."
    proof = trace["proofs"][hop["tx_id"].hex()]
    proof["leaf_index"] += 1
    moved = check_trace(g, trace, view["header"], view["commit"], txs)
    assert not moved.verified and "not in the certified log" in moved.problems[0]
    proof["leaf_index"] -= 1
    weak = dict(view["commit"], votes=view["commit"]["votes"][:2])
    assert not check_trace(g, trace, view["header"], weak, txs).verified


def test_audit_nodes_agree(cluster: Cluster) -> None:
    urls = [a for n in cluster.names for a in ("--node", cluster.url(n))]
    code, stdout, _ = run("audit-nodes", *urls, "--genesis", genesis(cluster), "--json")
    assert code == 0, stdout
    report = json.loads(stdout)
    assert report["agree"] is True and report["forks"] == []
    assert report["checked_pairs"] == 6
    assert all(n["height"] and len(n["signers"]) >= 3 for n in report["nodes"])
    code, stdout, _ = run("audit-nodes", *urls, "--genesis", genesis(cluster))
    assert code == 0 and "AGREE" in stdout


def test_audit_nodes_with_one_unreachable_exits_2(cluster: Cluster) -> None:
    code, stdout, _ = run(
        "audit-nodes",
        "--node",
        cluster.url("validator-0"),
        "--node",
        "http://127.0.0.1:9",
        "--genesis",
        genesis(cluster),
    )
    assert code == 2 and "UNREACHABLE" in stdout


def test_verify_node_against_another_pinned_genesis_is_wrong_genesis(
    cluster: Cluster, tmp_path: Path
) -> None:
    other, _ = local_genesis()
    pinned = tmp_path / "other-genesis.json"
    dump_genesis(other, pinned)
    code, stdout, _ = run(
        "verify", "--node", cluster.url("validator-0"), "--genesis", str(pinned), "--json"
    )
    assert code == 1
    report = json.loads(stdout)
    assert report["head"] is None
    assert report["violation"]["height"] == 0 and report["violation"]["rule"] == "wrong_genesis"
    code, _, err = run(
        "export",
        "--node",
        cluster.url("validator-0"),
        "--out",
        str(tmp_path / "x"),
        "--genesis",
        str(pinned),
    )
    assert code == 2 and "runs genesis" in err
    assert not (tmp_path / "x").exists()


def test_pinned_hash_alone_verifies_a_node_and_export_embeds_its_genesis(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = cluster.devnet.genesis.hash.hex()
    code, stdout, _ = run("verify", "--node", cluster.url("validator-3"), "--genesis", pinned,
                          "--json")  # fmt: skip
    assert code == 0 and json.loads(stdout)["ok"] is True
    other = local_genesis()[0].hash.hex()
    code, stdout, _ = run("verify", "--node", cluster.url("validator-3"), "--genesis", other,
                          "--json")  # fmt: skip
    assert code == 1 and json.loads(stdout)["violation"]["rule"] == "wrong_genesis"
    # No genesis file anywhere: export embeds the node's own, and verify pins its hash.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALMONER_GENESIS", raising=False)
    out = tmp_path / "chain.almoner"
    code, _, err = run("export", "--node", cluster.url("validator-1"), "--out", str(out))
    assert code == 0, err
    code, stdout, _ = run("verify", "--archive", str(out), "--genesis", pinned, "--json")
    assert code == 0 and json.loads(stdout)["ok"] is True


def test_genesis_endpoint_serves_the_document(cluster: Cluster) -> None:
    served = httpx.get(f"{cluster.url('validator-0')}/v1/genesis").json()
    assert served == json.loads((cluster.devnet.root / "genesis.json").read_text())
