"""Node config: TOML file, relative paths, ALMONER_* overrides, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from almoner.node.server.config import ConfigError, load_config, write_config

PEER = "ab" * 32


def write(home: Path, **extra: object) -> Path:
    values: dict[str, object] = {
        "genesis": "genesis.json",
        "data_dir": "data",
        "listen": "127.0.0.1:9000",
        "peers": {PEER: "http://127.0.0.1:9001"},
        **extra,
    }
    return write_config(home / "node.toml", values)


def test_round_trip_resolves_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    assert config.genesis == (tmp_path / "genesis.json").resolve()
    assert config.data_dir == (tmp_path / "data").resolve()
    assert config.key is None
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.peers == {PEER: "http://127.0.0.1:9001"}
    assert load_config(tmp_path) == config  # a home directory works too


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path)
    monkeypatch.setenv("ALMONER_LISTEN", "0.0.0.0:8000")
    monkeypatch.setenv("ALMONER_PEERS", json.dumps({PEER: "http://platform:8000"}))
    monkeypatch.setenv("ALMONER_MEMPOOL_MAX_TXS", "7")
    config = load_config(tmp_path)
    assert config.listen == "0.0.0.0:8000"
    assert config.peers == {PEER: "http://platform:8000"}
    assert config.mempool_max_txs == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"listen": "nowhere"}, "listen"),
        ({"peers": {"xyz": "http://a"}}, "peer key"),
        ({"peers": {PEER: "ftp://a"}}, "http"),
        ({"tick_ms": 0}, "tick_ms"),
        ({"supervision_rules": "missing.toml"}, "supervision_rules"),
        ({"supervision_period": "week"}, "supervision_period"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        write(tmp_path, **extra)


def test_missing_and_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="node init"):
        load_config(tmp_path / "nope")
    (tmp_path / "node.toml").write_text('genesis = "g.json"\ndata_dir = "d"\nsurprise = 1\n')
    with pytest.raises(ConfigError, match="surprise"):
        load_config(tmp_path)
