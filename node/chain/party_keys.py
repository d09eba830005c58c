"""Which key signs for which party, and each party's history of key and status changes.

A party is named forever by its **party id**, the key it was registered with: funds,
donations, business ids and every body field that names a party use it. Once a party
rotates its key, `KEY_OWNER` maps each key it ever signed with to the party and the
heights the key was valid for, and `PARTY_KEY` holds its current key. A v1 store has
neither, and there every party's signing key is its id, exactly as before.
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.schema import u64
from almoner.node.chain.state import decode_record, get_party, read_record, write_record
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.errors import ProtocolError

EVENT_KEYS = ("kind", "height", "tx_id", "by", "old_key", "new_key", "reason")


def key_owner(reader: KVReader, key: bytes) -> dict[str, Any] | None:
    """`{"party", "from_height", "until_height"}` of a key that took part in a rotation."""
    record: dict[str, Any] | None = read_record(reader, schema.KEY_OWNER + key)
    return record


def party_id_for(reader: KVReader, key: bytes) -> bytes:
    """A party id, or the id of the party a (current or retired) key signed for."""
    owner = key_owner(reader, key)
    return key if owner is None else bytes(owner["party"])


def current_key(reader: KVReader, party: bytes) -> bytes:
    raw = reader.get(schema.PARTY_KEY + party)
    return party if raw is None else raw


def key_in_use(reader: KVReader, key: bytes) -> bool:
    """A key already names or signed for a party (retired keys included: never reused)."""
    return get_party(reader, key) is not None or key_owner(reader, key) is not None


def resolve_signer(reader: KVReader, key: bytes) -> dict[str, Any] | None:
    """The party record `key` signs for now; `key_retired` for a key rotated away; None
    for a key that never belonged to a party."""
    owner = key_owner(reader, key)
    if owner is None:
        return get_party(reader, key)
    if owner["until_height"] is not None:
        raise ProtocolError(
            "key_retired",
            f"this key was replaced at height {owner['until_height']}; sign with the new key",
            {"party": owner["party"].hex(), "until_height": owner["until_height"]},
        )
    return get_party(reader, owner["party"])


def rotate(state: Overlay, party: bytes, new_key: bytes, height: int) -> bytes:
    """Retire the party's current key and make `new_key` its signing key; returns the old
    key. The caller checked `key_in_use(new_key)` is False."""
    old_key = current_key(state, party)
    previous = key_owner(state, old_key)
    if previous is not None:
        since = previous["from_height"]
    else:  # the party's first key: valid since it was registered
        registered = get_party(state, party)
        since = 0 if registered is None else registered["registered_height"]
    write_record(
        state,
        schema.KEY_OWNER + old_key,
        {"party": party, "from_height": since, "until_height": height},
    )
    write_record(
        state,
        schema.KEY_OWNER + new_key,
        {"party": party, "from_height": height, "until_height": None},
    )
    state.put(schema.PARTY_KEY + party, new_key)
    return old_key


def add_event(state: Overlay, party: bytes, height: int, index: int, event: dict[str, Any]) -> None:
    record = {name: event.get(name) for name in EVENT_KEYS}
    write_record(state, schema.PARTY_EVENT + party + u64(height) + u64(index), record)


def events(reader: KVReader, party: bytes) -> list[dict[str, Any]]:
    return [decode_record(raw) for _, raw in reader.iterate(schema.PARTY_EVENT + party)]


def history(reader: KVReader, party: bytes) -> list[dict[str, Any]]:
    """Every change of the party, oldest first: register, rotate/recover, suspend,
    reinstate. The v1 contract keeps a suspension only in the party record; reinstating
    files the suspension it lifts as an event first (`record_lifted_suspension`), and a
    suspension still in force is read from the record, so none is lost."""
    record = get_party(reader, party)
    if record is None:
        return []
    result = [_event("register", record["registered_height"], record["registered_tx"], key=party)]
    result.extend(events(reader, party))
    if record["suspended"]:
        result.append(_suspension(record))
    return result


def record_lifted_suspension(state: Overlay, record: dict[str, Any]) -> None:
    """File the suspension a reinstatement lifts as an event at the suspending tx's place."""
    where = read_record(state, schema.TX_INDEX + record["suspended_tx"])
    index = 0 if where is None else int(where["index"])
    add_event(state, record["pubkey"], record["suspended_height"], index, _suspension(record))


def _suspension(record: dict[str, Any]) -> dict[str, Any]:
    return {
        **_event("suspend", record["suspended_height"], record["suspended_tx"]),
        "reason": record["suspend_reason"],
    }


def _event(
    kind: str, height: int, tx_id: bytes | None, by: bytes | None = None, key: bytes | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "height": height,
        "tx_id": tx_id,
        "by": by,
        "old_key": None,
        "new_key": key,
        "reason": None,
    }


def key_history(reader: KVReader, party: bytes) -> list[dict[str, Any]]:
    """Each key the party signed with and the heights it was valid for (until: None = now)."""
    rotations = [e for e in events(reader, party) if e["kind"] in ("rotate", "recover")]
    record = get_party(reader, party)
    start = 0 if record is None else record["registered_height"]
    keys = []
    key = party
    for event in rotations:
        keys.append({"key": key, "from_height": start, "until_height": event["height"]})
        key, start = event["new_key"], event["height"]
    keys.append({"key": key, "from_height": start, "until_height": None})
    return keys
