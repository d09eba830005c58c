"""The validators' p2p channel: mutual TLS 1.3 pinned to the genesis keys, then frames.

Every validator serves one TLS listener and dials each peer once; a connection lives as
long as both ends do and carries frames one way (dialer to listener), so a pair of
validators shares two long-lived streams and no per-message handshake or HTTP request.
docs/p2p.md is the wire description; in short:

- **Who is on the other end.** A node's certificate is an X.509 certificate whose subject
  public key IS its validator Ed25519 key. TLS 1.3's CertificateVerify proves the peer
  holds that key's secret; after the handshake, and before a single frame is read, the
  listener compares the peer's certificate key with the validator set of the chain and
  the dialer compares it with the one key it meant to reach. Anyone else is disconnected.
  OpenSSL insists on a chain to a trusted issuer, so every certificate is issued by a
  "chain CA" whose key is derived from the chain id: anyone can derive it, so it vouches
  for nothing, and nothing relies on it. It only lets the stdlib `ssl` module complete
  the handshake (as libp2p does with a verifier that ignores the chain). What
  authenticates a peer is the pinned leaf key. A node of another chain derives another
  CA and fails the handshake itself.
- **Frames.** `u32 big-endian length || msgpack array of messages` (the message maps of
  p2p.py). The array's element count is read from its header and refused above
  MAX_FRAME_MSGS before anything is decoded; a length above the frame limit ends the
  connection without reading the payload.
- **No replay.** TLS 1.3 gives each connection fresh ECDHE keys and numbers its records:
  bytes recorded from one connection cannot be played into another or twice into the
  same one, and no 0-RTT early data is accepted (Python's `ssl` never enables it). Inside
  the channel, consensus messages carry their own signatures and the machine ignores a
  repeat, so a replayed message could change nothing anyway; the channel needs no nonce.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from almoner.node.chain.codec import H, array_header
from almoner.node.chain.crypto import KeyPair
from almoner.node.server.metrics import Metrics
from almoner.node.server.p2p import MAX_FRAME_MSGS, P2PError, parse_frame
from almoner.node.server.tasks import cancel_all

log = logging.getLogger("almoner.channel")

HANDSHAKE_TIMEOUT_S = 5.0
FRAME_HEADER = 4
# While the consensus inbox holds more than this, readers stop reading: every peer then
# has at most one frame waiting past this point, and TCP pushes back on a flooding sender.
INBOX_SOFT_LIMIT = 512
BACKLOG_POLL_S = 0.002
CA_TAG = b"almoner/p2p-ca/1\x00"
NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)

Deliver = Callable[[bytes, list[dict[str, Any]]], int]


class ChannelError(P2PError):
    """The peer at the other end is not who it must be, or broke the framing."""


# -- certificates and TLS contexts -----------------------------------------------------
def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def chain_ca_key(chain: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(H(CA_TAG + chain.encode("utf-8")))


def _certificate(
    subject: str, public: Ed25519PublicKey, issuer: str, signer: Ed25519PrivateKey, ca: bool
) -> x509.Certificate:
    """Deterministic (fixed serial and dates; Ed25519 signs deterministically): a node's
    certificate is the same after every restart and does not depend on its clock."""
    raw = public.public_bytes_raw()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(int.from_bytes(H(raw)[:16], "big") >> 1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, None)
    )


def chain_ca_pem(chain: str) -> bytes:
    ca = chain_ca_key(chain)
    name = f"almoner p2p CA for {chain}"
    return _certificate(name, ca.public_key(), name, ca, True).public_bytes(
        serialization.Encoding.PEM
    )


def node_certificate(key: KeyPair, chain: str) -> x509.Certificate:
    secret = Ed25519PrivateKey.from_private_bytes(key.seed)
    return _certificate(
        key.public_key.hex(),
        secret.public_key(),
        f"almoner p2p CA for {chain}",
        chain_ca_key(chain),
        False,
    )


def tls_context(key: KeyPair, chain: str, server: bool) -> ssl.SSLContext:
    """TLS 1.3 only, a certificate required from both ends, the chain CA as the only
    issuer. Hostnames are not checked: the peer is identified by its pinned key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=chain_ca_pem(chain).decode("ascii"))
    secret = Ed25519PrivateKey.from_private_bytes(key.seed)
    password = os.urandom(32).hex().encode("ascii")
    # load_cert_chain reads files only; the key file holds the secret encrypted with a
    # one-time password and is removed at once.
    with tempfile.TemporaryDirectory(prefix="almoner-tls-") as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(node_certificate(key, chain).public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            secret.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
        )
        context.load_cert_chain(cert_path, key_path, password=password)
    return context


def peer_public_key(writer: asyncio.StreamWriter) -> bytes | None:
    """The Ed25519 key the peer proved it holds during the handshake, or None."""
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    public = x509.load_der_x509_certificate(der).public_key()
    return public.public_bytes_raw() if isinstance(public, Ed25519PublicKey) else None


# -- frames ----------------------------------------------------------------------------
def frame(raw_msgs: list[bytes]) -> bytes:
    """One frame from already-encoded messages: length, array header, the messages."""
    payload = array_header(len(raw_msgs)) + b"".join(raw_msgs)
    return len(payload).to_bytes(FRAME_HEADER, "big") + payload


async def read_frame(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    """The next frame's payload; ChannelError if its length is over the limit (the
    payload is then never read: the connection must be dropped)."""
    size = int.from_bytes(await reader.readexactly(FRAME_HEADER), "big")
    if size > max_bytes:
        raise ChannelError(413, "too_large", f"p2p frame of {size} bytes over {max_bytes}")
    return await reader.readexactly(size)


# -- dialing ---------------------------------------------------------------------------
async def dial(
    host: str, port: int, context: ssl.SSLContext, expected: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a channel to the validator holding `expected`; ChannelError if the listener
    proves another key."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=None),
        HANDSHAKE_TIMEOUT_S,
    )
    if peer_public_key(writer) != expected:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)
        raise ChannelError(403, "wrong_peer", f"{host}:{port} is not the expected validator")
    return reader, writer


# -- listening -------------------------------------------------------------------------
class ChannelServer:
    """Accepts validators' channels and hands their frames to the consensus driver."""

    def __init__(
        self,
        key: KeyPair,
        chain: str,
        validators: Callable[[], frozenset[bytes]],
        deliver: Deliver,
        backlog: Callable[[], int],
        metrics: Metrics,
        max_frame_bytes: int,
    ) -> None:
        self.key = key
        self.validators = validators
        self.deliver = deliver
        self.backlog = backlog
        self.metrics = metrics
        self.max_frame_bytes = max_frame_bytes
        self.context = tls_context(key, chain, server=True)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: dict[bytes, asyncio.Task[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=self.context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await cancel_all(list(self._conns.values()))
        self._conns.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def refuse(self, code: str) -> None:
        self.metrics.inc("almoner_p2p_refused_total", code=code)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_public_key(writer)
            if peer is None or peer == self.key.public_key or peer not in self.validators():
                self.refuse("not_a_validator")
                return
            previous = self._conns.get(peer)
            current = asyncio.current_task()
            assert current is not None
            self._conns[peer] = current
            if previous is not None:
                previous.cancel()  # a reconnect replaces the old stream
            try:
                await self._read_frames(peer, reader)
            finally:
                if self._conns.get(peer) is current:
                    del self._conns[peer]
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except ChannelError as exc:
            self.refuse(exc.code)
        except asyncio.CancelledError:
            # Stopped, or replaced by the peer's reconnect. asyncio's stream server reads
            # the handler's outcome and logs a cancelled one as an error with a traceback,
            # on every clean shutdown; the stream is simply over.
            pass
        finally:
            writer.close()

    async def _read_frames(self, peer: bytes, reader: asyncio.StreamReader) -> None:
        while True:
            payload = await read_frame(reader, self.max_frame_bytes)
            if peer not in self.validators():  # governance removed it since the handshake
                raise ChannelError(403, "not_a_validator", "no longer a validator")
            try:
                msgs = parse_frame(payload)
            except P2PError as exc:
                self.refuse(exc.code)  # the framing still holds: drop this frame only
                continue
            delivered = self.deliver(peer, msgs)
            if delivered < len(msgs):
                self.metrics.inc("almoner_p2p_dropped_total", len(msgs) - delivered, reason="busy")
            while self.backlog() > INBOX_SOFT_LIMIT:
                await asyncio.sleep(BACKLOG_POLL_S)


__all__ = [
    "MAX_FRAME_MSGS",
    "ChannelError",
    "ChannelServer",
    "dial",
    "frame",
    "node_certificate",
    "read_frame",
    "tls_context",
]
