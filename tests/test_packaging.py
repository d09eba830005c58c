"""The wheel a platform installs: one top-level name, no test-only code, a working CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def tracked_copy(dest: Path) -> Path:
    """The files git tracks, copied with their links: what a clean clone would build.

    Building in the checkout itself would leave a build/ folder there, whose stale copies
    of removed modules setuptools then packs into every later wheel.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = REPO / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.exists():
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tracked_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("almoner-*.whl")
    return built


def test_the_wheel_has_one_top_level_name_and_no_test_code(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = next(n for n in names if n.endswith("top_level.txt"))
        assert archive.read(top_level).decode().split() == ["almoner"]
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"almoner"}
    assert "almoner/node/chain/ledger.py" in names
    assert "almoner/consensus/machine.py" in names
    assert "almoner/node/py.typed" in names
    for shipped in ("templates/track.html", "static/verify.js", "static/explorer.css"):
        assert f"almoner/node/server/explorer/{shipped}" in names  # the explorer's own files
    assert not [n for n in names if "testing" in n or "localchain" in n or "/tests/" in n]


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    cli = subprocess.run(
        [env_dir / "bin" / "almoner", "--help"], check=True, capture_output=True, text=True
    )
    assert "verify" in cli.stdout
    probe = subprocess.run(
        [python, "-c", "from almoner.node.audit.client import Client; print(Client.__name__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "Client"
