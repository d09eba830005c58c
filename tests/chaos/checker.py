"""The history checker: what must hold of a chaos run, however the faults fell.

- every acknowledged tx is in the final chain exactly once, at the acknowledged height
  and block, on every correct node (and no tx is anywhere twice);
- all correct nodes' chains are prefixes of one another;
- every block's commit certificate verifies against the validators of its height;
- an equivocating validator is named by committed evidence;
- `almoner verify` (full replay) and `audit-nodes` pass against the live nodes.

`check_histories` is pure (chains in, violations out) so that a forged history can be
fed to it as the negative control; `collect` and `run_cli_checks` talk to real nodes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from almoner.consensus import Certificate, CertificateError, verify_certificate
from almoner.node.audit.client import Client
from almoner.node.chain.consensus_crypto import NodeVerifier
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.merkle import root_of
from almoner.node.chain.signing import block_hash, tx_id
from tests.chaos.load import Ack

Chain = list[tuple[dict[str, Any], dict[str, Any]]]  # (block, certificate) from height 1
PAGE = 200


def collect(url: str) -> Chain:
    with Client(url, timeout=60) as client:
        height = int(client.status()["height"])
        chain: Chain = []
        while len(chain) < height:
            page = client.blocks(len(chain) + 1, min(PAGE, height - len(chain)))
            if not page:
                break
            chain.extend(page)
        return chain


def check_histories(
    chains: dict[str, Chain],
    genesis: Genesis,
    acks: Iterable[Ack],
    culprits: Iterable[str] = (),
    evidence: dict[str, list[str]] | None = None,
) -> list[str]:
    violations: list[str] = []
    hashes = {n: [block_hash(b["header"]).hex() for b, _ in c] for n, c in chains.items()}
    violations += _prefixes(hashes)
    violations += _certificates(chains, genesis)
    violations += _exactly_once(chains, hashes, acks)
    for culprit in set(culprits):
        for node, named in (evidence or {}).items():
            if culprit not in named:
                violations.append(f"{node}: no committed evidence names equivocator {culprit[:16]}")
    return violations


def _prefixes(hashes: dict[str, list[str]]) -> list[str]:
    found = []
    names = sorted(hashes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            short = min(len(hashes[a]), len(hashes[b]))
            for h in range(short):
                if hashes[a][h] != hashes[b][h]:
                    found.append(f"fork: {a} and {b} differ at height {h + 1}")
                    break
    return found


def _certificates(chains: dict[str, Chain], genesis: Genesis) -> list[str]:
    found = []
    verifier = NodeVerifier()
    validators = [v.pubkey for v in genesis.validators]
    seen: set[bytes] = set()
    for node, chain in sorted(chains.items()):
        for height, (block, cert) in enumerate(chain, start=1):
            digest = block_hash(block["header"])
            if block["header"].get("height") != height:
                found.append(
                    f"{node}: block at position {height} says height "
                    f"{block['header'].get('height')}"
                )
            ids = [tx_id(tx) for tx in block["txs"]]
            if block["header"].get("tx_count") != len(ids):
                found.append(f"{node}: block {height} tx_count does not match its txs")
            if block["header"].get("txs_root") != root_of(ids):
                found.append(f"{node}: block {height} txs do not hash to its txs_root")
            key = digest + repr(sorted(cert.items())).encode()
            if key in seen:
                continue
            seen.add(key)
            try:
                verify_certificate(
                    Certificate.from_map(cert),
                    genesis.chain_id,
                    validators,
                    verifier,
                    height=height,
                    block_hash=digest,
                )
            except (CertificateError, TypeError, ValueError) as exc:
                found.append(f"{node}: certificate of block {height} does not verify: {exc}")
    return found


def _exactly_once(
    chains: dict[str, Chain], hashes: dict[str, list[str]], acks: Iterable[Ack]
) -> list[str]:
    found = []
    acked = list(acks)
    for node, chain in sorted(chains.items()):
        where: dict[str, list[int]] = {}
        for height, (block, _) in enumerate(chain, start=1):
            for tx in block["txs"]:
                where.setdefault(tx_id(tx).hex(), []).append(height)
        for tid, heights in where.items():
            if len(heights) > 1:
                found.append(f"{node}: tx {tid[:16]} committed {len(heights)} times {heights}")
        for ack in {a.tx_id: a for a in acked}.values():
            if ack.height > len(chain):
                found.append(
                    f"{node}: acknowledged tx {ack.tx_id[:16]} (height {ack.height}) "
                    f"missing: chain ends at {len(chain)}"
                )
            elif where.get(ack.tx_id) != [ack.height]:
                found.append(
                    f"{node}: acknowledged tx {ack.tx_id[:16]} at {where.get(ack.tx_id)},"
                    f" acknowledged at height {ack.height}"
                )
            elif hashes[node][ack.height - 1] != ack.block_hash:
                found.append(
                    f"{node}: acknowledged tx {ack.tx_id[:16]}: block {ack.height} "
                    "is not the acknowledged block"
                )
    return found


def committed_evidence(url: str) -> list[str]:
    answer = httpx.get(f"{url}/v1/evidence", timeout=10).json()
    return [str(e["validator"]) for e in answer.get("committed", [])]


def run_cli_checks(urls: dict[str, str], genesis_file: Path) -> list[str]:
    """`almoner verify` on every node and `audit-nodes` across them, as a user runs them."""
    almoner = str(Path(sys.executable).with_name("almoner"))
    found = []
    for node, url in sorted(urls.items()):
        result = subprocess.run(
            [almoner, "verify", "--node", url, "--genesis", str(genesis_file)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            found.append(f"{node}: almoner verify failed: {(result.stdout + result.stderr)[-400:]}")
    nodes = [arg for url in urls.values() for arg in ("--node", url)]
    result = subprocess.run(
        [almoner, "audit-nodes", *nodes, "--genesis", str(genesis_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        found.append(f"audit-nodes failed: {(result.stdout + result.stderr)[-400:]}")
    return found


def forge(chains: dict[str, Chain], acks: list[Ack]) -> dict[str, Chain]:
    """The negative control: one node's copy of a block loses an acknowledged tx."""
    victim = sorted(chains)[-1]
    forged = {n: list(c) for n, c in chains.items()}
    target = next(a for a in reversed(acks) if a.height <= len(forged[victim]))
    block, cert = forged[victim][target.height - 1]
    kept = [tx for tx in block["txs"] if tx_id(tx).hex() != target.tx_id]
    forged[victim][target.height - 1] = ({**block, "txs": kept}, cert)
    return forged
