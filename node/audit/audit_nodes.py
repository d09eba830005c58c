"""Checks a donor or a regulator runs against live nodes, trusting only the genesis.

- `certify_head`: a header plus commit certificate is a *certified head* when the header is
  for this chain and validator set and a quorum of the validators in force at its height
  precommitted its hash: the genesis set, or a set whose adoption governance proved
  (`set_proofs.follow_sets`). Everything else (trace hops, log roots of other nodes) is
  checked against one.
- `check_trace`: every hop of a donation's trace (GET /v1/donations/…/trace) is in the log
  (RFC 9162 inclusion proof against the certified head's log_root), each tx hashes to its
  id and says what the hop says, and the amounts add up (received = held + spent + refunded).
- `audit_nodes`: compares several nodes' certified heads: agreement, lagging nodes, forks
  (two certified blocks at one height, naming the validators who signed both: proof that
  more than f misbehaved) and log inconsistencies (RFC 9162 consistency proofs), plus the
  equivocation evidence each node holds.

The network is reached through the small `NodeSource` protocol (an HTTP client in
production, a local ledger in tests), so these checks are the same code either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from almoner.consensus.certificate import Certificate, CertificateError, verify_certificate
from almoner.node.audit.client import Client
from almoner.node.audit.set_proofs import SetProofError, SetSource, TrustedSets, follow_sets
from almoner.node.chain.codec import H, encode, to_json_view
from almoner.node.chain.consensus_crypto import NodeVerifier
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import HEADER_KEYS, VERSIONED_HEADER_KEYS, validators_hash
from almoner.node.chain.merkle import verify_consistency, verify_inclusion
from almoner.node.chain.signing import block_hash
from almoner.node.errors import AlmonerError


class AuditError(AlmonerError):
    """Something a node sent does not prove what it claims (a verification failure)."""


@dataclass(frozen=True)
class CertifiedHead:
    height: int
    block_hash: bytes
    header: dict[str, Any]
    signers: tuple[bytes, ...]

    @property
    def log_size(self) -> int:
        size: int = self.header["log_size"]
        return size

    @property
    def log_root(self) -> bytes:
        root: bytes = self.header["log_root"]
        return root


def certify_head(
    genesis: Genesis, header: Any, cert_map: Any, sets: TrustedSets | None = None
) -> CertifiedHead:
    """Check a header and its certificate against the set in force at its height: the
    genesis set, or one of the proven `sets` (`set_proofs.follow_sets`); raise AuditError."""
    # From an adopted upgrade height on, headers also carry `version` (docs/governance.md).
    if not isinstance(header, dict) or set(header) not in (HEADER_KEYS, VERSIONED_HEADER_KEYS):
        raise AuditError("the head's header does not have exactly the protocol's keys")
    if header["chain"] != genesis.chain_id:
        raise AuditError(f"the head is for chain {header['chain']!r}, not {genesis.chain_id!r}")
    height = header["height"]
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        raise AuditError("the head's height is not a positive integer")
    validators = genesis.validator_keys if sets is None else sets.at(height)
    if header["validators_hash"] != validators_hash(validators):
        raise AuditError(
            "the head names a validator set that no proven governance change put in force "
            f"at height {height}"
        )
    try:
        digest = block_hash(header)
        cert = Certificate.from_map(cert_map)
        verify_certificate(
            cert,
            genesis.chain_id,
            validators,
            NodeVerifier(),
            height=header["height"],
            block_hash=digest,
        )
    except (CertificateError, AlmonerError, TypeError, ValueError) as exc:
        raise AuditError(f"the head's commit certificate does not verify ({exc})") from exc
    return CertifiedHead(header["height"], digest, header, tuple(v.validator for v in cert.votes))


class NodeSource(Protocol):
    """What the checks need from a node (msgpack views of docs/spec/07, bytes intact)."""

    def head(self) -> dict[str, Any]: ...

    def block(self, height: int) -> dict[str, Any]: ...

    def consistency(self, first: int, second: int) -> dict[str, Any]: ...

    def evidence(self) -> dict[str, Any]: ...


# -- trace --------------------------------------------------------------------------------

HOP_TYPES = {
    "transfer": "funds.transfer",
    "disburse": "funds.disburse",
    "refund": "donation.refund",
}


@dataclass
class TraceCheck:
    trace: dict[str, Any]
    head: CertifiedHead | None
    problems: list[str] = field(default_factory=list)
    proven: list[bytes] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.head is not None and not self.problems

    def to_json(self, genesis: Genesis) -> dict[str, Any]:
        head = None
        if self.head is not None:
            head = {
                "height": self.head.height,
                "block_hash": self.head.block_hash.hex(),
                "log_size": self.head.log_size,
                "log_root": self.head.log_root.hex(),
                "signers": [s.hex() for s in self.head.signers],
                "validators": len(genesis.validators),
            }
        return {
            **to_json_view(self.trace),
            "verified": self.verified,
            "certified_head": head,
            "proven_tx_ids": [t.hex() for t in self.proven],
            "problems": self.problems,
        }


def _hop_matches(
    hop: dict[str, Any], tx: dict[str, Any], platform: bytes, donation: str
) -> str | None:
    body = tx.get("body", {})
    kind = str(hop.get("kind"))
    if tx.get("type") != HOP_TYPES.get(kind):
        return f"is a {tx.get('type')} tx, not a {kind}"
    source = hop.get("from") or {}
    if source.get("charity") != tx.get("signer"):
        return "was not signed by the charity the money left"
    if kind == "transfer":
        dest = hop.get("to") or {}
        if (dest.get("charity"), dest.get("fund")) != (body.get("to"), body.get("to_fund")):
            return "sends the money somewhere other than the hop says"
        if source.get("fund") != body.get("from_fund") or hop.get("purpose") != body.get("purpose"):
            return "moves money from another fund or for another purpose than the hop says"
    elif kind == "disburse":
        for name in ("payee", "purpose", "category", "evidence"):
            if hop.get(name) != body.get(name):
                return f"has another {name} than the hop says"
        if source.get("fund") != body.get("fund"):
            return "spends from another fund than the hop says"
    elif (body.get("platform"), body.get("donation")) != (platform, donation):
        return "refunds another donation"
    if not isinstance(hop.get("amount"), int) or hop["amount"] > body.get("amount", 0):
        return "moves less than the hop claims"
    return None


def check_trace(
    genesis: Genesis,
    trace: dict[str, Any],
    header: Any,
    cert_map: Any,
    txs: dict[bytes, Any],
    sets: TrustedSets | None = None,
) -> TraceCheck:
    """Check a trace against the certified head at trace["head"]; `txs` maps each tx id
    of the trace to the tx the node served for it (missing ones are problems)."""
    try:
        head = certify_head(genesis, header, cert_map, sets)
    except AuditError as exc:
        return TraceCheck(trace, None, [str(exc)])
    check = TraceCheck(trace, head)
    problems = check.problems
    claimed = trace.get("head") or {}
    if claimed.get("height") != head.height or claimed.get("block_hash") != head.block_hash:
        problems.append("the trace was made against a head other than the certified one")
    donation = trace["donation"]
    platform, donation_id = donation["platform"], donation["donation"]
    steps: list[tuple[str, dict[str, Any]]] = [("donation", donation)]
    steps += [(f"hop {i + 1}", hop) for i, hop in enumerate(trace["hops"])]
    confirmation = trace.get("confirmation")
    if donation.get("confirmed"):
        if isinstance(confirmation, dict):
            steps.append(("confirmation", confirmation))
        else:
            problems.append("confirmed: the trace shows no confirmation tx to prove it")
    elif confirmation is not None:
        problems.append("the trace shows a confirmation tx but says the donation is unconfirmed")
    proofs = trace.get("proofs") or {}
    for label, step in steps:
        tid = step["tx_id"]
        proof = proofs.get(tid.hex())
        if not isinstance(proof, dict):
            problems.append(f"{label}: no inclusion proof for tx {tid.hex()}")
            continue
        if proof.get("tree_size") != head.log_size or not verify_inclusion(
            tid, proof.get("leaf_index", -1), head.log_size, proof.get("path", []), head.log_root
        ):
            problems.append(f"{label}: tx {tid.hex()} is not in the certified log")
            continue
        tx = txs.get(tid)
        if tx is None:
            problems.append(f"{label}: the node did not serve tx {tid.hex()}")
            continue
        try:
            if H(encode(tx)) != tid:
                problems.append(f"{label}: the tx served does not hash to {tid.hex()}")
                continue
        except AlmonerError:
            problems.append(f"{label}: the tx served does not encode")
            continue
        if label == "donation":
            body = tx.get("body", {})
            same = (
                tx.get("type") == "donation.record"
                and tx.get("signer") == platform
                and body.get("donation") == donation_id
                and body.get("charity") == donation.get("charity")
                and body.get("amount") == donation.get("amount")
                and body.get("currency") == donation.get("currency")
            )
            if not same:
                problems.append("donation: the recorded tx says something else than the trace")
                continue
        elif label == "confirmation":
            body = tx.get("body", {})
            same = (
                tx.get("type") == "donation.confirm"
                and tx.get("signer") == donation.get("charity")
                and body.get("platform") == platform
                and body.get("donation") == donation_id
            )
            if not same:
                problems.append("confirmation: the tx is not the charity's confirmation")
                continue
        else:
            mismatch = _hop_matches(step, tx, platform, donation_id)
            if mismatch is not None:
                problems.append(f"{label}: tx {tid.hex()[:16]} {mismatch}")
                continue
        check.proven.append(tid)
    gone = sum(h["amount"] for h in trace["hops"] if h.get("kind") in ("disburse", "refund"))
    held = sum(h["amount"] for h in trace.get("held", []))
    if gone + held != donation["amount"]:
        problems.append(
            f"amounts do not add up: {donation['amount']} received, {gone} spent or refunded, "
            f"{held} held"
        )
    return check


def fetch_and_check_trace(
    genesis: Genesis, client: Client, platform: bytes, donation_id: str
) -> TraceCheck:
    trace = client.trace(platform, donation_id)
    at = (trace.get("head") or {}).get("height")
    if not isinstance(at, int) or at < 1:
        return TraceCheck(trace, None, ["the trace names no head"])
    view = client.block(at)
    try:
        sets = proven_sets(genesis, client, view.get("header"))
    except SetProofError as exc:
        return TraceCheck(trace, None, [str(exc)])
    ids = [trace["donation"]["tx_id"], *(hop["tx_id"] for hop in trace["hops"])]
    confirmation = trace.get("confirmation")
    if isinstance(confirmation, dict) and isinstance(confirmation.get("tx_id"), bytes):
        ids.append(confirmation["tx_id"])
    txs: dict[bytes, Any] = {}
    for tid in dict.fromkeys(ids):
        txs[tid] = client.tx(tid)["tx"]
    return check_trace(genesis, trace, view["header"], view["commit"], txs, sets)


def proven_sets(genesis: Genesis, source: object, header: Any) -> TrustedSets | None:
    """The proven validator sets, when `header` names a set other than the genesis one
    and the source can show the changes (GET /v1/governance); else None (genesis set)."""
    genesis_hash = validators_hash(genesis.validator_keys)
    if not isinstance(header, dict) or header.get("validators_hash") == genesis_hash:
        return None
    if not isinstance(source, SetSource):
        return None
    return follow_sets(genesis, source)


# -- audit-nodes --------------------------------------------------------------------------


@dataclass
class NodeHead:
    name: str
    head: CertifiedHead | None = None
    error: str | None = None
    unreachable: bool = False
    sets: TrustedSets | None = None  # proven sets when the chain changed its set


@dataclass
class AuditReport:
    nodes: list[NodeHead]
    lagging: list[str] = field(default_factory=list)
    forks: list[dict[str, Any]] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    checked_pairs: int = 0

    @property
    def unreachable(self) -> list[str]:
        return [n.name for n in self.nodes if n.unreachable]

    @property
    def bad_heads(self) -> list[str]:
        return [n.name for n in self.nodes if n.error is not None and not n.unreachable]

    @property
    def agree(self) -> bool:
        return not (self.forks or self.inconsistencies or self.bad_heads)

    def exit_code(self) -> int:
        if not self.agree:
            return 1
        return 2 if self.unreachable else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code() == 0,
            "agree": self.agree,
            "nodes": [
                {
                    "node": n.name,
                    "height": None if n.head is None else n.head.height,
                    "block_hash": None if n.head is None else n.head.block_hash.hex(),
                    "log_size": None if n.head is None else n.head.log_size,
                    "signers": [] if n.head is None else [s.hex() for s in n.head.signers],
                    "error": n.error,
                    "unreachable": n.unreachable,
                }
                for n in self.nodes
            ],
            "lagging": self.lagging,
            "unreachable": self.unreachable,
            "forks": to_json_view(self.forks),
            "inconsistencies": self.inconsistencies,
            "evidence": to_json_view(self.evidence),
            "checked_pairs": self.checked_pairs,
        }


def _fork(
    genesis: Genesis, height: int, a: tuple[str, CertifiedHead], b: tuple[str, CertifiedHead]
) -> dict[str, Any]:
    common = set(a[1].signers) & set(b[1].signers)
    both = [v for v in genesis.validators if v.pubkey in common]  # genesis order
    return {
        "height": height,
        "blocks": {a[0]: a[1].block_hash, b[0]: b[1].block_hash},
        "double_signers": [v.pubkey for v in both],
        "double_signer_names": [v.name for v in both],
    }


def _compare(
    genesis: Genesis,
    report: AuditReport,
    low: tuple[NodeHead, CertifiedHead],
    high: tuple[NodeHead, CertifiedHead],
    high_source: NodeSource,
) -> None:
    """`low` is at or below `high`'s height; each comes with its certified head."""
    report.checked_pairs += 1
    (low_node, lh), (high_node, hh) = low, high
    low_name, high_name = low_node.name, high_node.name
    sets = high_node.sets
    if lh.height == hh.height:
        if lh.block_hash != hh.block_hash:
            report.forks.append(_fork(genesis, lh.height, (low_name, lh), (high_name, hh)))
        return
    try:
        view = high_source.block(lh.height)
        theirs = certify_head(genesis, view["header"], view["commit"], sets)
    except AuditError as exc:
        report.inconsistencies.append(
            f"{high_name} serves block {lh.height} with a bad certificate: {exc}"
        )
        return
    if theirs.block_hash != lh.block_hash:
        report.forks.append(_fork(genesis, lh.height, (low_name, lh), (high_name, theirs)))
        return
    if lh.log_size in (0, hh.log_size):
        if lh.log_size == hh.log_size and lh.log_root != hh.log_root:
            report.inconsistencies.append(f"{low_name} and {high_name}: same size, other root")
        return
    proof = high_source.consistency(lh.log_size, hh.log_size)
    if not verify_consistency(
        lh.log_size, hh.log_size, lh.log_root, hh.log_root, proof.get("path", [])
    ):
        report.inconsistencies.append(
            f"{high_name}'s log of {hh.log_size} txs does not extend {low_name}'s of "
            f"{lh.log_size} (consistency proof fails)"
        )


def audit_nodes(genesis: Genesis, sources: dict[str, NodeSource]) -> AuditReport:
    """Fetch and check every node's certified head, then compare them pairwise."""
    nodes: list[NodeHead] = []
    for name, source in sources.items():
        node = NodeHead(name)
        try:
            view = source.head()
            node.sets = proven_sets(genesis, source, view.get("header"))
            node.head = certify_head(genesis, view["header"], view["commit"], node.sets)
            if view.get("block_hash") != node.head.block_hash:
                node.error = "the head's block_hash is not the hash of its header"
        except (AuditError, SetProofError) as exc:
            node.error = str(exc)
        except AlmonerError as exc:
            node.error, node.unreachable = str(exc), True
        nodes.append(node)
    report = AuditReport(nodes)
    good = [(n, n.head) for n in nodes if n.head is not None and n.error is None]
    top = max((head.height for _, head in good), default=0)
    report.lagging = [n.name for n, head in good if head.height < top]
    for i, a in enumerate(good):
        for b in good[i + 1 :]:
            low, high = (a, b) if a[1].height <= b[1].height else (b, a)
            try:
                _compare(genesis, report, low, high, sources[high[0].name])
            except AlmonerError as exc:
                high[0].error, high[0].unreachable = str(exc), True
    seen: dict[tuple[bytes, int, int, str], dict[str, Any]] = {}
    for name, source in sources.items():
        node = next(n for n in nodes if n.name == name)
        if node.unreachable:
            continue
        try:
            held = source.evidence()
        except AlmonerError:
            continue
        for status in ("committed", "seen"):
            for record in held.get(status) or []:
                ev = _evidence_summary(record)
                if ev is None:
                    continue
                key = (ev["validator"], ev["height"], ev["round"], ev["kind"])
                entry = seen.setdefault(key, {**ev, "status": status, "nodes": []})
                if status == "committed":
                    entry["status"] = "committed"
                if name not in entry["nodes"]:
                    entry["nodes"].append(name)
    report.evidence = list(seen.values())
    return report


def _evidence_summary(record: Any) -> dict[str, Any] | None:
    """(validator, height, round, kind) of a committed record or a pending pair of votes."""
    if not isinstance(record, dict):
        return None
    if "validator" in record and "height" in record:
        return {k: record.get(k) for k in ("validator", "height", "round", "kind")}
    votes = record.get("votes")
    if isinstance(votes, list) and votes and isinstance(votes[0], dict):
        return {k: votes[0].get(k) for k in ("validator", "height", "round", "kind")}
    return None


__all__ = [
    "AuditError",
    "AuditReport",
    "CertifiedHead",
    "NodeHead",
    "NodeSource",
    "TraceCheck",
    "audit_nodes",
    "certify_head",
    "check_trace",
    "fetch_and_check_trace",
]
