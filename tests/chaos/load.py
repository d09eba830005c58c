"""Steady client load: donations submitted with wait=commit to any node that answers.

A tx counts as acknowledged only when a node answered 200 with status "committed"; the
checker then demands it exactly once, at that height and block, on every correct node.
Now and then an acknowledged tx is submitted again (a client retrying): the chain must
still hold it once.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from almoner.node.chain.codec import H
from almoner.node.chain.keys import load_key_file
from almoner.node.chain.tx import encode_tx, make_tx

RESUBMIT_EVERY = 7


@dataclass(frozen=True)
class Ack:
    tx_id: str
    height: int
    block_hash: str
    node: str
    at: float  # monotonic


class Load:
    def __init__(self, root: Path, chain: str, urls: dict[str, str], seed: int, workers: int = 2):
        self.chain = chain
        self.urls = urls
        self.platforms = [load_key_file(root / "keys" / f"platform-{i}.key") for i in (1, 2)]
        self.charities = [
            load_key_file(root / "keys" / f"charity-{i}.key").public_key for i in (1, 2, 3)
        ]
        self.rng = random.Random(seed)
        self.acks: list[Ack] = []
        self.raw: dict[str, bytes] = {}
        self.submitted = 0
        self.failed = 0
        self.resubmits = 0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        for thread in self.threads:
            thread.join(40)

    def last_ack(self) -> float:
        with self.lock:
            return self.acks[-1].at if self.acks else 0.0

    def _tx(self, worker: int) -> bytes:
        with self.lock:
            self.submitted += 1
            n = self.submitted
            platform = self.rng.choice(self.platforms)
            charity = self.rng.choice(self.charities)
        donation = f"chaos-{worker}-{n}-{time.time_ns()}"
        body = {
            "donation": donation,
            "donor": H(donation.encode()),
            "charity": charity,
            "campaign": None,
            "amount": 1 + n % 500,
            "currency": "CNY",
            "received_at": 1_700_000_000_000,
        }
        return encode_tx(make_tx(self.chain, "donation.record", platform, body, time.time_ns()))

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=15) as http:
            while not self.stop_flag.is_set():
                node = self.rng.choice(sorted(self.urls))
                retry = None
                with self.lock:
                    if self.acks and self.rng.randrange(RESUBMIT_EVERY) == 0:
                        retry = self.rng.choice(self.acks).tx_id
                raw = self.raw[retry] if retry else self._tx(worker)
                try:
                    answer = http.post(
                        f"{self.urls[node]}/v1/txs",
                        params={"wait": "commit"},
                        content=raw,
                        headers={"content-type": "application/msgpack"},
                    )
                    receipt = answer.json() if answer.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    receipt = None
                if receipt is None or receipt.get("status") != "committed":
                    with self.lock:
                        self.failed += 1
                    time.sleep(0.2)
                    continue
                ack = Ack(
                    receipt["tx_id"],
                    int(receipt["height"]),
                    receipt["block_hash"],
                    node,
                    time.monotonic(),
                )
                with self.lock:
                    if retry:
                        self.resubmits += 1
                    self.raw.setdefault(ack.tx_id, raw)
                    self.acks.append(ack)
