"""Random sequences of valid and invalid txs keep the contract's invariants, on the
in-memory store and on a real LevelDB, and replay to byte-identical state."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almoner.node.chain import schema
from almoner.node.chain.codec import encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.lineage import trace
from almoner.node.chain.state import decode_record, donation_key, fund_key
from almoner.node.chain.store import KVStore, LevelStore, MemoryStore
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.errors import ProtocolError
from tests import contract_fixtures as fx
from tests.contract_fixtures import CHARITIES, PLATFORMS, REGULATOR, Ledger, dump

KEYS = [*CHARITIES, *PLATFORMS, REGULATOR, fx.OUTSIDER]
# Pools with repetition: mostly the right kind of party, sometimes the wrong one.
SIGNING_CHARITIES = [
    fx.CHARITY_1,
    fx.CHARITY_2,
    fx.CHARITY_1,
    fx.CHARITY_2,
    fx.CHARITY_3,
    fx.PLATFORM_1,
]
SIGNING_PLATFORMS = [fx.PLATFORM_1, fx.PLATFORM_2, fx.PLATFORM_1, fx.PLATFORM_2, fx.CHARITY_1]
FUNDS = ["general", "general", "general", "general", "flood", "edu", "school", "nope"]

amounts = st.integers(1, 250)
small = st.integers(1, 60)  # spending amounts: small enough that most find the money
currencies = st.sampled_from(["CNY", "CNY", "USD"])
idx = st.integers(0, 5)
funds = st.sampled_from(FUNDS)
ids = st.sampled_from([f"id{i}" for i in range(8)])

record = st.tuples(
    st.just("record"),
    idx,
    ids,
    idx,
    st.sampled_from([None, None, None, *FUNDS[4:]]),
    amounts,
    currencies,
)
# Spending ops start from the k-th recorded donation's (charity, fund, currency) so most find
# money; `noise` 0 swaps in a random source fund, 1 a random currency, 2 a random signer.
noise = st.integers(0, 7)
transfer = st.tuples(st.just("transfer"), st.integers(0, 30), ids, idx, funds, small, noise, idx)
disburse = st.tuples(st.just("disburse"), st.integers(0, 30), ids, small, noise, idx)
# refund / confirm name the k-th recorded donation; `other` makes another charity sign.
refund = st.tuples(st.just("refund"), st.integers(0, 30), ids, amounts, st.booleans())
confirm = st.tuples(st.just("confirm"), st.integers(0, 30), st.booleans())
STRATEGIES: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "record": record,
    "transfer": transfer,
    "disburse": disburse,
    "refund": refund,
    "confirm": confirm,
    "suspend": st.tuples(st.just("suspend"), st.integers(0, 40)),
    "garbage": st.tuples(st.just("garbage"), st.binary(max_size=12)),
    "replay": st.tuples(st.just("replay"), st.integers(0, 50)),
    "block": st.tuples(st.just("block")),
}
# Mostly money moving, some noise: weights by repetition in sampled_from.
WEIGHTS = {"record": 8, "transfer": 7, "disburse": 3, "refund": 4, "confirm": 2, "block": 2}
KINDS = [kind for kind in STRATEGIES for _ in range(WEIGHTS.get(kind, 1))]
ops = st.sampled_from(KINDS).flatmap(lambda kind: STRATEGIES[kind])

SETUP = [
    (fx.CHARITY_1, "campaign.open", fx.campaign("flood")),
    (fx.CHARITY_1, "campaign.open", fx.campaign("edu", currency="USD")),
    (fx.CHARITY_2, "campaign.open", fx.campaign("school")),
]

Recorded = tuple[KeyPair, str, KeyPair, str, str]  # platform, id, recipient, fund, currency
NOTHING: Recorded = (fx.PLATFORM_1, "none", fx.CHARITY_1, "general", "CNY")


def pick(keys: list[KeyPair], i: int) -> KeyPair:
    return keys[i % len(keys)]


def build(
    op: tuple[Any, ...], nonce: int, recorded: list[Recorded]
) -> tuple[bytes, Recorded | None]:
    """Signed tx bytes for an op, and the donation it records (if it is a record)."""
    kind = op[0]
    made: Recorded | None = None
    if kind == "record":
        _, p, did, c, camp, amount, cur = op
        platform, charity = pick(SIGNING_PLATFORMS, p), pick(SIGNING_CHARITIES, c)
        made = (platform, did, charity, camp or "general", cur)
        tx = ("donation.record", platform, fx.donation(did, charity.public_key, amount, cur, camp))
    elif kind in ("transfer", "disburse"):
        _, _, charity, src, cur = recorded[op[1] % len(recorded)] if recorded else NOTHING
        signer = pick(SIGNING_CHARITIES, op[-1]) if op[-2] == 2 else charity
        src = FUNDS[op[-1] % len(FUNDS)] if op[-2] == 0 else src
        cur = "USD" if op[-2] == 1 else cur
        if kind == "transfer":
            _, _, tid, to, dst, amount, _, _ = op
            body = fx.transfer(tid, pick(SIGNING_CHARITIES, to).public_key, amount, src, dst, cur)
            tx = ("funds.transfer", signer, body)
        else:
            tx = ("funds.disburse", signer, fx.disburse(op[2], op[3], src, cur))
    elif kind in ("refund", "confirm"):
        platform, did, charity, _, _ = recorded[op[1] % len(recorded)] if recorded else NOTHING
        signer = fx.CHARITY_3 if op[-1] else charity
        if kind == "refund":
            tx = ("donation.refund", signer, fx.refund(op[2], platform.public_key, did, op[3]))
        else:
            tx = ("donation.confirm", signer, fx.confirm(platform.public_key, did))
    else:
        assert kind == "suspend"
        # Most suspend attempts hit the outsider (unknown_party), so activity goes on.
        target = KEYS[op[1]] if op[1] < len(KEYS) else fx.OUTSIDER
        tx = ("party.suspend", REGULATOR, fx.suspend(target.public_key))
    tx_type, key, body = tx
    return encode_tx(make_tx(fx.CHAIN, tx_type, key, body, nonce)), made


def run(ledger: Ledger, script: list[tuple[Any, ...]], *, commit: bool) -> list[str]:
    """Apply the script; returns each step's outcome ("ok" or the error code)."""
    outcomes = []
    raws: list[bytes] = []
    recorded: list[Recorded] = []
    for key, tx_type, body in SETUP:
        ledger.submit(key, tx_type, body)
    for n, op in enumerate(script):
        if op[0] == "block":
            if commit:
                ledger.commit()
            else:
                ledger.height += 1
                ledger.index = 0
            outcomes.append("block")
            continue
        made = None
        if op[0] == "garbage":
            raw = op[1]
        elif op[0] == "replay":
            raw = raws[op[1] % len(raws)] if raws else b""
        else:
            raw, made = build(op, n, recorded)
        raws.append(raw)
        try:
            ledger.apply(raw)
            outcomes.append("ok")
            if made is not None:
                recorded.append(made)
        except ProtocolError as err:
            outcomes.append(err.code)
    if commit:
        ledger.commit()
    return outcomes


def check_invariants(ledger: Ledger) -> None:
    state = ledger.state
    donations = {
        key[len(schema.DONATION) :]: decode_record(raw)
        for key, raw in state.iterate(schema.DONATION)
    }
    lot_sum: Counter[bytes] = Counter()  # per fund key
    by_donation: Counter[bytes] = Counter()
    for key, raw in state.iterate(schema.FUND_LOT):
        lot = decode_record(raw)
        assert lot["remaining"] > 0
        fkey, seq = key[len(schema.FUND_LOT) : -8], key[-8:]
        lot_sum[fkey] += lot["remaining"]
        dkey = donation_key(lot["platform"], lot["donation"])
        donation = donations[dkey]  # every lot traces back to exactly one donation
        where = decode_record(state.get(schema.DONATION_LOT + dkey + seq) or b"")
        assert fund_key(where["charity"], where["currency"], where["fund"]) == fkey
        assert where["currency"] == donation["currency"]
        by_donation[dkey] += lot["remaining"]
    index_entries = list(state.iterate(schema.DONATION_LOT))
    assert len(index_entries) == sum(1 for _ in state.iterate(schema.FUND_LOT))
    held: Counter[str] = Counter()
    for key, raw in state.iterate(schema.FUND_BALANCE):
        balance = decode_record(raw)
        fkey = key[len(schema.FUND_BALANCE) :]
        assert balance >= 0
        assert balance == lot_sum[fkey]
        held[fkey[33 : 33 + fkey[32]].decode()] += balance
    consumed: Counter[bytes] = Counter()
    outflow: Counter[str] = Counter()
    for dkey, donation in donations.items():
        for _, raw in state.iterate(schema.DONATION_HOP + dkey):
            hop = decode_record(raw)
            if hop["kind"] != "transfer":
                consumed[dkey] += hop["amount"]
                outflow[donation["currency"]] += hop["amount"]
        assert by_donation[dkey] + consumed[dkey] == donation["amount"]
        # The trace tells the same story as the raw state.
        traced = trace(state, donation["platform"], donation["donation"])
        assert traced is not None
        assert sum(h["amount"] for h in traced["held"]) == by_donation[dkey]
        assert len({(h["charity"], h["fund"]) for h in traced["held"]}) == len(traced["held"])
        spent = sum(h["amount"] for h in traced["hops"] if h["kind"] != "transfer")
        assert spent == consumed[dkey]
    recorded: Counter[str] = Counter()
    for donation in donations.values():
        recorded[donation["currency"]] += donation["amount"]
    for currency in set(recorded) | set(held):
        assert held[currency] == recorded[currency] - outflow[currency]


@contextmanager
def open_store(kind: str) -> Iterator[KVStore]:
    if kind == "memory":
        yield MemoryStore()
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = LevelStore(tmp)
        try:
            yield store
        finally:
            store.close()


@pytest.mark.parametrize("kind", ["memory", "level"])
@settings(max_examples=75, deadline=None)
@given(script=st.lists(ops, min_size=10, max_size=60))
def test_random_txs_keep_invariants_and_replay_identically(
    kind: str, script: list[tuple[Any, ...]]
) -> None:
    with open_store(kind) as store:
        ledger = Ledger(store=store)
        outcomes = run(ledger, script, commit=True)
        check_invariants(ledger)
        committed = dump(store)
    # The same txs on fresh stores, in one overlay each: same answers, same bytes.
    first, second = Ledger(), Ledger()
    assert run(first, script, commit=False) == outcomes
    assert run(second, script, commit=False) == outcomes
    assert encode(sorted(first.state.changes().items())) == encode(
        sorted(second.state.changes().items())
    )
    assert dump(first.state) == committed
    check_invariants(first)


def test_the_generator_reaches_the_interesting_codes() -> None:
    """Guards the property test against a generator that only ever produces rejects."""
    script: list[tuple[Any, ...]] = [
        ("record", 0, "a", 0, None, 100, "CNY"),
        ("record", 1, "a", 0, "flood", 50, "CNY"),
        ("transfer", 0, "a", 1, "school", 30, 7, 0),
        ("transfer", 1, "b", 1, "general", 1, 7, 0),
        ("disburse", 0, "a", 500, 7, 0),
        ("refund", 0, "a", 71, False),
        ("refund", 0, "b", 70, False),
        ("block",),
        ("replay", 0),
    ]
    ledger = Ledger()
    assert run(ledger, script, commit=True) == [
        "ok",
        "ok",
        "ok",
        "restricted_funds",
        "insufficient_funds",
        "refund_exceeds_unspent",
        "ok",
        "block",
        "duplicate_tx",
    ]
    check_invariants(ledger)
