"""`almoner supervise` end to end on an archive: JSON shape, proofs that verify, the
period filter, thresholds files, --fail-on exit codes, an invalid chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from almoner.cli.main import cli
from almoner.node.audit.archive import ArchiveWriter
from almoner.node.chain.merkle import verify_inclusion
from tests.audit.demo_chain import demo, write


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write(demo(), tmp_path_factory.mktemp("supervise"))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def supervise_json(files: tuple[Path, Path], *extra: str) -> dict[str, Any]:
    archive, genesis = files
    code, out, err = run(
        "supervise",
        "--archive",
        str(archive),
        "--genesis",
        str(genesis),
        "--jobs",
        "0",
        "--json",
        *extra,
    )
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_json_report_names_every_documented_key(files: tuple[Path, Path]) -> None:
    data = supervise_json(files)
    assert data["ok"] is True
    rules = {s["rule"] for s in data["signals"]}
    assert {"overhead_above_limit", "circular_flow", "audit_opinion"} <= rules
    for signal in data["signals"]:
        assert set(signal) >= {"rule", "severity", "party", "period", "txs", "explanation"}
        assert len(signal["party"]) == 64
        assert set(signal["explanation"]) == {"en", "zh"}
        for tx in signal["txs"]:
            assert len(tx["tx_id"]) == 64 and tx["height"] >= 1
    opinion = next(
        s
        for s in data["signals"]
        if s["rule"] == "audit_opinion" and s["details"]["kind"] == "opinion"
    )
    assert "票据不全" in opinion["explanation"]["zh"]
    assert data["counts"] == {
        rule: sum(1 for s in data["signals"] if s["rule"] == rule) for rule in data["counts"]
    }
    for score in data["scores"]:
        assert set(score) >= {"party", "period", "score", "drivers"}
    assert {s["period"] for s in data["scores"]} == {"2026-09", "2026-10"}


def test_proofs_verify_against_the_verified_head(files: tuple[Path, Path]) -> None:
    data = supervise_json(files, "--proofs")
    root = bytes.fromhex(data["head"]["log_root"])
    checked = 0
    for signal in data["signals"]:
        for tx in signal["txs"]:
            proof = tx["proof"]
            path = [bytes.fromhex(p) for p in proof["path"]]
            assert proof["tree_size"] == data["head"]["log_size"]
            assert verify_inclusion(
                bytes.fromhex(tx["tx_id"]), tx["leaf_index"], proof["tree_size"], path, root
            )
            assert not verify_inclusion(bytes(32), tx["leaf_index"], proof["tree_size"], path, root)
            checked += 1
    assert checked >= 4


def test_from_to_filters_by_block_time(files: tuple[Path, Path]) -> None:
    october = supervise_json(files, "--from", "2026-10-01", "--to", "2026-11-01")
    assert october["signals"] and {s["period"] for s in october["signals"]} == {"2026-10"}
    assert {s["period"] for s in october["scores"]} == {"2026-10"}
    september = supervise_json(files, "--to", "2026-10-01")
    assert {s["period"] for s in september["signals"]} == {"2026-09"}
    assert october["window"] == {
        "from": "2026-10-01T00:00:00.000Z",
        "to": "2026-11-01T00:00:00.000Z",
        "period": "month",
    }


def test_thresholds_file_changes_a_rule(files: tuple[Path, Path], tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[overhead_above_limit]\nlimit = 1.0\n\n[circular_flow]\nenabled = false\n")
    data = supervise_json(files, "--rules", str(rules))
    assert not {"overhead_above_limit", "circular_flow"} & {s["rule"] for s in data["signals"]}
    assert data["thresholds"]["overhead_above_limit"]["limit"] == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[no_such_rule]\n", "unknown rule [no_such_rule]"),
        ("[quick_refund]\ndayz = 3\n", "has no setting 'dayz'"),
        ("[quick_refund]\ndays = 'soon'\n", "[quick_refund] days must be a number"),
        ("[overhead_above_limit]\nlimit = 10\n", "must be between 0 and 1"),
        ("[audit_opinion]\nadverse = 'fatal'\n", "must be one of info, warning, high"),
        ("not toml [", "is not valid TOML"),
    ],
)
def test_bad_thresholds_file_exits_2(
    files: tuple[Path, Path], tmp_path: Path, content: str, message: str
) -> None:
    archive, genesis = files
    rules = tmp_path / "rules.toml"
    rules.write_text(content)
    code, _, err = run(
        "supervise", "--archive", str(archive), "--genesis", str(genesis), "--rules", str(rules)
    )
    assert code == 2 and message in err


def test_fail_on_exit_codes(files: tuple[Path, Path]) -> None:
    archive, genesis = files
    base = ["supervise", "--archive", str(archive), "--genesis", str(genesis), "--jobs", "0"]
    assert run(*base)[0] == 0  # signals, but no --fail-on
    assert run(*base, "--fail-on", "high")[0] == 1  # circular_flow is high
    assert run(*base, "--fail-on", "info")[0] == 1
    quiet = ["--from", "2026-12-01"]  # nothing happened after November
    assert run(*base, *quiet, "--fail-on", "info")[0] == 0


def test_text_report_in_both_languages(files: tuple[Path, Path]) -> None:
    archive, genesis = files
    code, out, _ = run("supervise", "--archive", str(archive), "--genesis", str(genesis))
    assert code == 0
    assert "[HIGH] circular_flow" in out and "回流" in out and "came back" in out
    code, out, _ = run(
        "supervise", "--archive", str(archive), "--genesis", str(genesis), "--lang", "zh"
    )
    assert "回流" in out and "came back" not in out


def test_invalid_chain_exits_3_with_no_signals(tmp_path: Path) -> None:
    s = demo()
    _, genesis = write(s, tmp_path)
    items = s.items()
    cut = tmp_path / "cut.almoner"
    writer = ArchiveWriter(cut, s.genesis, head={"height": 9, "log_size": 0}, source="t")
    for raw in items[:2] + items[3:]:  # a block is missing
        writer.add(raw)
    writer.close()
    code, out, _ = run("supervise", "--archive", str(cut), "--genesis", str(genesis), "--json")
    assert code == 3
    data = json.loads(out)
    assert data["ok"] is False and data["signals"] == [] and data["violation"]["height"] == 3


def test_usage_errors_exit_2(files: tuple[Path, Path]) -> None:
    archive, genesis = files
    assert run("supervise", "--genesis", str(genesis))[0] == 2
    code, _, err = run(
        "supervise", "--archive", str(archive), "--genesis", str(genesis), "--from", "yesterday"
    )
    assert code == 2 and "is not a date" in err
    code, _, err = run(
        "supervise",
        "--archive",
        str(archive),
        "--genesis",
        str(genesis),
        "--from",
        "2026-10-02",
        "--to",
        "2026-10-01",
    )
    assert code == 2 and "--to must be after --from" in err


def test_isolation_forest_scorer(files: tuple[Path, Path]) -> None:
    data = supervise_json(files, "--scorer", "isolation-forest")
    assert data["scores"] and {s["method"] for s in data["scores"]} == {"isolation-forest"}
