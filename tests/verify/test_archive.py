"""Archives: round trip, offline verify through the CLI, wrong genesis, truncation, and the
parallel signature pipeline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from almoner.cli.main import cli
from almoner.cli.verify_cmd import ProgressBar
from almoner.node.audit.archive import ArchiveError, ArchiveReader, ArchiveWriter
from almoner.node.audit.verify import Progress, verify_chain
from almoner.node.chain.genesis import dump_genesis
from almoner.node.chain.store import LevelStore
from tests.localchain import LocalChain, Workload, local_genesis
from tests.verify.story import Pair, Story, items, story


@pytest.fixture(scope="module")
def s() -> Story:
    return story()


def write_archive(path: Path, s: Story, pairs: list[Pair] | None = None) -> Path:
    writer = ArchiveWriter(path, s.genesis, head={"height": 6, "log_size": 0}, source="test")
    for raw in items(s.pairs() if pairs is None else pairs):
        writer.add(raw)
    return writer.close()


@pytest.fixture
def archive(tmp_path: Path, s: Story) -> Path:
    return write_archive(tmp_path / "chain.almoner", s)


@pytest.fixture
def genesis_file(tmp_path: Path, s: Story) -> Path:
    path = tmp_path / "genesis.json"
    dump_genesis(s.genesis, path)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_round_trip_gives_back_the_same_bytes(archive: Path, s: Story) -> None:
    reader = ArchiveReader(archive)
    assert reader.genesis == s.genesis
    assert reader.head_height == 6
    assert list(reader.items()) == items(s.pairs())
    assert not Path(str(archive) + ".part").exists()


def test_verify_archive_cli_reports_the_chain(archive: Path, genesis_file: Path) -> None:
    code, out, err = run(
        "verify", "--archive", str(archive), "--genesis", str(genesis_file), "--jobs", "2", "--json"
    )
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["ok"] is True and report["violation"] is None
    assert set(report["head"]) == {"height", "block_hash", "log_size", "log_root"}
    assert report["head"]["height"] == 6
    assert report["tx_types"]["donation.record"] >= 6
    charity_2 = story().keys["charity-2"].public_key.hex()
    assert report["overhead"][charity_2]["USD"]["program"] >= 5_000
    assert any(f["fund"] == "general" for f in report["balances"][charity_2])


def test_verify_archive_human_output(archive: Path, genesis_file: Path) -> None:
    code, out, _ = run("verify", "--archive", str(archive), "--genesis", str(genesis_file))
    assert code == 0
    assert out.startswith("VALID")
    assert "Overhead" in out or "overhead" in out


def test_pinning_the_genesis_hash_is_enough_for_an_archive(archive: Path, s: Story) -> None:
    code, out, _ = run(
        "verify",
        "--archive",
        str(archive),
        "--genesis",
        s.genesis.hash.hex(),
        "--json",
        "--jobs",
        "0",
    )
    assert code == 0 and json.loads(out)["ok"] is True


def test_tampered_archive_exits_1_naming_the_violation(
    tmp_path: Path, s: Story, genesis_file: Path
) -> None:
    pairs = s.pairs()
    pairs[3][0]["txs"][5]["body"]["amount"] += 100
    path = write_archive(tmp_path / "bad.almoner", s, pairs)
    code, out, _ = run(
        "verify", "--archive", str(path), "--genesis", str(genesis_file), "--json", "--jobs", "2"
    )
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["violation"]["height"] == 4
    assert report["violation"]["tx_index"] == 5
    assert report["violation"]["rule"] == "bad_signature"
    assert report["head"]["height"] == 3


def test_wrong_genesis_is_reported_at_height_0(tmp_path: Path, s: Story) -> None:
    other, keys = local_genesis(extra_parties=[("charity-9", "charity")])
    chain = LocalChain(other, keys.validators)
    chain.add_block(Workload(other, keys).opening())
    writer = ArchiveWriter(tmp_path / "other.almoner", other)
    for raw in items(list(chain.blocks())):
        writer.add(raw)
    path = writer.close()
    pinned = tmp_path / "genesis.json"
    dump_genesis(s.genesis, pinned)
    for genesis_arg in (str(pinned), s.genesis.hash.hex()):
        code, out, _ = run("verify", "--archive", str(path), "--genesis", genesis_arg, "--json")
        assert code == 1
        report = json.loads(out)
        assert report["head"] is None
        assert report["violation"]["height"] == 0
        assert report["violation"]["rule"] == "wrong_genesis"


def test_truncated_archive_is_truncated(tmp_path: Path, archive: Path, genesis_file: Path) -> None:
    data = archive.read_bytes()
    cut = tmp_path / "cut.almoner"
    cut.write_bytes(data[: len(data) * 2 // 3])
    code, out, _ = run("verify", "--archive", str(cut), "--genesis", str(genesis_file), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["violation"]["rule"] == "truncated"
    passed = report["head"]["height"] if report["head"] else 0
    assert report["violation"]["height"] == passed + 1
    assert passed < 6


def test_archive_without_its_trailer_is_truncated(tmp_path: Path, archive: Path, s: Story) -> None:
    raw = gzip.decompress(archive.read_bytes())
    trailer_at = raw.rindex(b"E\x00\x00\x00")
    cut = tmp_path / "no-trailer.almoner"
    cut.write_bytes(gzip.compress(raw[:trailer_at]))
    report = verify_chain(s.genesis, ArchiveReader(cut).items())
    assert report.violation is not None
    assert (report.violation.height, report.violation.rule) == (7, "truncated")
    assert report.head is not None and report.head["height"] == 6


def test_not_an_archive_is_an_io_error(tmp_path: Path, genesis_file: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello")
    with pytest.raises(ArchiveError):
        ArchiveReader(junk)
    code, out, err = run("verify", "--archive", str(junk), "--genesis", str(genesis_file))
    assert code == 2 and out == ""
    assert err.startswith("almoner: ") and "Traceback" not in err
    code, _, err = run(
        "verify", "--archive", str(tmp_path / "missing"), "--genesis", str(genesis_file)
    )
    assert code == 2 and "Traceback" not in err


def test_usage_errors_exit_2(archive: Path, genesis_file: Path) -> None:
    assert run("verify", "--genesis", str(genesis_file))[0] == 2
    code, _, err = run(
        "verify",
        "--archive",
        str(archive),
        "--node",
        "http://127.0.0.1:9",
        "--genesis",
        str(genesis_file),
    )
    assert code == 2 and "exactly one" in err
    assert run("verify", "--archive", str(archive), "--genesis", "nonsense")[0] == 2


def test_parallel_pipeline_reports_the_same_first_bad_signature(s: Story) -> None:
    pairs = s.pairs()
    pairs[4][0]["txs"][30]["body"]["purpose"] = "rewritten"
    pairs[4][0]["txs"][31]["sig"] = bytes(64)
    for jobs in (0, 1, 2):
        report = verify_chain(s.genesis, items(pairs), jobs=jobs)
        assert report.violation is not None
        v = report.violation
        assert (v.height, v.tx_index, v.rule) == (5, 30, "bad_signature"), jobs


def test_replay_into_leveldb(tmp_path: Path, s: Story) -> None:
    report = verify_chain(s.genesis, items(s.pairs()), store=LevelStore(tmp_path / "db"), jobs=2)
    assert report.ok and report.head is not None and report.head["height"] == 6


def test_progress_bar_only_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    piped = ProgressBar(total_blocks=10, total_txs=1000)
    assert piped.enabled is False  # pytest's stderr is not a terminal
    piped.update(Progress(blocks=5, txs=500, height=5, elapsed=1.0))
    piped.close()
    assert capsys.readouterr().err == ""
    bar = ProgressBar(total_blocks=10, total_txs=1000)
    bar.enabled = True
    bar.update(Progress(blocks=5, txs=500, height=5, elapsed=2.0))
    bar.close()
    line = capsys.readouterr().err
    assert "50.0%" in line and "blocks 5/10" in line and "txs 500" in line
    assert "250 tx/s" in line and "ETA 0:00:02" in line
