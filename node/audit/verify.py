"""The independent verifier (docs/spec/08): replay a whole chain from its genesis, trusting
no node, and report the first violation, the final head, and what the ledger holds.

    report = verify_chain(genesis, items, jobs=4, progress=bar.update)

`items` yields each block's `{"block", "commit"}` msgpack bytes in height order (from an
archive, `node.archive.ArchiveReader.items()`, or a node, `node.archive.node_items`). The
chain is replayed into a fresh `Ledger` over a throw-away LevelDB store (flat memory for
any chain length; a `MemoryStore` may be passed for small chains), with exactly the code a
node runs, so the verifier and the validators cannot disagree about what a valid block is.
Per block, in §5's order: the commit certificate (against the set in force at its height,
as governance scheduled it in the replayed state; a quorum
of distinct members' precommits over this header), then `Ledger.execute_block` (header
keys, link, height, time, validators_hash; each tx's encoding, signature and contract
rules; tx_count/txs_root; log_size/log_root), then the block is committed to the replay.

Signatures dominate the cost, so with `jobs` ≥ 1 a pool of worker processes checks the tx
signatures of upcoming blocks while this process replays: each worker gets raw item bytes,
cuts out each tx's bytes and sign-bytes without re-encoding, and returns the ids of the
txs whose signature verified. Those ids are passed to `execute_block(verified=…)`, which
skips only their signature check; any other tx (a bad signature, or bytes the worker could
not parse) is checked again in order by the replay, so a bad one is still reported as
that tx's `bad_signature`. Look-ahead is bounded (a few chunks per worker), so memory does
not grow with the chain.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from almoner.node.audit.archive import ArchiveTruncated
from almoner.node.chain import schema
from almoner.node.chain.certified import check_certified_block
from almoner.node.chain.codec import H, encode, to_json_view
from almoner.node.chain.consensus_crypto import NodeVerifier
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import BlockError, ExecutedBlock, Ledger
from almoner.node.chain.party_keys import party_id_for
from almoner.node.chain.state import decode_record, fund_balances, list_evidence
from almoner.node.chain.store import KVReader, KVStore, LevelStore, MemoryStore
from almoner.node.chain.tx import signed_tx_id
from almoner.node.errors import AlmonerError

# Every rule a violation may name (docs/spec/08-verify.md: a §2 error code or a block rule).
BLOCK_RULES = frozenset(
    {
        "bad_link",
        "bad_height",
        "bad_time",
        "bad_txs_root",
        "bad_log_root",
        "bad_validators_hash",
        "bad_certificate",
        "bad_version",
        "unsupported_version",
        "wrong_genesis",
        "truncated",
    }
)
TX_RULES = frozenset(
    {
        "too_large",
        "malformed",
        "non_canonical",
        "duplicate_tx",
        "invalid_field",
        "wrong_chain",
        "unknown_type",
        "bad_signature",
        "unknown_signer",
        "signer_suspended",
        "role_not_allowed",
        "duplicate_id",
        "unknown_party",
        "party_suspended",
        "unknown_campaign",
        "unknown_donation",
        "currency_mismatch",
        "restricted_funds",
        "insufficient_funds",
        "refund_exceeds_unspent",
        # governance (docs/governance.md)
        "key_retired",
        "key_in_use",
        "unknown_proposal",
        "proposal_closed",
        "proposal_expired",
        "invalid_set_change",
        "invalid_upgrade",
    }
)
RULES = BLOCK_RULES | TX_RULES

CHUNK_BYTES = 256 * 1024
CHUNK_ITEMS = 64
INFLIGHT_PER_JOB = 3
CATEGORIES = ("program", "admin", "fundraising")


@dataclass(frozen=True)
class Violation:
    height: int
    tx_index: int | None
    rule: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "tx_index": self.tx_index,
            "rule": self.rule,
            "message": self.message,
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Progress:
    blocks: int
    txs: int
    height: int
    elapsed: float


@dataclass
class VerifyReport:
    chain_id: str
    genesis_hash: bytes
    head: dict[str, Any] | None = None
    violation: Violation | None = None
    blocks: int = 0
    txs: int = 0
    tx_types: dict[str, int] = field(default_factory=dict)
    balances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    charities: dict[str, str] = field(default_factory=dict)
    disbursed: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    jobs: int = 0

    @property
    def ok(self) -> bool:
        return self.violation is None

    def overhead(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per charity and currency: disbursed amounts by category and the overhead ratio
        (admin + fundraising) / all disbursements."""
        result: dict[str, dict[str, dict[str, Any]]] = {}
        for charity, by_currency in self.disbursed.items():
            for currency_cat, amount in by_currency.items():
                currency, category = currency_cat.split("/")
                fresh: dict[str, Any] = dict.fromkeys(CATEGORIES, 0)
                entry = result.setdefault(charity, {}).setdefault(currency, fresh)
                entry[category] += amount
        for per_charity in result.values():
            for totals in per_charity.values():
                total = int(sum(totals[c] for c in CATEGORIES))
                spent_on_overhead = int(totals["admin"] + totals["fundraising"])
                totals["total"] = total
                totals["overhead_ratio"] = _ratio(spent_on_overhead, total)
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "head": None if self.head is None else to_json_view(self.head),
            "violation": None if self.violation is None else self.violation.to_json(),
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "blocks": self.blocks,
            "txs": self.txs,
            "tx_types": dict(sorted(self.tx_types.items())),
            "balances": self.balances,
            "charities": self.charities,
            "overhead": self.overhead(),
            "evidence": [to_json_view(e) for e in self.evidence],
            "elapsed_s": round(self.elapsed, 3),
            "txs_per_s": round(self.txs / self.elapsed, 1) if self.elapsed > 0 else None,
            "jobs": self.jobs,
        }


# -- signature workers ---------------------------------------------------------------------


def _tx_slices(item: bytes) -> list[bytes]:
    """The bytes of each tx of an item `{"block": {"header", "txs": [...]}, "commit"}`,
    cut out without decoding them; [] when the item is not shaped like that."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(item) + 1)
    unpacker.feed(item)
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() != "block":
                unpacker.skip()
                continue
            for _ in range(unpacker.read_map_header()):
                if unpacker.unpack() != "txs":
                    unpacker.skip()
                    continue
                slices = []
                for _ in range(unpacker.read_array_header()):
                    start = unpacker.tell()
                    unpacker.skip()
                    slices.append(item[start : unpacker.tell()])
                return slices
    except (ValueError, TypeError, msgpack.UnpackException):
        return []
    return []


def check_signatures(chunk: list[bytes]) -> list[list[bytes]]:
    """Worker task: for each item, the ids of its txs whose signature verifies."""
    results = []
    for item in chunk:
        ids = []
        for raw in _tx_slices(item):
            tid = signed_tx_id(raw)
            if tid is not None:
                ids.append(tid)
        results.append(ids)
    return results


def signature_pool(jobs: int) -> multiprocessing.pool.Pool:
    # fork where it exists: workers need only this module, and unlike spawn/forkserver it
    # does not re-import the caller's __main__ (the CLI, a bench script, a test runner).
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return ctx.Pool(jobs, initializer=_yield_to_the_replay)


def _yield_to_the_replay() -> None:
    """Workers run at a lower priority: the in-order replay is the critical path, and
    signature checks only need the CPU time it leaves (or that other cores have)."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(5)


class _Pipeline:
    """Items with the ids of their already-verified txs, in order, with bounded look-ahead.

    An error from the source (a cut archive, a lost node) is raised only after every item
    read before it has been yielded, so an earlier violation still comes first."""

    def __init__(self, items: Iterable[bytes], pool: multiprocessing.pool.Pool | None, jobs: int):
        self._source = iter(items)
        self._pool = pool
        self._max_inflight = max(1, jobs) * INFLIGHT_PER_JOB
        self._pending: deque[tuple[list[bytes], multiprocessing.pool.AsyncResult[Any]]] = deque()
        self._error: AlmonerError | None = None
        self._done = False

    def _next_chunk(self) -> list[bytes]:
        chunk: list[bytes] = []
        size = 0
        while not self._done and size < CHUNK_BYTES and len(chunk) < CHUNK_ITEMS:
            try:
                raw = next(self._source)
            except StopIteration:
                self._done = True
                break
            except AlmonerError as exc:
                self._error = exc
                self._done = True
                break
            chunk.append(raw)
            size += len(raw)
        return chunk

    def __iter__(self) -> Iterator[tuple[bytes, frozenset[bytes]]]:
        if self._pool is None:
            while True:
                chunk = self._next_chunk()
                for raw in chunk:
                    yield raw, frozenset()
                if not chunk:
                    break
        else:
            while True:
                while not self._done and len(self._pending) < self._max_inflight:
                    chunk = self._next_chunk()
                    if chunk:
                        job = self._pool.apply_async(check_signatures, (chunk,))
                        self._pending.append((chunk, job))
                if not self._pending:
                    break
                chunk, job = self._pending.popleft()
                for raw, ids in zip(chunk, job.get(), strict=True):
                    yield raw, frozenset(ids)
        if self._error is not None:
            raise self._error


# -- the replay ------------------------------------------------------------------------------


class _UnsyncedStore:
    """A verifier's scratch LevelDB: nothing in it must survive a crash, so no fsync."""

    def __init__(self, inner: LevelStore) -> None:
        self.inner = inner
        self.get = inner.get
        self.iterate = inner.iterate

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        self.inner.write(changes, sync=False)

    def close(self) -> None:
        self.inner.close()


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} is not allowed")


def _unpack_item(raw: bytes) -> Any:
    """The item's values. Byte-level canonical form is not required of the container: every
    protocol object in it is re-encoded canonically where it counts (tx ids and the tx
    codec checks in `execute_block`, the header hash), so only the values are trusted."""
    return msgpack.unpackb(raw, raw=False, strict_map_key=False, ext_hook=_reject_ext)


_VERIFIER = NodeVerifier()


def _check_block(
    ledger: Ledger, raw: bytes, verified: frozenset[bytes]
) -> tuple[Violation | None, ExecutedBlock | None]:
    """One block in docs/spec/08-verify.md order; commits it to the replay when it is valid."""
    height = ledger.head.height + 1
    try:
        item = _unpack_item(raw)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        return Violation(height, None, "malformed", f"block {height} does not decode: {exc}"), None
    if not isinstance(item, dict) or set(item) != {"block", "commit"}:
        return Violation(height, None, "malformed", f"item {height} is not {{block, commit}}"), None
    block, cert_map = item["block"], item["commit"]
    if not isinstance(block, dict) or not isinstance(block.get("header"), dict):
        return Violation(height, None, "invalid_field", f"block {height} has no header map"), None
    try:
        executed = check_certified_block(ledger, block, cert_map, _VERIFIER, verified)
    except BlockError as exc:
        rule = exc.rule if exc.rule in RULES else "invalid_field"
        return Violation(height, exc.tx_index, rule, _describe(block, height, exc)), None
    ledger.commit(executed, cert_map)
    return None, executed


def _describe(block: dict[str, Any], height: int, exc: BlockError) -> str:
    """The ledger's message, prefixed with where: block, tx index, tx type and tx id."""
    if exc.tx_index is None:
        return exc.message
    tx = block["txs"][exc.tx_index]
    what = f"block {height}, tx {exc.tx_index}"
    if isinstance(tx, dict) and isinstance(tx.get("type"), str):
        what += f" ({tx['type']}"
        with contextlib.suppress(AlmonerError):
            what += f", id {H(encode(tx)).hex()}"
        what += ")"
    message = exc.message.removeprefix(f"tx {exc.tx_index}: ")
    return f"{what}: {message}"


class ReplayObserver(Protocol):
    """What a caller of `verify_chain` may attach to see the chain as it is verified."""

    def block(self, executed: ExecutedBlock, ledger: Ledger) -> None: ...

    def finish(self, ledger: Ledger, report: VerifyReport) -> None: ...


class _Stats:
    def __init__(self, report: VerifyReport) -> None:
        self.report = report

    def add(self, block: dict[str, Any], reader: KVReader) -> None:
        report = self.report
        report.blocks += 1
        report.txs += len(block["txs"])
        for tx in block["txs"]:
            tx_type = tx["type"]
            report.tx_types[tx_type] = report.tx_types.get(tx_type, 0) + 1
            if tx_type == "funds.disburse":
                body = tx["body"]
                # by party id: after a key rotation the signer is the charity's new key
                charity = party_id_for(reader, tx["signer"])
                per = report.disbursed.setdefault(charity.hex(), {})
                key = f"{body['currency']}/{body['category']}"
                per[key] = per.get(key, 0) + body["amount"]


def _summarise(report: VerifyReport, ledger: Ledger) -> None:
    head = ledger.head
    if head.height > 0:
        report.head = {
            "height": head.height,
            "block_hash": head.block_hash,
            "log_size": head.log_size,
            "log_root": head.log_root,
        }
    for _, raw in ledger.store.iterate(schema.PARTY):
        party = decode_record(raw)
        if party.get("role") != "charity":
            continue
        charity = party["pubkey"]
        report.charities[charity.hex()] = party.get("name", "")
        report.balances[charity.hex()] = [
            {"fund": f["fund"], "currency": f["currency"], "balance": f["balance"]}
            for f in fund_balances(ledger.store, charity)
        ]
    report.evidence = list_evidence(ledger.store)


def verify_chain(
    genesis: Genesis,
    items: Iterable[bytes],
    *,
    jobs: int = 0,
    store: KVStore | None = None,
    source_genesis_hash: bytes | None = None,
    progress: Callable[[Progress], None] | None = None,
    observer: ReplayObserver | None = None,
) -> VerifyReport:
    """Replay `items` from `genesis`; the report names the first violation, if any.

    `observer`, when given, sees every block right after it was verified and committed
    to the replay (with the replay's ledger, to read state as of that block), then
    `finish` once at the end, before the scratch store is dropped: supervision and
    disclosure read the certified chain this way instead of trusting a node.
    `genesis` is the one the caller trusts (the regulator's pinned document); when the
    source declares its own (`source_genesis_hash`, from an archive header or a node's
    status) and it differs, that is `wrong_genesis` at height 0 and nothing is replayed.
    `jobs` = number of signature worker processes (0: check signatures in the replay).
    Raises AlmonerError for source problems other than truncation (I/O, network).
    """
    report = VerifyReport(genesis.chain_id, genesis.hash, jobs=jobs)
    if source_genesis_hash is not None and source_genesis_hash != genesis.hash:
        report.violation = Violation(
            0,
            None,
            "wrong_genesis",
            f"the chain was built on genesis {source_genesis_hash.hex()}, "
            f"not the pinned {genesis.hash.hex()}",
        )
        return report
    scratch: str | None = None
    if store is None:
        scratch = tempfile.mkdtemp(prefix="almoner-verify-")
        store = _UnsyncedStore(LevelStore(scratch))
    pool = signature_pool(jobs) if jobs > 0 else None
    started = time.monotonic()
    try:
        ledger = Ledger(store, genesis)
        if ledger.head.height != 0:
            raise AlmonerError("the verifier needs an empty store to replay into")
        stats = _Stats(report)
        try:
            for raw, verified in _Pipeline(items, pool, jobs):
                violation, executed = _check_block(ledger, raw, verified)
                if violation is not None or executed is None:
                    report.violation = violation
                    break
                stats.add(executed.block, ledger.store)
                if observer is not None:
                    observer.block(executed, ledger)
                if progress is not None:
                    progress(
                        Progress(
                            report.blocks,
                            report.txs,
                            ledger.head.height,
                            time.monotonic() - started,
                        )
                    )
        except ArchiveTruncated as exc:
            report.violation = Violation(ledger.head.height + 1, None, "truncated", str(exc))
        report.elapsed = time.monotonic() - started
        _summarise(report, ledger)
        if observer is not None:
            observer.finish(ledger, report)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        store.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return report


def verify_pairs(
    genesis: Genesis,
    pairs: Iterable[tuple[Any, Any]],
    *,
    jobs: int = 0,
    store: KVStore | None = None,
) -> VerifyReport:
    """`verify_chain` over (block, certificate) maps, for tests and in-process callers."""
    items = (encode({"block": block, "commit": cert}) for block, cert in pairs)
    return verify_chain(genesis, items, jobs=jobs, store=store or MemoryStore())


__all__ = [
    "RULES",
    "Progress",
    "ReplayObserver",
    "VerifyReport",
    "Violation",
    "check_signatures",
    "verify_chain",
    "verify_pairs",
]
