"""A Byzantine validator for the chaos run: real keys, real codec, real p2p envelopes.

It holds one validator's key (whose honest node keeps running too, so conflicting
signatures really come from a validator of the chain) and, for a bounded time, does one
of: `equivocate` (two conflicting prevotes and precommits per height), `invalid-block`
(properly signed proposals of blocks that break a rule: bad link, bad roots, junk tx),
`replay` (old certified precommits and its own earlier envelopes, byte for byte) or
`garbage` (a bounded flood of malformed bodies). It writes what it sent and every HTTP
status it got back to a JSON report; the checker counts any 5xx or dropped connection
as a violation (garbage must get a 4xx and change nothing).

Only `Wire` knows how envelopes travel to a node, so a change of p2p framing touches
one class.

    python -m tests.chaos.byzantine --devnet D --as validator-3 --mode M --seconds S \
        --target URL [--target URL ...] --report FILE
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from almoner.consensus import Certificate, Proposal, Vote, proposer_index
from almoner.node.audit.client import Client
from almoner.node.chain.codec import encode
from almoner.node.chain.consensus_crypto import NodeSigner
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.keys import load_key_file
from almoner.node.chain.signing import block_hash
from almoner.node.errors import AlmonerError
from almoner.node.server.p2p import seal
from almoner.node.server.transport import P2P_PATH

MODES = ("equivocate", "invalid-block", "replay", "garbage")


class Wire:
    """How a validator's messages reach a node (today: one signed envelope per POST)."""

    def __init__(self, key: KeyPair, chain: str) -> None:
        self.key = key
        self.chain = chain
        self.http = httpx.Client(timeout=10)
        self.statuses: Counter[str] = Counter()
        self.sent_envelopes: list[bytes] = []

    def envelope(self, msgs: list[dict[str, Any]]) -> bytes:
        return seal(self.key, self.chain, msgs)

    def send(self, url: str, msgs: list[dict[str, Any]]) -> None:
        body = self.envelope(msgs)
        if len(self.sent_envelopes) < 50:
            self.sent_envelopes.append(body)
        self.send_raw(url, body)

    def send_raw(self, url: str, body: bytes) -> None:
        try:
            response = self.http.post(
                url + P2P_PATH, content=body, headers={"content-type": "application/msgpack"}
            )
            self.statuses[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            self.statuses[f"error:{type(exc).__name__}"] += 1


class Byzantine:
    def __init__(self, key: KeyPair, targets: list[str], rng: random.Random) -> None:
        self.key = key
        self.signer = NodeSigner(key)
        self.targets = targets
        self.rng = rng
        self.client = Client(targets[0], timeout=10)
        self.chain = self.client.chain_id
        self.n = len(self.client.genesis().validators)
        self.wire = Wire(key, self.chain)
        self.sent = 0

    def broadcast(self, msgs: list[dict[str, Any]]) -> None:
        for url in self.targets:
            self.wire.send(url, msgs)
            self.sent += len(msgs)

    def next_height(self) -> int:
        for url in self.rng.sample(self.targets, len(self.targets)):
            try:
                return int(httpx.get(f"{url}/v1/status", timeout=3).json()["height"]) + 1
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        return 1

    def vote(self, kind: str, height: int, round_: int, value: bytes | None) -> dict[str, Any]:
        vote = Vote(kind, self.chain, height, round_, value, self.key.public_key)  # type: ignore[arg-type]
        return {"type": "vote", "vote": self.signer.sign_vote(vote).to_map()}

    def equivocate(self) -> None:
        height = self.next_height()
        for round_ in (0, 1):
            for kind in ("prevote", "precommit"):
                self.broadcast([self.vote(kind, height, round_, os.urandom(32)) for _ in range(2)])

    def invalid_block(self) -> None:
        height = self.next_height()
        head = self.client.blocks(max(1, height - 1), 1)
        if not head:
            return
        header: dict[str, Any] = dict(head[0][0]["header"])
        block: dict[str, Any] = {"header": header, "txs": list(head[0][0]["txs"])}
        header.update(height=height, time=int(time.time() * 1000), proposer=self.key.public_key)
        flaw = self.rng.choice(("bad-link", "bad-root", "junk-tx"))
        if flaw == "bad-link":
            header["prev"] = os.urandom(32)
        elif flaw == "bad-root":
            header["log_root"] = os.urandom(32)
        else:
            block["txs"] = [os.urandom(120)]
            header["tx_count"] = 1
        round_ = (self.validator_index() - height) % self.n  # a round this key proposes
        assert proposer_index(height, round_, self.n) == self.validator_index()
        proposal = Proposal(self.chain, height, round_, -1, block_hash(header), self.key.public_key)
        signed = self.signer.sign_proposal(proposal).to_map()
        self.broadcast([{"type": "proposal", "proposal": signed, "block": block}])

    def validator_index(self) -> int:
        keys = [v.pubkey for v in self.client.genesis().validators]
        return keys.index(self.key.public_key)

    def replay(self) -> None:
        height = self.next_height() - 1
        if height < 1:
            return
        start = self.rng.randint(1, height)
        for _, cert in self.client.blocks(start, 3):
            votes = Certificate.from_map(cert).precommits(self.chain)
            self.broadcast([{"type": "vote", "vote": v.to_map()} for v in votes])
        for body in self.wire.sent_envelopes[:5]:
            for url in self.targets:
                self.wire.send_raw(url, body)
                self.sent += 1

    def garbage(self) -> None:
        url = self.rng.choice(self.targets)
        junk: list[bytes] = [
            os.urandom(self.rng.randint(1, 4096)),
            b"\x91" * 5000,  # deep nesting
            b"\xdd\xff\xff\xff\xff",  # an array claiming 4 G items
            encode(
                {
                    "chain": self.chain,
                    "from": self.key.public_key,
                    "msgs": os.urandom(64),
                    "sig": os.urandom(64),
                }
            ),
            self.wire.envelope([{"type": "vote", "vote": {"kind": "prevote", "junk": 1}}]),
            self.wire.envelope([{"type": "txs", "txs": [os.urandom(200) for _ in range(20)]}]),
            self.wire.envelope([{"type": "proposal", "proposal": {}, "block": [1, 2, 3]}]),
            seal(KeyPair.generate(), self.chain, [{"type": "txs", "txs": []}]),  # not a validator
        ]
        self.wire.send_raw(url, self.rng.choice(junk))
        self.sent += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devnet", type=Path, required=True)
    parser.add_argument("--as", dest="name", required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--requests", type=int, default=300, help="garbage: at most this many")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    byz = Byzantine(
        load_key_file(args.devnet / "keys" / f"{args.name}.key"),
        args.target,
        random.Random(args.seed),
    )
    deadline = time.monotonic() + args.seconds
    act = getattr(byz, args.mode.replace("-", "_"))
    rounds = 0
    while time.monotonic() < deadline and (args.mode != "garbage" or rounds < args.requests):
        with contextlib.suppress(httpx.HTTPError, AlmonerError):  # a partitioned target
            act()
        rounds += 1
        if args.mode != "garbage":
            time.sleep(0.5)
    report = {
        "mode": args.mode,
        "validator": byz.key.public_key.hex(),
        "sent": byz.sent,
        "statuses": dict(byz.wire.statuses),
    }
    args.report.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
