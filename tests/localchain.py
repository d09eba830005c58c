"""A certified chain built in one process, deterministically: no network, no consensus run.

Validators' and parties' keys come from fixed seeds, blocks are executed by the same
`Ledger` a node uses, and each block gets a commit certificate signed with `NodeSigner`
by whichever validators the caller names (a quorum by default). Tests, the tamper suite
and `bench/verify.py` use it to get a valid chain (and deliberately invalid ones) without
starting processes:

    genesis, keys = local_genesis()
    chain = LocalChain(genesis, keys.validators)
    block, cert = chain.add_block(raw_txs)                  # valid, committed, certified
    bad = chain.forge_block(raw_txs)                        # header only, contract unchecked
    cert = chain.certify(bad, signers=[0, 1], round_=2)     # any signers, round or kind
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from almoner.consensus.certificate import Certificate, CommitSig
from almoner.consensus.messages import PRECOMMIT, Vote, VoteKind, quorum
from almoner.node.chain.codec import H, decode
from almoner.node.chain.consensus_crypto import NodeSigner
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import DEFAULT_PARAMS, Genesis, GenesisParty, Validator
from almoner.node.chain.ledger import Ledger, validators_hash
from almoner.node.chain.merkle import root_of
from almoner.node.chain.merkle_log import MerkleLog
from almoner.node.chain.signing import block_hash
from almoner.node.chain.store import KVStore, MemoryStore, Overlay
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.errors import AlmonerError

LOCAL_CHAIN_ID = "almoner-local"
LOCAL_GENESIS_TIME = 1_790_000_000_000
BLOCK_INTERVAL_MS = 1_000
PARTY_NAMES = (
    ("regulator", "regulator", "Civil Affairs Bureau", "REG-1"),
    ("platform-1", "platform", "GiveNow", "PLT-1"),
    ("platform-2", "platform", "水滴筹", "PLT-2"),
    ("charity-1", "charity", "Clean Water Foundation", "CH-1"),
    ("charity-2", "charity", "希望小学 Education Trust", "CH-2"),
    ("charity-3", "charity", "Food Bank Network", "CH-3"),
)


class LocalChainError(AlmonerError):
    """A block that should have been valid was not (a bug in the workload or the caller)."""


def seeded_key(name: str) -> KeyPair:
    """The fixed key of a named local participant: same name, same key, every run."""
    return KeyPair.from_seed(H(b"almoner/localchain/" + name.encode()))


@dataclass(frozen=True)
class LocalKeys:
    validators: list[KeyPair]
    parties: dict[str, KeyPair]

    def __getitem__(self, name: str) -> KeyPair:
        return self.parties[name]


def local_genesis(
    n_validators: int = 4,
    *,
    chain_id: str = LOCAL_CHAIN_ID,
    params: dict[str, int] | None = None,
    extra_parties: Sequence[tuple[str, str]] = (),
) -> tuple[Genesis, LocalKeys]:
    """A genesis with seeded validators and the devnet's six parties (plus `extra_parties`,
    given as (name, role))."""
    validators = [seeded_key(f"validator-{i}") for i in range(n_validators)]
    parties = {name: seeded_key(name) for name, *_ in PARTY_NAMES}
    entries = [
        GenesisParty(parties[name].public_key, role, title, org)
        for name, role, title, org in PARTY_NAMES
    ]
    for name, role in extra_parties:
        parties[name] = seeded_key(name)
        entries.append(GenesisParty(parties[name].public_key, role, name, name.upper()))
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=LOCAL_GENESIS_TIME,
        validators=tuple(
            Validator(f"validator-{i}", key.public_key) for i, key in enumerate(validators)
        ),
        parties=tuple(entries),
        params={**DEFAULT_PARAMS, **(params or {})},
    )
    return genesis, LocalKeys(validators, parties)


class LocalChain:
    """A Ledger plus the validators' keys: append certified blocks, or forge bad ones."""

    def __init__(
        self, genesis: Genesis, validator_keys: Sequence[KeyPair], store: KVStore | None = None
    ) -> None:
        self.genesis = genesis
        self.ledger = Ledger(store if store is not None else MemoryStore(), genesis)
        by_key = {key.public_key: key for key in validator_keys}
        missing = [v.name for v in genesis.validators if v.pubkey not in by_key]
        if missing:
            raise LocalChainError(f"no key for validators {', '.join(missing)}")
        self.validator_keys = [by_key[v.pubkey] for v in genesis.validators]
        self.known_keys = by_key

    def add_key(self, key: KeyPair) -> None:
        """Make a validator key known, for sets that governance changes (keys_at)."""
        self.known_keys[key.public_key] = key

    def keys_at(self, height: int) -> list[KeyPair]:
        """The keys of the set in force at `height`, in set order."""
        try:
            return [self.known_keys[pub] for pub in self.ledger.validators(height)]
        except KeyError as exc:
            raise LocalChainError(f"no key for a validator at height {height}") from exc

    @property
    def height(self) -> int:
        return self.ledger.head.height

    def next_time(self) -> int:
        return self.ledger.head.time + BLOCK_INTERVAL_MS

    def proposer(self, height: int, round_: int = 0) -> bytes:
        keys = self.keys_at(height)
        return keys[(height + round_) % len(keys)].public_key

    # -- valid blocks ---------------------------------------------------------------
    def add_block(
        self,
        raw_txs: Sequence[bytes],
        time_ms: int | None = None,
        *,
        signers: Sequence[int] | None = None,
        round_: int = 0,
        signed_ids: frozenset[bytes] | set[bytes] = frozenset(),
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Execute `raw_txs` (all must be valid) into the next block, certify it with
        `signers` (validator indexes; default the first quorum) and commit it.

        `signed_ids` lists tx ids whose signatures the caller made itself and need no check.
        """
        height = self.height + 1
        executed = self.ledger.build_block(
            raw_txs,
            time_ms=self.next_time() if time_ms is None else time_ms,
            proposer=self.proposer(height, round_),
            max_txs=len(raw_txs) + 1,
            max_bytes=sum(len(raw) for raw in raw_txs) + 1,
            verified=signed_ids,
        )
        if executed.rejected:
            tid, exc = executed.rejected[0]
            raise LocalChainError(
                f"block {height}: tx {tid.hex()[:16]} was rejected: {exc.code} {exc.message}"
            )
        cert = self.certify(executed.block, signers=signers, round_=round_)
        self.ledger.commit(executed, cert)
        return executed.block, cert

    def blocks(self, start: int = 1) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        return self.ledger.iter_blocks(start)

    # -- certificates and forgeries -------------------------------------------------
    def certify(
        self,
        block: dict[str, Any],
        *,
        signers: Sequence[int] | None = None,
        round_: int = 0,
        kind: VoteKind = PRECOMMIT,
        height: int | None = None,
    ) -> dict[str, Any]:
        """A certificate over `block`'s header hash, signed by the validators at `signers`
        (default: the first quorum) for `round_`, as votes of `kind`."""
        header = block["header"]
        at = header["height"] if height is None else height
        keys = self.keys_at(header["height"])
        chosen = list(range(quorum(len(keys)))) if signers is None else list(signers)
        digest = block_hash(header)
        votes = []
        for index in chosen:
            key = keys[index]
            vote = Vote(kind, self.genesis.chain_id, at, round_, digest, key.public_key)
            signed = NodeSigner(key).sign_vote(vote)
            votes.append(CommitSig(signed.validator, signed.sig))
        return Certificate(at, round_, digest, tuple(votes)).to_map()

    def forge_block(
        self, raw_txs: Sequence[bytes], time_ms: int | None = None, round_: int = 0
    ) -> dict[str, Any]:
        """The next block with a correct header for `raw_txs`, WITHOUT running the contract:
        for blocks that only the contract (or nothing at all) should reject."""
        txs = [decode(raw) for raw in raw_txs]
        tx_ids = [H(raw) for raw in raw_txs]
        height = self.height + 1
        log = MerkleLog(Overlay(self.ledger.store))
        log.append(tx_ids)
        header = {
            "chain": self.genesis.chain_id,
            "height": height,
            "time": self.next_time() if time_ms is None else time_ms,
            "prev": self.ledger.head.block_hash,
            "proposer": self.proposer(height, round_),
            "tx_count": len(tx_ids),
            "txs_root": root_of(tx_ids),
            "log_size": log.size(),
            "log_root": log.root(),
            "validators_hash": validators_hash(self.ledger.validators(height)),
        }
        version = self.ledger.version(height)
        if version > 1:
            header["version"] = version
        return {"header": header, "txs": txs}


# -- realistic workloads -----------------------------------------------------------------


@dataclass
class Workload:
    """Builds valid txs in order from the genesis parties' keys, tracking balances so that
    every transfer, disbursement and refund it makes is affordable."""

    genesis: Genesis
    keys: LocalKeys
    seed: int = 0
    nonce: int = 0
    rng: random.Random = field(init=False)
    held: dict[tuple[str, str, str], int] = field(default_factory=dict)
    donations: list[tuple[str, str, str, int]] = field(default_factory=list)
    unconfirmed: list[tuple[str, str, str]] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def tx(self, signer: str, tx_type: str, body: dict[str, Any]) -> bytes:
        self.nonce += 1
        key = self.keys[signer]
        return encode_tx(make_tx(self.genesis.chain_id, tx_type, key, body, self.nonce))

    def pub(self, name: str) -> bytes:
        return self.keys[name].public_key

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.seed}-{self.counter}"

    def opening(self) -> list[bytes]:
        """Campaigns every later tx may use."""
        return [
            self.tx(
                "charity-1",
                "campaign.open",
                {"campaign": "wells", "title": "Wells", "currency": "USD", "goal": 10**9},
            ),
            self.tx(
                "charity-2",
                "campaign.open",
                {"campaign": "books", "title": "课本", "currency": "CNY", "goal": 10**9},
            ),
        ]

    def donation(
        self,
        platform: str = "platform-1",
        charity: str = "charity-1",
        amount: int = 10_000,
        currency: str = "USD",
        campaign: str | None = None,
        donation_id: str | None = None,
    ) -> bytes:
        did = donation_id or self.next_id("don")
        self.held[(charity, campaign or "general", currency)] = (
            self.held.get((charity, campaign or "general", currency), 0) + amount
        )
        self.donations.append((platform, did, charity, amount))
        self.unconfirmed.append((platform, did, charity))
        return self.tx(
            platform,
            "donation.record",
            {
                "donation": did,
                "donor": H(did.encode()),
                "charity": self.pub(charity),
                "campaign": campaign,
                "amount": amount,
                "currency": currency,
                "received_at": LOCAL_GENESIS_TIME,
            },
        )

    def confirm(self, platform: str, donation_id: str, charity: str) -> bytes:
        return self.tx(
            charity, "donation.confirm", {"platform": self.pub(platform), "donation": donation_id}
        )

    def transfer(self, charity: str, to: str, amount: int, currency: str = "USD") -> bytes:
        self.held[(charity, "general", currency)] = (
            self.held.get((charity, "general", currency), 0) - amount
        )
        self.held[(to, "general", currency)] = self.held.get((to, "general", currency), 0) + amount
        return self.tx(
            charity,
            "funds.transfer",
            {
                "transfer": self.next_id("tr"),
                "from_fund": "general",
                "to": self.pub(to),
                "to_fund": "general",
                "amount": amount,
                "currency": currency,
                "purpose": "regranting",
            },
        )

    def disburse(
        self,
        charity: str,
        amount: int,
        category: str = "program",
        fund: str = "general",
        currency: str = "USD",
        payee: str = "Village school",
    ) -> bytes:
        self.held[(charity, fund, currency)] = self.held.get((charity, fund, currency), 0) - amount
        return self.tx(
            charity,
            "funds.disburse",
            {
                "disbursement": self.next_id("dis"),
                "fund": fund,
                "amount": amount,
                "currency": currency,
                "category": category,
                "payee": payee,
                "purpose": "textbooks and wells",
                "evidence": [H(f"invoice-{self.counter}".encode())],
            },
        )

    def mixed(self, count: int) -> list[bytes]:
        """`count` valid txs: mostly donations, with confirmations, transfers and
        disbursements (all three categories) drawn from a seeded generator."""
        txs: list[bytes] = []
        charities = ("charity-1", "charity-2", "charity-3")
        platforms = ("platform-1", "platform-2")
        while len(txs) < count:
            roll = self.rng.random()
            charity = self.rng.choice(charities)
            general = self.held.get((charity, "general", "USD"), 0)
            if roll < 0.55 or general < 2_000:
                platform = self.rng.choice(platforms)
                txs.append(self.donation(platform, charity, self.rng.randrange(1_000, 50_000)))
            elif roll < 0.7 and self.unconfirmed:
                platform, did, recipient = self.unconfirmed.pop()
                txs.append(self.confirm(platform, did, recipient))
            elif roll < 0.8:
                other = self.rng.choice([c for c in charities if c != charity])
                txs.append(self.transfer(charity, other, general // 4))
            else:
                category = self.rng.choice(("program", "program", "admin", "fundraising"))
                txs.append(self.disburse(charity, general // 3, category))
        return txs


__all__ = [
    "LOCAL_CHAIN_ID",
    "LocalChain",
    "LocalChainError",
    "LocalKeys",
    "Workload",
    "local_genesis",
    "seeded_key",
]
