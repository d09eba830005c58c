"""`almoner keygen` and `almoner genesis` through the real console entry point."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from almoner.node.chain.genesis import load_genesis
from almoner.node.chain.keys import load_key_file


def almoner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "almoner.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_keygen_and_genesis(tmp_path: Path) -> None:
    keys = {}
    for name in ("v0", "v1", "reg"):
        out = almoner("keygen", "--out", str(tmp_path / f"{name}.key"))
        assert out.returncode == 0, out.stderr
        keys[name] = out.stdout.strip()
        assert len(keys[name]) == 64
        assert stat.S_IMODE((tmp_path / f"{name}.key").stat().st_mode) == 0o600
    result = almoner(
        "genesis",
        "--chain-id", "test-chain",
        "--validator", f"v0={keys['v0']}",
        "--validator", f"v1={keys['v1']}",
        "--party", f"regulator:Regulator: Office of Charities:R-1:{keys['reg']}",
        "--genesis-time", "1700000000000",
        "--out", str(tmp_path / "genesis.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    genesis = load_genesis(tmp_path / "genesis.json")
    assert result.stdout.strip() == genesis.hash.hex()
    assert [v.name for v in genesis.validators] == ["v0", "v1"]
    assert genesis.parties[0].name == "Regulator: Office of Charities"
    assert genesis.parties[0].org_id == "R-1"


def test_keygen_encrypted_via_env(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    out = almoner(
        "keygen", "--out", str(path), "--passphrase-env", "PW", "--json", env={"PW": "s3cret"}
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["encrypted"] is True
    assert load_key_file(path, "s3cret").public_key.hex() == info["public_key"]


def test_errors_are_one_sentence_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    assert almoner("keygen", "--out", str(path)).returncode == 0
    again = almoner("keygen", "--out", str(path))
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    bad = almoner(
        "genesis", "--chain-id", "c", "--validator", "v0=zz", "--out", str(tmp_path / "g.json")
    )
    assert bad.returncode == 2 and "hex" in bad.stderr and "Traceback" not in bad.stderr
    missing_env = almoner(
        "keygen", "--out", str(tmp_path / "x.key"), "--passphrase-env", "NOPE_NOT_SET"
    )
    assert missing_env.returncode == 2 and "NOPE_NOT_SET" in missing_env.stderr


def test_help_everywhere() -> None:
    for args in ((), ("keygen",), ("genesis",)):
        out = almoner(*args, "--help")
        assert out.returncode == 0 and "Usage" in out.stdout
