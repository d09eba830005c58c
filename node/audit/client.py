"""A small synchronous client for a node's HTTP API, for the CLI and platforms' own code.

    client = Client("http://127.0.0.1:8101")
    tx = client.build("donation.record", key, body)          # signed, canonical
    receipt = client.submit(tx, wait=True)                   # 200 receipt once committed

Errors from the node come back as `ProtocolError` with the node's code, so a platform can
branch on `exc.code == "insufficient_funds"` without parsing text.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from almoner.node.chain.certified import (
    BLOCKS_PATH,
    SyncError,
    block_range_items,
    block_range_query,
    parse_block_items,
)
from almoner.node.chain.codec import MSGPACK, array_header, decode, encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import Genesis, GenesisError, parse_genesis
from almoner.node.chain.tx import make_tx
from almoner.node.errors import STATUS_BY_CODE, AlmonerError, ProtocolError

TRACE_ATTEMPTS = 5


class ClientError(AlmonerError):
    """The node could not be reached, or answered something that is not the API."""


class Client:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._chain_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response

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
