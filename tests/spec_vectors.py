"""Generate the conformance vectors of docs/spec/vectors/ from the implementation itself.

A client in another language is only as right as the bytes it is checked against, so the
vectors are never written by hand: every expected value below is what this codebase
computes (its one encoder, its sign-bytes functions, its Ledger on a real certified chain
built by `tests.localchain`, its Merkle log). `tests/test_spec_vectors.py` regenerates
them and fails if the committed files differ, so the vectors and the code cannot drift.

    python -m tests.spec_vectors            # rewrite docs/spec/vectors/*.json
    python -m tests.spec_vectors --check    # exit 1 if any file would change

The typed-value notation and every file's layout are documented in
docs/spec/10-vectors.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from almoner.consensus.certificate import Certificate, CertificateError, verify_certificate
from almoner.consensus.messages import Proposal, Vote, VoteKind, quorum
from almoner.node.chain import signing
from almoner.node.chain.codec import H, decode, encode, to_json_view
from almoner.node.chain.consensus_crypto import NodeSigner, NodeVerifier
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import parse_genesis
from almoner.node.chain.keys import key_file_document
from almoner.node.chain.ledger import validators_hash
from almoner.node.chain.merkle import root_of
from almoner.node.chain.merkle_log import MerkleLog
from almoner.node.chain.store import MemoryStore, Overlay
from almoner.node.chain.tx import check_tx_shape, check_tx_signature, decode_tx, make_tx
from almoner.node.errors import ProtocolError
from almoner.node.server.p2p import seal
from tests.localchain import LocalChain, local_genesis, seeded_key

VECTORS_DIR = Path(__file__).resolve().parent.parent / "docs" / "spec" / "vectors"
FORMAT = "almoner-vectors/1"


# -- the typed-value notation -------------------------------------------------------------


def typed(value: Any) -> Any:
    """A protocol value as JSON that keeps every msgpack type explicit (docs/spec/10)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, list | tuple):
        return {"array": [typed(item) for item in value]}
    if isinstance(value, dict):
        return {"map": [[key, typed(item)] for key, item in value.items()]}
    raise TypeError(f"no typed notation for {type(value).__name__}")


def untyped(node: Any) -> Any:
    """The inverse of `typed` (used by the test to re-encode every typed vector)."""
    if node is None or isinstance(node, bool):
        return node
    (kind, inner), *rest = node.items()
    if rest:
        raise ValueError(f"a typed value has one key, got {sorted(node)}")
    if kind == "int":
        return int(inner)
    if kind == "str":
        return inner
    if kind == "bin":
        return bytes.fromhex(inner)
    if kind == "array":
        return [untyped(item) for item in inner]
    if kind == "map":
        return {key: untyped(item) for key, item in inner}
    raise ValueError(f"unknown typed kind {kind!r}")


def document(name: str, description: str, **content: Any) -> dict[str, Any]:
    return {"format": FORMAT, "name": name, "description": description, **content}


def error_of(action: Callable[[], Any]) -> dict[str, Any]:
    """The protocol error `action` raises: code, and the named field when there is one."""
    try:
        action()
    except ProtocolError as exc:
        found: dict[str, Any] = {"code": exc.code}
        if "field" in exc.details:
            found["field"] = exc.details["field"]
        return found
    raise AssertionError("expected a protocol error")


# -- encoding -----------------------------------------------------------------------------

ENCODING_VALUES: list[tuple[str, Any]] = [
    ("nil", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("positive fixint max", 127),
    ("uint8", 128),
    ("uint8 max", 255),
    ("uint16", 256),
    ("uint16 max", 65535),
    ("uint32", 65536),
    ("uint64", 2**32),
    ("int64 max", 2**63 - 1),
    ("negative fixint", -1),
    ("negative fixint min", -32),
    ("int8", -33),
    ("int8 min", -128),
    ("int16", -129),
    ("int32", -32769),
    ("int64", -(2**31) - 1),
    ("int64 min", -(2**63)),
    ("empty str", ""),
    ("fixstr", "almoner"),
    ("fixstr max (31 bytes)", "a" * 31),
    ("str8 (32 bytes)", "a" * 32),
    ("str16 (256 bytes)", "b" * 256),
    ("utf-8 str: lengths count bytes", "希望小学"),
    ("empty bin", b""),
    ("bin8", bytes(range(3))),
    ("bin16", bytes(300)),
    ("empty array", []),
    ("fixarray", [1, "a", None]),
    ("array16", list(range(16))),
    ("empty map", {}),
    ("map keys sorted by UTF-8 bytes", {"z": 1, "é": 2, "a": 3, "aa": 4, "B": 5}),
    ("nested maps are sorted too", {"outer": {"y": [], "x": {"b": b"\x01", "a": None}}}),
    ("map16", {f"k{i:02d}": i for i in range(16)}),
]

# (name, input hex, max_size or None); the expected error is what `decode` answers.
ENCODING_REJECTED: list[tuple[str, str, int | None]] = [
    ("empty input", "", None),
    ("truncated array", "9201", None),
    ("trailing bytes after the object", "c0c0", None),
    ("two objects back to back", "0102", None),
    ("float32", "ca3f800000", None),
    ("float64", "cb3ff0000000000000", None),
    ("fixext1", "d40100", None),
    ("timestamp ext", "d6ff00000000", None),
    ("int map key", "8101c0", None),
    ("bin map key", "81c40161c0", None),
    ("repeated map key", "82a161c0a161c0", None),
    ("invalid UTF-8 in a str", "a1ff", None),
    ("uint64 above int64 max", "cf8000000000000000", None),
    ("never-used byte 0xc1", "c1", None),
    ("JSON sent instead of msgpack", b'{"type":"x"}'.hex(), None),
    ("uint8 where a fixint fits", "cc01", None),
    ("int8 for a positive value", "d001", None),
    ("uint16 where a uint8 fits", "cd00ff", None),
    ("str8 where a fixstr fits", "d90161", None),
    ("array16 where a fixarray fits", "dc000101", None),
    ("map16 where a fixmap fits", "de0001a161c0", None),
    ("bin16 where a bin8 fits", "c5000161", None),
    ("map keys out of order", "82a162c0a161c0", None),
    ("key é before key z (UTF-8 byte order puts z first)", "82a2c3a902a17a01", None),
    ("over the size limit", "9401020304", 4),
]


def encoding_vectors() -> dict[str, Any]:
    valid = [{"name": n, "value": typed(v), "hex": encode(v).hex()} for n, v in ENCODING_VALUES]
    rejected = []
    for name, hex_input, limit in ENCODING_REJECTED:
        raw = bytes.fromhex(hex_input)
        entry: dict[str, Any] = {"name": name, "hex": hex_input}
        if limit is not None:
            entry["max_size"] = limit
        size = 65536 if limit is None else limit

        def attempt(raw: bytes = raw, size: int = size) -> None:
            decode(raw, max_size=size)

        entry["error"] = error_of(attempt)
        rejected.append(entry)
    return document(
        "encoding",
        "Canonical MessagePack: typed values with their only accepted bytes, and inputs a "
        "strict decoder must reject with the given code (max_size: the limit to decode with; "
        "otherwise 65536).",
        valid=valid,
        rejected=rejected,
    )


# -- keys -----------------------------------------------------------------------------------


def keys_vectors() -> dict[str, Any]:
    entries = []
    for name in ("vectors/alice", "vectors/bob", "vectors/validator"):
        seed = H(name.encode())
        key = KeyPair.from_seed(seed)
        message = f"almoner key vector {name}".encode()
        entries.append(
            {
                "name": name,
                "seed": seed.hex(),
                "public_key": key.public_key.hex(),
                "message": message.hex(),
                "signature": key.sign(message).hex(),
                "key_file": key_file_document(key),
            }
        )
    sealed_key = KeyPair.from_seed(H(b"vectors/alice"))
    passphrase = "correct horse 电池 staple"
    sealed = key_file_document(
        sealed_key, passphrase, salt=H(b"vectors/salt")[:16], nonce=H(b"vectors/nonce")[:24]
    )
    return document(
        "keys",
        "Ed25519 keys from 32-byte seeds (seed = SHA-256 of the name), a signature over "
        "`message`, and the unencrypted key file of each; then one key file sealed with a "
        "passphrase (argon2id + XSalsa20-Poly1305).",
        keys=entries,
        encrypted={
            "passphrase": passphrase,
            "public_key": sealed_key.public_key.hex(),
            "key_file": sealed,
        },
    )


# -- a real certified chain with every tx type -------------------------------------------


class ChainBuilder:
    """Every tx type, valid in order, committed by the real Ledger into two blocks."""

    def __init__(self) -> None:
        self.genesis, self.keys = local_genesis()
        self.chain = LocalChain(self.genesis, self.keys.validators)
        self.nonce = 0
        self.records: list[dict[str, Any]] = []

    def tx(self, name: str, signer_name: str, key: KeyPair, tx_type: str, body: Any) -> bytes:
        self.nonce += 1
        tx = make_tx(self.genesis.chain_id, tx_type, key, body, self.nonce)
        raw = encode(tx)
        self.records.append(
            {
                "name": name,
                "type": tx_type,
                "signer": signer_name,
                "signer_seed": key.seed.hex(),
                "tx": typed(tx),
                "json": to_json_view(tx),
                "sign_bytes": signing.tx_sign_bytes(tx).hex(),
                "signature": tx["sig"].hex(),
                "encoded": raw.hex(),
                "tx_id": H(raw).hex(),
            }
        )
        return raw

    def party(self, name: str) -> tuple[str, KeyPair]:
        return name, self.keys[name]

    def block_one(self) -> list[bytes]:
        charity, platform, regulator = (
            self.party("charity-1"),
            self.party("platform-1"),
            self.party("regulator"),
        )
        newcomer = seeded_key("vectors/platform-3").public_key
        c1, c2, p1 = (self.keys[n].public_key for n in ("charity-1", "charity-2", "platform-1"))
        donor = H(b"hmac(platform secret, donor account) stands here")
        return [
            self.tx(
                "register a platform",
                *regulator,
                "party.register",
                {"party": newcomer, "role": "platform", "name": "善款通", "org_id": "PLT-3"},
            ),
            self.tx(
                "open a campaign",
                *charity,
                "campaign.open",
                {"campaign": "wells-2026", "title": "乡村水井", "currency": "CNY", "goal": 10**8},
            ),
            self.tx(
                "record a donation to a campaign",
                *platform,
                "donation.record",
                {
                    "donation": "D-0001",
                    "donor": donor,
                    "charity": c1,
                    "campaign": "wells-2026",
                    "amount": 50_000,
                    "currency": "CNY",
                    "received_at": 1_790_000_000_500,
                },
            ),
            self.tx(
                "record an unrestricted donation (campaign nil)",
                *platform,
                "donation.record",
                {
                    "donation": "D-0002",
                    "donor": donor,
                    "charity": c1,
                    "campaign": None,
                    "amount": 20_000,
                    "currency": "CNY",
                    "received_at": 1_790_000_000_600,
                },
            ),
            self.tx(
                "charity confirms receipt",
                *charity,
                "donation.confirm",
                {"platform": p1, "donation": "D-0001"},
            ),
            self.tx(
                "transfer to another charity",
                *charity,
                "funds.transfer",
                {
                    "transfer": "T-0001",
                    "from_fund": "general",
                    "to": c2,
                    "to_fund": "general",
                    "amount": 5_000,
                    "currency": "CNY",
                    "purpose": "联合项目分摊",
                },
            ),
            self.tx(
                "disburse from a campaign",
                *charity,
                "funds.disburse",
                {
                    "disbursement": "P-0001",
                    "fund": "wells-2026",
                    "amount": 30_000,
                    "currency": "CNY",
                    "category": "program",
                    "payee": "某某水务工程公司",
                    "purpose": "打井两口",
                    "evidence": [H(b"invoice 1"), H(b"acceptance report")],
                },
            ),
            self.tx(
                "refund part of a donation",
                *charity,
                "donation.refund",
                {"refund": "R-0001", "platform": p1, "donation": "D-0002", "amount": 1_000},
            ),
            self.tx(
                "audit attestation",
                *regulator,
                "audit.attest",
                {
                    "attestation": "A-2026-Q1",
                    "charity": c1,
                    "period": "2026-Q1",
                    "opinion": "clean",
                    "report": H(b"audit report pdf"),
                    "note": "无保留意见",
                },
            ),
            self.tx(
                "suspend a party",
                *regulator,
                "party.suspend",
                {"party": newcomer, "reason": "资质过期"},
            ),
        ]

    def block_two(self) -> list[bytes]:
        """evidence.submit: validator-3 prevoted for two values at height 1, round 0."""
        culprit = NodeSigner(self.keys.validators[3])
        votes = [
            culprit.sign_vote(
                Vote("prevote", self.genesis.chain_id, 1, 0, value, culprit.public_key)
            ).to_map()
            for value in (H(b"value one"), H(b"value two"))
        ]
        reporter = ("validator-0", self.keys.validators[0])
        return [self.tx("evidence of equivocation", *reporter, "evidence.submit", {"votes": votes})]

    def build(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [self.chain.add_block(self.block_one()), self.chain.add_block(self.block_two())]


REJECTED_TX_EDITS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("extra envelope key", lambda tx: tx.update(memo="x")),
    ("nonce is a bool", lambda tx: tx.update(nonce=True)),
    ("negative nonce", lambda tx: tx.update(nonce=-1)),
    ("signer is 31 bytes", lambda tx: tx.update(signer=tx["signer"][:31])),
    ("wrong chain", lambda tx: tx.update(chain="another-chain")),
    ("unknown type", lambda tx: tx.update(type="donation.cancel")),
    ("missing body field", lambda tx: tx["body"].pop("received_at")),
    ("extra body field", lambda tx: tx["body"].update(note="x")),
    ("amount zero", lambda tx: tx["body"].update(amount=0)),
    ("amount over 10^15", lambda tx: tx["body"].update(amount=10**15 + 1)),
    ("lowercase currency", lambda tx: tx["body"].update(currency="cny")),
    ("campaign spelled general", lambda tx: tx["body"].update(campaign="general")),
    ("business id with a non-ASCII char", lambda tx: tx["body"].update(donation="捐-1")),
    ("business id of 65 chars", lambda tx: tx["body"].update(donation="d" * 65)),
    ("body signed, then amount changed", lambda tx: tx["body"].update(amount=50_001)),
]


def rejected_txs(builder: ChainBuilder) -> list[dict[str, Any]]:
    """Stateless rejections of a donation.record, each judged by the node's own checks."""
    base = untyped(builder.records[2]["tx"])
    chain_id = builder.genesis.chain_id
    out = []
    for name, edit in REJECTED_TX_EDITS:
        tx = untyped(typed(base))
        edit(tx)
        if name != "body signed, then amount changed":  # re-sign: only the edit is wrong
            tx["sig"] = builder.keys["platform-1"].sign(signing.tx_sign_bytes(tx))
        raw = encode(tx)

        def judge(raw: bytes = raw) -> None:
            decoded = decode_tx(raw)
            check_tx_shape(decoded, chain_id)
            check_tx_signature(decoded)

        out.append({"name": name, "encoded": raw.hex(), "error": error_of(judge)})
    return out


def transactions_vectors(builder: ChainBuilder) -> dict[str, Any]:
    return document(
        "transactions",
        f"Every tx type, signed and committed on chain {builder.genesis.chain_id!r} (see "
        "chain.json); then stateless rejections of the donation.record, judged on that chain "
        "in the fixed check order.",
        chain_id=builder.genesis.chain_id,
        txs=builder.records,
        rejected=rejected_txs(builder),
    )


def chain_vectors(
    builder: ChainBuilder, blocks: list[tuple[dict[str, Any], dict[str, Any]]]
) -> dict[str, Any]:
    genesis = builder.genesis
    validator_keys = genesis.validator_keys
    entries = []
    for block, cert in blocks:
        header = block["header"]
        tx_ids = [H(encode(tx)) for tx in block["txs"]]
        entries.append(
            {
                "header": typed(header),
                "header_json": to_json_view(header),
                "hash_input": (signing.HEADER_TAG + b"\x00" + encode(header)).hex(),
                "block_hash": signing.block_hash(header).hex(),
                "tx_ids": [t.hex() for t in tx_ids],
                "txs_root": root_of(tx_ids).hex(),
                "certificate": typed(cert),
                "precommit_sign_bytes": [
                    signing.vote_sign_bytes(
                        Vote(
                            "precommit",
                            genesis.chain_id,
                            cert["height"],
                            cert["round"],
                            cert["block_hash"],
                            vote["validator"],
                        ).to_map()
                    ).hex()
                    for vote in cert["votes"]
                ],
            }
        )
    return document(
        "chain",
        "A two-block certified chain built by the Ledger from the genesis below; block 1 "
        "holds the first ten txs of transactions.json, block 2 the evidence.submit.",
        genesis=genesis.to_json(),
        genesis_canonical=encode(genesis.to_protocol()).hex(),
        genesis_hash=genesis.hash.hex(),
        validators_sorted=[k.hex() for k in sorted(validator_keys)],
        validators_hash=validators_hash(validator_keys).hex(),
        quorum=quorum(len(validator_keys)),
        blocks=entries,
        bad_certificates=bad_certificates(builder, blocks[0]),
    )


def bad_certificates(
    builder: ChainBuilder, first: tuple[dict[str, Any], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Certificates for block 1 that must not be accepted, with the reason the node gives."""
    block, _ = first
    chain = builder.chain
    outsider = seeded_key("vectors/outsider")
    good = chain.certify(block)

    def with_outsider() -> dict[str, Any]:
        cert = chain.certify(block, signers=[0, 1])
        vote = Vote(
            "precommit", builder.genesis.chain_id, 1, 0, cert["block_hash"], outsider.public_key
        )
        cert["votes"].append(
            {"validator": outsider.public_key, "sig": NodeSigner(outsider).sign_vote(vote).sig}
        )
        return cert

    def duplicated() -> dict[str, Any]:
        cert = chain.certify(block, signers=[0, 1])
        cert["votes"].append(cert["votes"][0])
        return cert

    def tampered_sig() -> dict[str, Any]:
        cert = chain.certify(block)
        sig = bytearray(cert["votes"][1]["sig"])
        sig[0] ^= 1
        cert["votes"][1]["sig"] = bytes(sig)
        return cert

    cases = [
        ("two of four precommits", chain.certify(block, signers=[0, 1])),
        ("a validator counted twice", duplicated()),
        ("a signer outside the set", with_outsider()),
        ("prevotes instead of precommits", chain.certify(block, kind="prevote")),
        ("one signature altered", tampered_sig()),
        ("certificate for another height", chain.certify(block, height=2)),
        ("round in the certificate differs from the signed round", {**good, "round": 1}),
    ]
    out = []
    for name, cert in cases:
        reason = ""
        try:
            verify_certificate(
                Certificate.from_map(cert),
                builder.genesis.chain_id,
                builder.genesis.validator_keys,
                NodeVerifier(),
                height=1,
                block_hash=signing.block_hash(block["header"]),
            )
        except CertificateError as exc:
            reason = exc.reason
        assert reason, name
        out.append({"name": name, "certificate": typed(cert), "reason": reason})
    return out


# -- consensus messages and p2p -----------------------------------------------------------


def consensus_vectors() -> dict[str, Any]:
    key = KeyPair.from_seed(H(b"vectors/validator"))
    signer = NodeSigner(key)
    value = H(b"a block header")
    proposal = signer.sign_proposal(Proposal("vectors-chain", 7, 2, 1, value, key.public_key))
    messages = [
        ("proposal", proposal.to_map(), signing.proposal_sign_bytes(proposal.to_map())),
    ]
    votes: list[tuple[VoteKind, bytes | None]] = [
        ("prevote", value),
        ("precommit", value),
        ("prevote", None),
    ]
    for kind, block in votes:
        vote = signer.sign_vote(Vote(kind, "vectors-chain", 7, 2, block, key.public_key))
        name = f"{kind} {'nil' if block is None else 'value'}"
        messages.append((name, vote.to_map(), signing.vote_sign_bytes(vote.to_map())))
    envelope = seal(key, "vectors-chain", [{"type": "vote", "vote": messages[1][1]}])
    return document(
        "consensus",
        "Signed consensus messages (seed = SHA-256 of 'vectors/validator') and one p2p "
        "envelope carrying the first vote.",
        signer_seed=key.seed.hex(),
        messages=[
            {"name": name, "message": typed(msg), "sign_bytes": sb.hex(), "sig": msg["sig"].hex()}
            for name, msg, sb in messages
        ],
        p2p_envelope={
            "envelope": typed(decode(envelope, max_size=len(envelope))),
            "sign_bytes": signing.p2p_sign_bytes(decode(envelope)).hex(),
            "encoded": envelope.hex(),
        },
    )


# -- the Merkle log -------------------------------------------------------------------------


def merkle_vectors() -> dict[str, Any]:
    """RFC 9162 roots and proofs for every size up to 8, from the node's persistent log."""
    leaves = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41", b"\x50\x51\x52\x53"]
    leaves.append(b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f")
    log = MerkleLog(Overlay(MemoryStore()))
    log.append(leaves)
    return document(
        "merkle",
        "RFC 9162 tree hashes (leaf = H(0x00||input), node = H(0x01||l||r), empty = H('')) "
        "over the RFC 6962 test leaf inputs; in the ledger each input is a 32-byte tx_id.",
        leaf_inputs=[leaf.hex() for leaf in leaves],
        roots=[{"tree_size": n, "root": log.root(n).hex()} for n in range(len(leaves) + 1)],
        inclusion=[
            {
                "leaf_index": i,
                "tree_size": n,
                "path": [p.hex() for p in log.inclusion_proof(i, n)],
            }
            for n in range(1, len(leaves) + 1)
            for i in range(n)
        ],
        consistency=[
            {"first": m, "second": n, "path": [p.hex() for p in log.consistency_proof(m, n)]}
            for n in range(1, len(leaves) + 1)
            for m in range(1, n + 1)
        ],
    )


# -- all files ------------------------------------------------------------------------------


def generate() -> dict[str, dict[str, Any]]:
    """File name → content of every vector file."""
    builder = ChainBuilder()
    blocks = builder.build()
    parse_genesis(builder.genesis.to_json())  # the document round-trips through the parser
    return {
        "encoding.json": encoding_vectors(),
        "keys.json": keys_vectors(),
        "transactions.json": transactions_vectors(builder),
        "chain.json": chain_vectors(builder, blocks),
        "consensus.json": consensus_vectors(),
        "merkle.json": merkle_vectors(),
    }


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    stale = []
    for name, content in generate().items():
        path = VECTORS_DIR / name
        text = render(content)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            VECTORS_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "differ" if args.check else "written"
    print(f"{len(stale)} vector file(s) {verb}: {', '.join(stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
