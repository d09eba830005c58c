"""Query API bench: the first page of every list over a large ledger; prints figures.

    python -m bench.explorer [--txs 1000000] [--bulk] [--dir DIR] [--keep]

Builds (or, with an existing --dir, reuses) a LevelDB ledger of --txs txs (blocks of
5,000: donations to 200 charities from 10 platforms, a fifth of them to campaigns,
confirmations, transfers and spending in all three categories, blocks spread over a
year), then times the first page (50 items) of each query function the API serves: cold
(store just opened) and warm (median of 20).

Two ways to build:
- default: real signed txs through the node's own Ledger (contract, Merkle log,
  certificates, indexes), a chain `almoner verify` accepts. Costs what the contract
  costs: minutes per 100k txs on a busy machine.
- `--bulk`: the same tx stream, written the way a commit writes what the queries read
  (blocks, tx locations, donation records, balances, and the indexes by the real
  `indexes.index_block`), without signatures, lots, hops, Merkle nodes or
  certificates. Much faster; the index key ranges the queries seek in are identical.

Side by side, the same questions answered

- without the indexes (a scan of every donation record, what the node would have to do
  otherwise), for two of them, and
- by SQLite (stdlib) over a table of the same donations with the obvious indexes, what
  an operator might otherwise bolt on as an explorer database.

Asserts nothing about speed; the target (first page < 50 ms) is read off the output.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from almoner.node.chain import queries, schema
from almoner.node.chain.codec import H, decode, encode
from almoner.node.chain.indexes import index_block
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.state import decode_record, donation_key, fund_key
from almoner.node.chain.store import LevelStore, Overlay
from almoner.node.chain.tx import encode_tx, make_tx
from bench.workload import CHAIN, Parties, make_parties
from tests.localchain import LocalChain

BLOCK_TXS = 5_000
N_CHARITIES = 200
N_PLATFORMS = 10
YEAR_MS = 365 * 86_400_000


class Generator:
    """Valid txs in order: balances are tracked so every spending is affordable."""

    def __init__(self, parties: Parties, seed: int = 11) -> None:
        self.p = parties
        self.rng = random.Random(seed)
        self.n = 0
        self.balance = [0] * len(parties.charities)
        self.unconfirmed: list[tuple[int, int, str]] = []

    sign = True

    def tx(self, key: Any, tx_type: str, body: dict[str, Any]) -> bytes:
        self.n += 1
        if not self.sign:
            unsigned = {
                "chain": CHAIN,
                "type": tx_type,
                "signer": key.public_key,
                "nonce": self.n,
                "body": body,
                "sig": bytes(64),
            }
            return encode(unsigned)
        return encode_tx(make_tx(CHAIN, tx_type, key, body, self.n))

    def next_unsigned(self) -> bytes:
        self.sign = False
        try:
            return self.next()
        finally:
            self.sign = True

    def opening(self) -> list[bytes]:
        return [
            self.tx(
                charity,
                "campaign.open",
                {
                    "campaign": f"main-{c}",
                    "title": f"Campaign {c}",
                    "currency": "CNY",
                    "goal": 10**12,
                },
            )
            for c, charity in enumerate(self.p.charities)
        ]

    def next(self) -> bytes:
        rng, p = self.rng, self.p
        roll = rng.random()
        c = rng.randrange(len(p.charities))
        charity = p.charities[c]
        if roll < 0.12 and self.unconfirmed:
            platform, recipient, did = self.unconfirmed.pop(rng.randrange(len(self.unconfirmed)))
            return self.tx(
                p.charities[recipient],
                "donation.confirm",
                {"platform": p.platforms[platform].public_key, "donation": did},
            )
        if roll < 0.85 or self.balance[c] < 10_000:
            platform = rng.randrange(len(p.platforms))
            did = f"d{self.n}"
            amount = rng.randrange(1_000, 100_000)
            campaign = f"main-{c}" if rng.random() < 0.2 else None
            if campaign is None:
                self.balance[c] += amount
            if len(self.unconfirmed) < 200_000:
                self.unconfirmed.append((platform, c, did))
            return self.tx(
                p.platforms[platform],
                "donation.record",
                {
                    "donation": did,
                    "donor": H(did.encode()),
                    "charity": charity.public_key,
                    "campaign": campaign,
                    "amount": amount,
                    "currency": "CNY",
                    "received_at": 1_700_000_000_000 + self.n,
                },
            )
        amount = rng.randrange(1, self.balance[c] // 4)
        self.balance[c] -= amount
        if roll < 0.9:
            to = rng.randrange(len(p.charities))
            self.balance[to] += amount
            return self.tx(
                charity,
                "funds.transfer",
                {
                    "transfer": f"t{self.n}",
                    "from_fund": "general",
                    "to": p.charities[to].public_key,
                    "to_fund": "general",
                    "amount": amount,
                    "currency": "CNY",
                    "purpose": "program support",
                },
            )
        return self.tx(
            charity,
            "funds.disburse",
            {
                "disbursement": f"s{self.n}",
                "fund": "general",
                "amount": amount,
                "currency": "CNY",
                "category": rng.choice(["program", "program", "admin", "fundraising"]),
                "payee": "Supplier Ltd",
                "purpose": "school meals",
                "evidence": [H(b"invoice%d" % self.n)],
            },
        )


def build(path: Path, parties: Parties, total: int) -> None:
    store = LevelStore(path)
    try:
        chain = LocalChain(parties.genesis, parties.validators, store)
        gen = Generator(parties)
        blocks = max(1, total // BLOCK_TXS)
        step = YEAR_MS // blocks
        started = time.perf_counter()
        chain.add_block(gen.opening(), parties.genesis.genesis_time + 1)
        done = 0
        while done < total:
            raw = [gen.next() for _ in range(min(BLOCK_TXS, total - done))]
            ids = {H(r) for r in raw}
            chain.add_block(raw, chain.ledger.head.time + step, signed_ids=ids)
            done += len(raw)
            if chain.height % 20 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  built {done:,} txs ({rate:,.0f} tx/s)", flush=True)
        print(f"built {done:,} txs in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        store.close()


def bulk_build(path: Path, parties: Parties, total: int) -> None:
    """What a commit writes for the queries, in batches, for a large ledger in minutes."""
    store = LevelStore(path)
    try:
        chain = LocalChain(parties.genesis, parties.validators, store)
        gen = Generator(parties)
        chain.add_block(gen.opening(), parties.genesis.genesis_time + 1)  # real campaigns
        ledger = chain.ledger
        balances: dict[bytes, int] = {}
        blocks = max(1, total // BLOCK_TXS)
        step = YEAR_MS // blocks
        height, log_size, when = ledger.head.height, ledger.head.log_size, ledger.head.time
        started = time.perf_counter()
        done = 0
        while done < total:
            height += 1
            when += step
            txs = [decode(gen.next_unsigned()) for _ in range(min(BLOCK_TXS, total - done))]
            overlay = Overlay(store)
            ids = [H(encode(tx)) for tx in txs]
            for index, (tx, tid) in enumerate(zip(txs, ids, strict=True)):
                overlay.put(
                    schema.TX_INDEX + tid,
                    encode({"height": height, "index": index, "leaf_index": log_size + index}),
                )
                _bulk_state(overlay, tx, tid, height, balances)
            header = {
                "chain": CHAIN,
                "height": height,
                "time": when,
                "prev": H(b"%d" % height),
                "proposer": parties.validators[0].public_key,
                "tx_count": len(txs),
                "txs_root": H(b""),
                "log_size": log_size + len(txs),
                "log_root": H(b""),
                "validators_hash": H(b""),
            }
            block = {"header": header, "txs": txs}
            index_block(overlay, block, ids)
            overlay.put(schema.BLOCK + schema.u64(height), encode(block))
            overlay.put(
                schema.META_HEAD, encode({"height": height, "block_hash": H(b"%d" % height)})
            )
            store.write(overlay.changes(), sync=False)
            log_size += len(txs)
            done += len(txs)
            if height % 20 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  bulk-built {done:,} txs ({rate:,.0f} tx/s)", flush=True)
        store.write({schema.FUND_BALANCE + fund: encode(value) for fund, value in balances.items()})
        print(f"bulk-built {done:,} txs in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        store.close()


def _bulk_state(
    overlay: Overlay, tx: dict[str, Any], tid: bytes, height: int, balances: dict[bytes, int]
) -> None:
    """The state the queries read: donation records and fund balances."""
    body, signer = tx["body"], tx["signer"]
    if tx["type"] == "donation.record":
        fund = body["campaign"] or "general"
        record = {
            "platform": signer,
            **body,
            "fund": fund,
            "tx_id": tid,
            "height": height,
            "confirmed": False,
            "confirm_tx": None,
        }
        overlay.put(schema.DONATION + donation_key(signer, body["donation"]), encode(record))
        key = fund_key(body["charity"], body["currency"], fund)
        balances[key] = balances.get(key, 0) + body["amount"]
    elif tx["type"] == "donation.confirm":
        dkey = schema.DONATION + donation_key(body["platform"], body["donation"])
        record = decode_record(overlay.get(dkey) or b"")
        record.update(confirmed=True, confirm_tx=tid)
        overlay.put(dkey, encode(record))
    elif tx["type"] == "funds.transfer":
        out = fund_key(signer, body["currency"], body["from_fund"])
        into = fund_key(body["to"], body["currency"], body["to_fund"])
        balances[out] = balances.get(out, 0) - body["amount"]
        balances[into] = balances.get(into, 0) + body["amount"]
    elif tx["type"] == "funds.disburse":
        out = fund_key(signer, body["currency"], body["fund"])
        balances[out] = balances.get(out, 0) - body["amount"]


def timed(fn: Callable[[], Any], runs: int = 20) -> tuple[float, float, int]:
    """(cold ms, warm median ms, items) of one query."""
    started = time.perf_counter()
    result = fn()
    cold = (time.perf_counter() - started) * 1000
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    items = len(result.items) if isinstance(result, queries.Page) else len(result.get("edges", []))
    return cold, statistics.median(samples), items


def donation_rows(store: LevelStore) -> Iterator[tuple[Any, ...]]:
    for _, raw in store.iterate(schema.DONATION):
        r = decode_record(raw)
        location = decode_record(store.get(schema.TX_INDEX + r["tx_id"]) or b"")
        yield (
            r["platform"],
            r["donation"],
            r["charity"],
            r["fund"],
            int(r["confirmed"]),
            location["height"],
            location["index"],
            r["amount"],
        )


def sqlite_side(store: LevelStore, parties: Parties) -> dict[str, Callable[[], Any]]:
    db = sqlite3.connect(":memory:")
    db.execute(
        "create table d (platform blob, donation text, charity blob, fund text, "
        "confirmed int, height int, idx int, amount int)"
    )
    started = time.perf_counter()
    db.executemany("insert into d values (?,?,?,?,?,?,?,?)", donation_rows(store))
    for cols in (
        "height desc, idx desc",
        "charity, height desc, idx desc",
        "charity, fund, height desc, idx desc",
        "platform, height desc, idx desc",
        "confirmed, height desc, idx desc",
    ):
        db.execute(f"create index i_{abs(hash(cols))} on d ({cols})")
    print(f"sqlite: loaded and indexed in {time.perf_counter() - started:.1f} s")
    c0, p0 = parties.charities[0].public_key, parties.platforms[0].public_key
    order = " order by height desc, idx desc limit 50"

    def q(sql: str, *args: Any) -> Callable[[], queries.Page]:
        return lambda: queries.Page(items=db.execute(sql + order, args).fetchall())

    return {
        "donations (all)": q("select * from d"),
        "donations charity": q("select * from d where charity = ?", c0),
        "donations charity+campaign": q(
            "select * from d where charity = ? and fund = ?", c0, "main-0"
        ),
        "donations platform": q("select * from d where platform = ?", p0),
        "donations unconfirmed": q("select * from d where confirmed = 0"),
        "donations charity unconfirmed": q(
            "select * from d where charity = ? and confirmed = 0", c0
        ),
    }


def scan_side(store: LevelStore, parties: Parties) -> dict[str, Callable[[], Any]]:
    c0 = parties.charities[0].public_key

    def scan(keep: Callable[[dict[str, Any]], bool]) -> queries.Page:
        hits = [r for _, raw in store.iterate(schema.DONATION) if keep(r := decode_record(raw))]
        hits.sort(key=lambda r: r["height"], reverse=True)
        return queries.Page(items=hits[:50])

    return {
        "donations charity": lambda: scan(lambda r: r["charity"] == c0),
        "donations charity unconfirmed": lambda: scan(
            lambda r: r["charity"] == c0 and not r["confirmed"]
        ),
    }


def ours(ledger: Ledger, parties: Parties) -> dict[str, Callable[[], Any]]:
    s = ledger.store
    c0, p0 = parties.charities[0].public_key, parties.platforms[0].public_key
    head_time = ledger.head.time
    mid = parties.genesis.genesis_time + (head_time - parties.genesis.genesis_time) // 2
    f = queries.DonationFilter
    return {
        "donations (all)": lambda: queries.list_donations(s, f()),
        "donations charity": lambda: queries.list_donations(s, f(charity=c0)),
        "donations charity+campaign": lambda: queries.list_donations(
            s, f(charity=c0, campaign="main-0")
        ),
        "donations platform": lambda: queries.list_donations(s, f(platform=p0)),
        "donations unconfirmed": lambda: queries.list_donations(s, f(confirmed=False)),
        "donations charity unconfirmed": lambda: queries.list_donations(
            s, f(charity=c0, confirmed=False)
        ),
        "donations confirmed (residual)": lambda: queries.list_donations(s, f(confirmed=True)),
        "donations charity+platform+confirmed": lambda: queries.list_donations(
            s, f(charity=c0, platform=p0, confirmed=True)
        ),
        "donations time range (a week)": lambda: queries.list_donations(
            s, f(time_from=mid - 7 * 86_400_000, time_to=mid)
        ),
        "page 2 via cursor": lambda: queries.list_donations(
            s, f(charity=c0), cursor=queries.list_donations(s, f(charity=c0)).next_cursor
        ),
        "disbursements charity": lambda: queries.list_disbursements(s, c0),
        "disbursements charity admin": lambda: queries.list_disbursements(s, c0, category="admin"),
        "parties (charities)": lambda: queries.list_parties(s, role="charity"),
        "campaigns": lambda: queries.list_campaigns(s),
        "totals per month": lambda: queries.charity_totals(s, c0),
        "fund flow": lambda: queries.fund_flow(s, c0, "CNY"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="ledger directory (built if empty, reused)")
    parser.add_argument("--keep", action="store_true", help="keep a temporary ledger")
    parser.add_argument("--bulk", action="store_true", help="build fast, without the contract")
    parser.add_argument("--no-compare", action="store_true", help="skip SQLite and the scan")
    args = parser.parse_args()
    parties = make_parties(4, N_PLATFORMS, N_CHARITIES)
    temporary = args.dir is None
    path = args.dir or Path(tempfile.mkdtemp(prefix="almoner-explorer-bench-"))
    try:
        if not (path / "CURRENT").exists():
            print(f"building a {args.txs:,}-tx ledger in {path} …", flush=True)
            (bulk_build if args.bulk else build)(path, parties, args.txs)
        store = LevelStore(path)
        try:
            ledger = Ledger(store, parties.genesis)
            print(f"ledger: height {ledger.head.height}, {ledger.head.log_size:,} txs\n")
            print(f"{'first page (50 items)':40} {'cold ms':>9} {'warm ms':>9} {'items':>6}")
            for name, fn in ours(ledger, parties).items():
                cold, warm, items = timed(fn)
                print(f"{name:40} {cold:9.2f} {warm:9.2f} {items:6}")
            if args.no_compare:
                return
            print("\nthe same first pages by SQLite (in memory, indexed):")
            for name, fn in sqlite_side(store, parties).items():
                cold, warm, items = timed(fn)
                print(f"{name:40} {cold:9.2f} {warm:9.2f} {items:6}")
            print("\nwithout the indexes (scan every donation record):")
            for name, fn in scan_side(store, parties).items():
                cold, warm, items = timed(fn, runs=1)
                print(f"{name:40} {cold:9.0f} {warm:9.0f} {items:6}")
        finally:
            store.close()
    finally:
        if temporary and not args.keep:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
