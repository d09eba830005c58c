"""Canonical MessagePack: round trips, and every non-canonical variant is rejected."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from almoner.node.chain.codec import H, decode, encode, to_json_view
from almoner.node.errors import CodecError

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
scalars = st.none() | st.booleans() | ints | st.text(max_size=20) | st.binary(max_size=40)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@given(values)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    assert decode(data, max_size=1 << 20) == value
    assert encode(decode(data, max_size=1 << 20)) == data


@given(st.dictionaries(st.text(max_size=8), ints, min_size=2, max_size=8))
def test_map_keys_sorted_by_utf8_bytes(value: dict[str, int]) -> None:
    data = encode(value)
    keys = list(msgpack.unpackb(data, raw=False).keys())
    assert keys == sorted(keys, key=lambda k: k.encode("utf-8"))


def _int_forms(n: int) -> list[bytes]:
    """Every msgpack encoding of an integer, canonical or not."""
    forms: list[bytes] = []
    if 0 <= n <= 0x7F or -32 <= n < 0:
        forms.append(struct.pack("b", n) if n < 0 else bytes([n]))
    for tag, fmt, lo, hi in (
        (0xCC, ">B", 0, 2**8 - 1),
        (0xCD, ">H", 0, 2**16 - 1),
        (0xCE, ">I", 0, 2**32 - 1),
        (0xCF, ">Q", 0, 2**64 - 1),
        (0xD0, ">b", -(2**7), 2**7 - 1),
        (0xD1, ">h", -(2**15), 2**15 - 1),
        (0xD2, ">i", -(2**31), 2**31 - 1),
        (0xD3, ">q", -(2**63), 2**63 - 1),
    ):
        if lo <= n <= hi:
            forms.append(bytes([tag]) + struct.pack(fmt, n))
    return forms


def _len_forms(n: int, fix: int | None, fix_max: int, tags: tuple[int, ...]) -> list[bytes]:
    forms = []
    if fix is not None and n <= fix_max:
        forms.append(bytes([fix | n]))
    for tag, fmt, hi in zip(
        tags, (">B", ">H", ">I"), (2**8 - 1, 2**16 - 1, 2**32 - 1), strict=True
    ):
        if tag and n <= hi:
            forms.append(bytes([tag]) + struct.pack(fmt, n))
    return forms


def loose_encode(value: Any, draw: Any) -> bytes:
    """Encode with any valid msgpack header widths and any map key order."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        return draw(st.sampled_from(_int_forms(value)))  # type: ignore[no-any-return]
    if isinstance(value, str):
        raw = value.encode()
        header = draw(st.sampled_from(_len_forms(len(raw), 0xA0, 31, (0xD9, 0xDA, 0xDB))))
        return header + raw  # type: ignore[no-any-return]
    if isinstance(value, bytes):
        header = draw(st.sampled_from(_len_forms(len(value), None, 0, (0xC4, 0xC5, 0xC6))))
        return header + value  # type: ignore[no-any-return]
    if isinstance(value, list):
        header = draw(st.sampled_from(_len_forms(len(value), 0x90, 15, (0, 0xDC, 0xDD))))
        return header + b"".join(loose_encode(v, draw) for v in value)  # type: ignore[no-any-return]
    keys = draw(st.permutations(list(value)))
    header = draw(st.sampled_from(_len_forms(len(value), 0x80, 15, (0, 0xDE, 0xDF))))
    body = b"".join(loose_encode(k, draw) + loose_encode(value[k], draw) for k in keys)
    return header + body  # type: ignore[no-any-return]


@given(values, st.data())
def test_every_encoding_but_the_canonical_one_is_non_canonical(value: Any, data: Any) -> None:
    variant = loose_encode(value, data.draw)
    if variant == encode(value):
        assert decode(variant, max_size=1 << 20) == value
    else:
        with pytest.raises(CodecError) as err:
            decode(variant, max_size=1 << 20)
        assert err.value.code == "non_canonical"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\xc1", "never-used byte"),
        (b"\x01\x02", "trailing bytes"),
        (b"\xca\x00\x00\x00\x00", "float32"),
        (b"\xcb" + b"\x00" * 8, "float64"),
        (b"\xd4\x01\x00", "fixext"),
        (b"\xd6\xff\x00\x00\x00\x00", "timestamp ext"),
        (b"\x82\xa1a\x01\xa1a\x02", "duplicate key"),
        (b"\x81\x01\x02", "int key"),
        (b"\x81\xc4\x01a\x02", "bin key"),
        (b"\xa2\xff\xfe", "invalid utf-8"),
        (b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "uint64 over the int64 range"),
        (b"\x92\x01", "truncated array"),
        (b"\x91" * 100_000 + b"\x01", "absurd nesting"),
    ],
)
def test_malformed_inputs(data: bytes, why: str) -> None:
    with pytest.raises(CodecError) as err:
        decode(data, max_size=1 << 20)
    assert err.value.code == "malformed", why


def test_too_large_is_checked_before_decoding() -> None:
    data = encode({"x": b"\x00" * 100})
    with pytest.raises(CodecError) as err:
        decode(data, max_size=50)
    assert err.value.code == "too_large"
    assert err.value.details["limit"] == 50


@pytest.mark.parametrize("value", [1.5, {1: 2}, 2**63, -(2**63) - 1, {"a": object()}])
def test_encoder_refuses_values_outside_the_protocol(value: Any) -> None:
    with pytest.raises(CodecError):
        encode(value)


def test_json_view_hexes_bin() -> None:
    assert to_json_view({"a": b"\x01\xff", "b": [b"\x00"], "c": 3}) == {
        "a": "01ff",
        "b": ["00"],
        "c": 3,
    }


def test_sha256() -> None:
    assert H(b"").hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
