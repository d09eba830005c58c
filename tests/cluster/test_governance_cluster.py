"""Real processes: a 4-validator devnet adds a fifth validator by quorum (a node started
from its key before it joined), removes an original one, and keeps committing; the
removed validator's messages are refused; `verify` from genesis passes; an observer
started afterwards catches up to the same head. Then an upgrade: nodes pinned to version
1 halt at the agreed height with a clear reason, and continue once restarted without the
pin (docs/governance.md, docs/operators.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from almoner.node.audit.archive import node_items
from almoner.node.audit.verify import verify_chain
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.keys import write_key_file
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.devnet.network import NodeProcesses, create_devnet
from almoner.node.server.config import CONFIG_NAME, load_config, write_config
from almoner.node.server.p2p import seal
from tests.cluster.harness import FAST_PARAMS, Cluster
from tests.p2p_peer import send_msgs


def _config(cluster: Cluster, name: str) -> dict[str, Any]:
    config = load_config(cluster.devnet.home(name) / CONFIG_NAME)
    return {
        "genesis": str(config.genesis),
        "key": str(config.key) if config.key else None,
        "data_dir": "data",
        "listen": config.listen,
        "p2p_listen": config.p2p_listen,
        "peers": dict(config.peers),
    }


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """validator-0..3, `joiner` (observer-0 given a key of its own, not yet a validator),
    and `late` (observer-1, started only when a test asks). With `pinned` as the param,
    the validators run pinned to protocol version 1 (an upgrade rehearsal)."""
    pinned = getattr(request, "param", None) == "pinned"
    devnet = create_devnet(
        tmp_path / "net", nodes=4, base_port=None, params=FAST_PARAMS, observers=2
    )
    procs = NodeProcesses(devnet)
    cluster = Cluster(devnet, procs)
    joiner = KeyPair.generate()
    key_path = tmp_path / "net" / "keys" / "validator-4.key"
    write_key_file(key_path, joiner)
    joiner_config = _config(cluster, "observer-0")
    joiner_config["key"] = str(key_path)
    write_config(devnet.home("observer-0") / CONFIG_NAME, joiner_config)
    for name in cluster.names:  # the originals send consensus traffic to the joiner too
        config = _config(cluster, name)
        config["peers"][joiner.public_key.hex()] = devnet.urls["observer-0"]
        config["max_protocol_version"] = 1 if pinned else None
        write_config(devnet.home(name) / CONFIG_NAME, config)
    cluster.joiner = joiner  # type: ignore[attr-defined]
    try:
        for name in [*cluster.names, "observer-0"]:
            procs.start(name)
        procs.wait_healthy()
        yield cluster
    finally:
        procs.stop_all()


class Gov:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.nonce = int(time.time() * 1e6)

    def tx(self, key: KeyPair, tx_type: str, body: dict[str, Any]) -> bytes:
        self.nonce += 1
        return encode_tx(make_tx(self.cluster.chain_id, tx_type, key, body, self.nonce))

    def submit_all(self, raws: list[bytes], node: str = "validator-0") -> dict[str, Any]:
        """In order to one node (its pending state admits each on top of the previous
        ones), waiting only for the last to commit."""
        with self.cluster.client(node) as client:
            for raw in raws[:-1]:
                client.submit(raw)
            return client.submit(raws[-1], wait=True)

    def adopt(self, pid: str, body: dict[str, Any], approvers: list[KeyPair]) -> int:
        """Propose (validator-0) and approve; the effective height of the adopted change."""
        proposer = self.cluster.key("validator-0")
        tx_type = "validator.propose" if "action" in body else "upgrade.propose"
        approval = {"proposer": proposer.public_key, "proposal": pid}
        self.submit_all(
            [
                self.tx(proposer, tx_type, {"proposal": pid, **body}),
                *(self.tx(key, "proposal.approve", approval) for key in approvers),
            ]
        )
        view = httpx.get(f"{self.cluster.url('validator-0')}/v1/governance", timeout=10).json()
        record = next(p for p in view["proposals"] if p["proposal"] == pid)
        assert record["status"] == "adopted", record
        return int(record["effective_height"])

    def advance_to(self, height: int, what: str) -> None:
        """Heights start only when there is work: commit donations (one block each, at
        most 30) until the head reaches `height`."""
        for _ in range(30):
            if self.cluster.height("validator-0") >= height:
                return
            self.donate(1)
        raise AssertionError(f"the head did not reach height {height} ({what})")

    def donate(self, count: int) -> dict[str, Any]:
        """The receipt of the last one, committed on validator-1."""
        raws = [self.cluster.donation("platform-1", "charity-1") for _ in range(count)]
        return self.submit_all(raws, node="validator-1")


def _validators(cluster: Cluster, name: str) -> list[str]:
    view = httpx.get(f"{cluster.url(name)}/v1/validators", timeout=10).json()
    return [v["pubkey"] for v in view["validators"]]


def _certificate_signers(cluster: Cluster, height: int, node: str = "validator-0") -> set[str]:
    block = httpx.get(f"{cluster.url(node)}/v1/blocks/{height}", timeout=10).json()
    return {vote["validator"] for vote in block["commit"]["votes"]}


def test_add_remove_keep_committing_verify_and_late_observer(cluster: Cluster) -> None:
    gov = Gov(cluster)
    joiner: KeyPair = cluster.joiner  # type: ignore[attr-defined]
    keys = [cluster.key(n) for n in cluster.names]
    gov.donate(3)
    body = {"action": "add", "validator": joiner.public_key, "replaces": None}
    effective = gov.adopt("add-5", {**body, "name": "Audit Office", "org_id": "AUD"}, keys[1:3])
    gov.donate(3)
    gov.advance_to(effective, "the add in force")
    assert joiner.public_key.hex() in _validators(cluster, "validator-0")
    cluster.wait_until(
        lambda: cluster.status("observer-0")["validator"], 60, "the joiner to validate"
    )
    # quorum(5) = 4: commits now need one of the five beyond the original quorum of three
    removal = {"action": "remove", "validator": keys[3].public_key, "replaces": None}
    gone = gov.adopt("drop-3", {**removal, "name": "", "org_id": ""}, [keys[1], keys[2], joiner])
    gov.donate(5)
    gov.advance_to(gone + 2, "blocks after the removal")
    head = cluster.height("validator-0")
    assert keys[3].public_key.hex() not in _validators(cluster, "validator-0")
    for height in range(gone, head + 1):
        assert keys[3].public_key.hex() not in _certificate_signers(cluster, height)
    # with validator-2 down, {0, 1, joiner} are the only quorum (3 of 4): the joiner signs
    cluster.stop("validator-2")
    head = int(gov.donate(1)["height"])
    assert joiner.public_key.hex() in _certificate_signers(cluster, head, "validator-1")
    cluster.wait_until(lambda: cluster.height("validator-0") >= head, 60, "validator-0 at the head")
    # the removed validator's messages are refused by the others
    envelope = seal(keys[3], cluster.chain_id, [])
    refused = httpx.post(
        f"{cluster.url('validator-1')}/v1/p2p/messages",
        content=envelope,
        headers={"content-type": "application/msgpack"},
        timeout=10,
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_validator"
    # ... and it cannot open a p2p channel to them either
    target = cluster.url("validator-1")
    before = refusals(target)
    node = cluster.key("validator-1").public_key
    assert send_msgs(target, node, keys[3], cluster.chain_id, []) == b""
    assert refusals(target) == before + 1
    report = verify_chain(cluster.devnet.genesis, node_items(cluster.url("validator-0"), 1, head))
    assert report.ok, report.violation
    assert report.tx_types["validator.propose"] == 2
    cluster.procs.start("observer-1")
    cluster.procs.wait_healthy(["observer-1"])
    cluster.wait_until(
        lambda: cluster.height("observer-1") >= head, 60, "the late observer to catch up"
    )
    assert cluster.block_hashes("observer-1", head) == cluster.block_hashes("validator-0", head)
    listing = almoner("governance", "--node", cluster.url("observer-1"))
    assert listing.returncode == 0, listing.stderr
    assert "add-5: add" in listing.stdout and "drop-3: remove" in listing.stdout
    assert "Audit Office" in listing.stdout
    rotate_key_through_the_cli(cluster, cluster.devnet.root)


def almoner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "almoner.cli", *args], capture_output=True, text=True, check=False
    )


def rotate_key_through_the_cli(cluster: Cluster, tmp_path: Path) -> None:
    """rotate-key signs with both keys; the old key is then refused with key_retired (403)
    while the new one signs for the same charity."""
    keys = cluster.devnet.root / "keys"
    node = cluster.url("validator-1")
    new_key = tmp_path / "charity-1-new.key"
    write_key_file(new_key, KeyPair.generate())
    rotated = almoner(
        "tx", "rotate-key", "--new-key", str(new_key), "--key", str(keys / "charity-1.key"),
        "--node", node, "--wait",
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    campaign = ("tx", "campaign", "--campaign", "wells", "--title", "水井", "--currency", "CNY")
    old = almoner(*campaign, "--key", str(keys / "charity-1.key"), "--node", node, "--wait")
    assert old.returncode == 1 and "key_retired" in old.stderr
    new = almoner(*campaign, "--key", str(new_key), "--node", node, "--wait")
    assert new.returncode == 0, new.stderr
    party = httpx.get(f"{node}/v1/parties/{cluster.key('charity-1').public_key.hex()}").json()
    assert [e["kind"] for e in party["history"]] == ["register", "rotate"]


@pytest.mark.parametrize("cluster", ["pinned"], indirect=True)
def test_upgrade_halts_at_the_height_and_resumes_after_restart(cluster: Cluster) -> None:
    gov = Gov(cluster)
    keys = [cluster.key(n) for n in cluster.names]
    gov.donate(2)
    at = cluster.height("validator-0") + 5
    effective = gov.adopt("v2", {"height": at, "version": 2, "note": "rehearsal"}, keys[1:3])
    assert effective == at
    with cluster.client("validator-1") as client:  # traffic that would need height `at`
        for _ in range(10):
            client.submit(cluster.donation("platform-1", "charity-1"))
            if cluster.height("validator-0") >= at - 1:
                break
            time.sleep(0.3)

    def halted(name: str) -> str:
        response = httpx.get(f"{cluster.url(name)}/healthz", timeout=5)
        return response.text if response.status_code == 503 else ""

    for name in cluster.names:
        reason = cluster.wait_until(lambda n=name: halted(n), 60, f"{name} to halt")  # type: ignore[misc]
        assert "protocol version 2 at height" in reason
    assert {cluster.height(n) for n in cluster.names} == {at - 1}
    for name in cluster.names:  # the "new release": no pin
        cluster.stop(name)
        config = _config(cluster, name)
        config["max_protocol_version"] = None
        write_config(cluster.devnet.home(name) / CONFIG_NAME, config)
        cluster.procs.start(name)
    cluster.procs.wait_healthy(cluster.names)
    gov.donate(2)
    gov.advance_to(at + 1, "blocks after the upgrade")
    block = httpx.get(f"{cluster.url('validator-0')}/v1/blocks/{at}", timeout=10).json()
    assert block["header"]["version"] == 2
    head = cluster.height("validator-0")
    report = verify_chain(cluster.devnet.genesis, node_items(cluster.url("validator-0"), 1, head))
    assert report.ok, report.violation


def refusals(url: str) -> int:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    for line in metrics.splitlines():
        if line.startswith('almoner_p2p_refused_total{code="not_a_validator"}'):
            return int(float(line.split()[-1]))
    return 0
