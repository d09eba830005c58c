"""A small synchronous client for a node's HTTP API, for the CLI and platforms' own code.

    client = Client("http://127.0.0.1:8101")
    tx = client.build("donation.record", key, body)          # signed, canonical
    receipt = client.submit(tx, wait=True)                   # 200 receipt once committed

Errors from the node come back as `ProtocolError` with the node's code and details, so a
platform can branch on `exc.code == "insufficient_funds"` without parsing text (and find
the first tx of a `duplicate_id` in `exc.details["tx_id"]`). `busy` answers are retried
with exponential backoff honouring `Retry-After`: resending the same signed bytes is
always safe (docs/spec/04-errors.md). `verify_receipt` checks a receipt against validators
pinned from genesis, and `events` follows GET /v1/events.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from almoner.consensus import Certificate, CertificateError, verify_certificate
from almoner.node.chain.certified import (
    BLOCKS_PATH,
    SyncError,
    block_range_items,
    block_range_query,
    parse_block_items,
)
from almoner.node.chain.codec import MSGPACK, array_header, decode, encode
from almoner.node.chain.consensus_crypto import NodeVerifier
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import Genesis, GenesisError, parse_genesis
from almoner.node.chain.merkle import verify_inclusion
from almoner.node.chain.signing import block_hash
from almoner.node.chain.tx import make_tx
from almoner.node.errors import STATUS_BY_CODE, AlmonerError, ProtocolError

TRACE_ATTEMPTS = 5


class ClientError(AlmonerError):
    """The node could not be reached, or answered something that is not the API."""


class ReceiptError(AlmonerError):
    """A receipt that does not prove what it claims against the pinned validators."""


class Client:
    def __init__(
        self, url: str, timeout: float = 30.0, retries: int = 6, backoff_s: float = 0.2
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._chain_id: str | None = None
        self.retries = retries
        self.backoff_s = backoff_s

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; `busy` (503/429) is retried after a growing, jittered pause."""
        for attempt in range(self.retries):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise ClientError(f"cannot reach {self.url}: {exc}") from exc
            if response.status_code < 400:
                return response
            error = _error_from(response)
            busy = response.status_code == 429 or getattr(error, "code", "") == "busy"
            if not busy or attempt + 1 == self.retries:
                raise error
            time.sleep(self._pause(attempt, response.headers.get("retry-after")))
        raise ClientError("unreachable: the retry loop always returns or raises")

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        plain = retry_after is not None and retry_after.isascii() and retry_after.isdigit()
        hinted = float(retry_after) if plain and retry_after else 0.0
        grown = min(5.0, self.backoff_s * 2.0**attempt)
        jittered: float = grown / 2 + random.random() * grown / 2
        return max(hinted, jittered)

    def _get_json(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params or None).json()

    def _get_msgpack(self, path: str, **params: Any) -> Any:
        response = self._request("GET", path, params=params or None, headers={"accept": MSGPACK})
        return decode(response.content, max_size=1 << 30)

    # -- writes ---------------------------------------------------------------------
    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = str(self.status()["chain_id"])
        return self._chain_id

    def build(
        self, tx_type: str, key: KeyPair, body: dict[str, Any], nonce: int | None = None
    ) -> dict[str, Any]:
        nonce = time.time_ns() if nonce is None else nonce
        return make_tx(self.chain_id, tx_type, key, body, nonce)

    def submit(self, tx: dict[str, Any] | bytes, *, wait: bool = False) -> dict[str, Any]:
        raw = tx if isinstance(tx, bytes) else encode(tx)
        params = {"wait": "commit"} if wait else None
        response = self._request(
            "POST",
            "/v1/txs",
            content=raw,
            params=params,
            headers={"content-type": MSGPACK, "accept": MSGPACK},
        )
        result: dict[str, Any] = decode(response.content, max_size=1 << 26)
        return result

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        body = array_header(len(raws)) + b"".join(raws)
        response = self._request(
            "POST",
            "/v1/txs/batch",
            content=body,
            headers={"content-type": MSGPACK, "accept": MSGPACK},
        )
        results: list[dict[str, Any]] = decode(response.content, max_size=1 << 30)["results"]
        return results

    def submit_and_wait(
        self, raws: list[bytes], chunk: int = 500, timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        """Submit in batches, then wait for each accepted tx: its receipt, or its rejection."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(raws), chunk):
            for result in self.submit_batch(raws[start : start + chunk]):
                if result["status"] == "rejected":
                    out.append(result)
                else:
                    out.append(self.wait_for_commit(result["tx_id"], timeout_s))
        return out

    def wait_for_commit(self, tx_id: bytes, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll GET /v1/txs/{id} until the tx has a receipt; `timeout` if it does not."""
        deadline = time.monotonic() + timeout_s
        pause = 0.05
        while True:
            try:
                receipt = self.tx(tx_id).get("receipt")
            except ProtocolError as exc:
                if exc.code != "not_found":
                    raise
                receipt = None
            if receipt is not None:
                found: dict[str, Any] = receipt
                return found
            if time.monotonic() > deadline:
                raise ProtocolError("timeout", "the tx was not committed in time", {})
            time.sleep(pause)
            pause = min(1.0, pause * 2)

    def verify_receipt(self, receipt: dict[str, Any], genesis: Genesis) -> None:
        """Raise ReceiptError unless a quorum of genesis validators certified the head the
        receipt names, and the inclusion proof puts the tx in that head's log."""
        head = self._certified_header(receipt["head"]["height"], genesis)
        if block_hash(head) != receipt["head"]["block_hash"]:
            raise ReceiptError("the receipt names another head")
        proof = receipt["proof"]
        if head["log_size"] != proof["tree_size"] or not verify_inclusion(
            receipt["tx_id"],
            proof["leaf_index"],
            proof["tree_size"],
            proof["path"],
            head["log_root"],
        ):
            raise ReceiptError("the inclusion proof does not verify against the head")
        if block_hash(self._certified_header(receipt["height"], genesis)) != receipt["block_hash"]:
            raise ReceiptError("the tx's block is not the certified one")

    def _certified_header(self, height: int, genesis: Genesis) -> dict[str, Any]:
        view = self.block(height)
        header: dict[str, Any] = view["header"]
        try:
            verify_certificate(
                Certificate.from_map(view["commit"]),
                genesis.chain_id,
                genesis.validator_keys,
                NodeVerifier(),
                height=height,
                block_hash=block_hash(header),
            )
        except CertificateError as exc:
            raise ReceiptError(f"block {height} is not certified: {exc}") from exc
        return header

    def events(
        self,
        *,
        start: int | None = None,
        after: int | None = None,
        until: int | None = None,
        party: bytes | None = None,
        types: list[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Commit events (GET /v1/events) as dicts (hex for bytes), one per block."""
        params: dict[str, str] = {}
        if start is not None:
            params["from"] = str(start)
        if until is not None:
            params["until"] = str(until)
        if party is not None:
            params["party"] = party.hex()
        if types:
            params["type"] = ",".join(types)
        headers = {"last-event-id": str(after)} if after is not None else {}
        try:
            with self._http.stream(
                "GET", "/v1/events", params=params, headers=headers, timeout=None
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(response)
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        event: dict[str, Any] = json.loads(line[5:])
                        yield event
        except httpx.HTTPError as exc:
            raise ClientError(f"event stream from {self.url} failed: {exc}") from exc

    # -- reads (protocol bytes intact: msgpack) -------------------------------------
    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get_json("/v1/status")
        return result

    def genesis(self) -> Genesis:
        """The node's genesis; callers compare its hash with the one they pinned."""
        try:
            return parse_genesis(self._get_json("/v1/genesis"))
        except GenesisError as exc:
            raise ClientError(f"{self.url} served an invalid genesis: {exc}") from exc

    def head(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get_msgpack("/v1/head")
        return result

    def block(self, height: int) -> dict[str, Any]:
        result: dict[str, Any] = self._get_msgpack(f"/v1/blocks/{height}")
        return result

    def blocks(self, start: int, limit: int = 100) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Blocks start .. start + limit - 1 with their certificates (shape-checked only)."""
        try:
            return parse_block_items(self.block_items(start, limit), self.url)
        except SyncError as exc:
            raise ClientError(str(exc)) from exc

    def block_items(self, start: int, limit: int = 100) -> list[bytes]:
        """The raw `{"block", "commit"}` items of one GET /v1/blocks, as the node sent them
        (an archive stores them verbatim). Raises ClientError."""
        try:
            response = self._http.get(
                BLOCKS_PATH, params=block_range_query(start, limit), headers={"accept": MSGPACK}
            )
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from exc
        try:
            return block_range_items(response.status_code, response.content, self.url, start)
        except SyncError as exc:
            raise ClientError(str(exc)) from exc

    def tx(self, tx_id: bytes, proof_size: int | None = None) -> dict[str, Any]:
        params = {} if proof_size is None else {"proof_size": proof_size}
        result: dict[str, Any] = self._get_msgpack(f"/v1/txs/{tx_id.hex()}", **params)
        return result

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        result: dict[str, Any] = self._get_msgpack(
            "/v1/proofs/consistency", first=first, second=second
        )
        return result

    def trace(self, platform: bytes, donation_id: str) -> dict[str, Any]:
        """The whole trace: a node pages hops (1000 a page); the pages are joined when
        they were all answered against one head (else it is asked again, a few times)."""
        path = f"/v1/donations/{platform.hex()}/{donation_id}/trace"
        for _ in range(TRACE_ATTEMPTS):
            first: dict[str, Any] = self._get_msgpack(path)
            hops, proofs = list(first["hops"]), dict(first["proofs"])
            next_from = first.get("hops_next")
            while next_from is not None:
                page: dict[str, Any] = self._get_msgpack(path, hops_from=next_from)
                if page["head"] != first["head"]:
                    break  # a block was committed meanwhile: start over at the new head
                hops += page["hops"]
                proofs.update(page["proofs"])
                next_from = page.get("hops_next")
            if next_from is None:
                return {**first, "hops": hops, "proofs": proofs}
        raise ClientError(f"{self.url}: the trace kept changing while it was read")

    def party(self, pubkey: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._get_msgpack(f"/v1/parties/{pubkey.hex()}")
        return result

    def funds(self, charity: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._get_msgpack(f"/v1/charities/{charity.hex()}/funds")
        return result

    def lookup(self, party: bytes, tx_type: str, business_id: str) -> dict[str, Any]:
        """The committed tx that used `business_id` (with its receipt), by the party's id."""
        path = f"/v1/ids/{party.hex()}/{tx_type}/{quote(business_id, safe='')}"
        result: dict[str, Any] = self._get_msgpack(path)
        return result

    def evidence(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get_msgpack("/v1/evidence")
        return result

    def governance(self) -> dict[str, Any]:
        """Proposals, recoveries, validator sets by height and protocol versions."""
        result: dict[str, Any] = self._get_msgpack("/v1/governance")
        return result


def _error_from(response: httpx.Response) -> AlmonerError:
    try:
        payload = response.json() if "json" in response.headers.get("content-type", "") else None
        if payload is None:
            payload = decode(response.content, max_size=1 << 20)
        error = payload["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError, AlmonerError):
        return ClientError(f"HTTP {response.status_code}: {response.text[:200]}")
    if code in STATUS_BY_CODE:
        return ProtocolError(code, message, error.get("details") or {})
    return ClientError(f"HTTP {response.status_code} {code}: {message}")
