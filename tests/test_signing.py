"""Sign-bytes: cutting them from a tx's canonical bytes equals encoding the tx without sig."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from almoner.node.chain.codec import encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.signing import split_signed_tx, tx_sign_bytes
from almoner.node.chain.tx import make_tx

KEY = KeyPair.from_seed(b"\x01" * 32)
bodies = st.dictionaries(
    st.text(max_size=10),
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary(),
    max_size=6,
)


@given(chain=st.text(max_size=20), tx_type=st.text(max_size=20), body=bodies,
       nonce=st.integers(0, 2**63 - 1))  # fmt: skip
def test_cut_sign_bytes_equal_the_encoded_ones(
    chain: str, tx_type: str, body: dict[str, Any], nonce: int
) -> None:
    tx = make_tx(chain, tx_type, KEY, body, nonce)
    split = split_signed_tx(encode(tx))
    assert split is not None
    message, signer, sig = split
    assert message == tx_sign_bytes(tx)
    assert (signer, sig) == (tx["signer"], tx["sig"])


def test_non_canonical_or_foreign_maps_are_not_split() -> None:
    tx = make_tx("c", "t", KEY, {}, 1)
    reordered = msgpack.packb(dict(reversed(list(tx.items()))), use_bin_type=True)
    assert split_signed_tx(reordered) is None
    assert split_signed_tx(encode({**tx, "extra": 1})) is None
    assert split_signed_tx(encode({**tx, "sig": "not bytes"})) is None
    assert split_signed_tx(encode(tx) + b"\x00") is None
    assert split_signed_tx(b"") is None
