"""`almoner disclose`: JSON and CSV say the same thing, IATI validates against the
official 2.03 schema, Parquet reads back in DuckDB with exact amounts."""

from __future__ import annotations

import filecmp
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import xmlschema
from click.testing import CliRunner

from almoner.cli.main import cli
from almoner.node.audit.disclose.csv_out import from_csv
from almoner.node.audit.disclose.tables import COLUMNS
from tests.audit.demo_chain import demo, write

XSD_DIR = Path(__file__).resolve().parents[1] / "data" / "iati-2.03"
SHARED_XSD_DIR = Path("/work/shared/testdata/iati-2.03")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write(demo(), tmp_path_factory.mktemp("disclose"))


def disclose(files: tuple[Path, Path], *extra: str) -> bytes:
    archive, genesis = files
    result = CliRunner().invoke(
        cli,
        ["disclose", "--archive", str(archive), "--genesis", str(genesis), "--jobs", "0", *extra],
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def reports(files: tuple[Path, Path], *extra: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(disclose(files, "--format", "json", *extra))
    result: list[dict[str, Any]] = data["reports"]
    return result


def test_json_report_per_charity_and_period(files: tuple[Path, Path]) -> None:
    s = demo()
    found = {(r["charity_name"], r["period"]): r for r in reports(files)}
    water = found[("Clean Water Foundation", "2026-09")]
    assert water["income"] == [
        {
            "platform": s.pub("platform-1").hex(),
            "platform_name": "GiveNow",
            "fund": "general",
            "currency": "USD",
            "count": 1,
            "amount": 100_000,
            "amount_major": "1000.00",
        }
    ]
    assert water["overhead"][0]["overhead_ratio"] == 1.0
    assert water["transfers_out"][0]["to_name"] == "Food Bank Network"
    trust = found[("希望小学 Education Trust", "2026-09")]
    assert {(i["fund"], i["amount"]) for i in trust["income"]} == {
        ("general", 50_000),
        ("books", 20_000),
    }
    assert trust["audit_opinions"][0]["opinion"] == "qualified"
    assert trust["unconfirmed"] == [
        {"currency": "CNY", "count": 2, "amount": 70_000, "amount_major": "700.00"}
    ]
    october = found[("希望小学 Education Trust", "2026-10")]
    assert october["spending"][0]["amount_major"] == "300.00"
    food = found[("Food Bank Network", "2026-10")]
    assert food["refunds"][0]["amount"] == 5_000
    assert found[("Food Bank Network", "2026-10")]["suspensions"][0]["reason"] == "licence revoked"


def test_csv_round_trips_the_json(files: tuple[Path, Path]) -> None:
    rows = from_csv(disclose(files, "--format", "csv"))
    assert rows and list(rows[0]) == list(COLUMNS)
    by_json = reports(files)
    income_json = sorted(
        (r["charity"], r["period"], i["fund"], i["platform"], i["currency"], i["amount"])
        for r in by_json
        for i in r["income"]
    )
    income_csv = sorted(
        (r["charity"], r["period"], r["fund"], r["counterparty"], r["currency"], int(r["amount"]))
        for r in rows
        if r["section"] == "income"
    )
    assert income_csv == income_json
    for row in rows:
        if row["amount"]:
            digits = 2  # USD and CNY
            assert Decimal(row["amount_major"]) == Decimal(int(row["amount"])).scaleb(-digits)
    assert any(r["charity_name"] == "希望小学 Education Trust" for r in rows)


def test_excel_csv_starts_with_a_bom(files: tuple[Path, Path]) -> None:
    plain = disclose(files, "--format", "csv")
    excel = disclose(files, "--format", "csv", "--excel")
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert excel == b"\xef\xbb\xbf" + plain
    assert from_csv(excel) == from_csv(plain)


def test_charity_and_period_filters(files: tuple[Path, Path]) -> None:
    charity = demo().pub("charity-2").hex()
    only = reports(files, "--charity", charity, "--from", "2026-10-01")
    assert [(r["charity"], r["period"]) for r in only] == [(charity, "2026-10")]
    yearly = reports(files, "--period", "year")
    assert {r["period"] for r in yearly} == {"2026"}


def test_iati_validates_against_the_official_schema(files: tuple[Path, Path]) -> None:
    xml = disclose(files, "--format", "iati")
    schema = xmlschema.XMLSchema(str(XSD_DIR / "iati-activities-schema.xsd"))
    schema.validate(xml.decode("utf-8"))
    text = xml.decode("utf-8")
    assert 'version="2.03"' in text
    assert "<iati-identifier>CH-2-books</iati-identifier>" in text
    assert '<transaction-type code="1" />' in text  # donations: incoming funds
    assert '<transaction-type code="3" />' in text  # transfer out: disbursement
    assert '<transaction-type code="4" />' in text  # payments: expenditure
    assert 'currency="CNY"' in text and ">-50.00<" in text  # a refund, negative
    assert 'xml:lang="zh"' in text and "希望小学" in text


def test_iati_of_a_broken_document_does_not_validate(files: tuple[Path, Path]) -> None:
    """The schema check is real: the same file without its required title fails."""
    xml = disclose(files, "--format", "iati").decode("utf-8")
    start = xml.index("<title>")
    broken = xml[:start] + xml[xml.index("</title>") + len("</title>") :]
    schema = xmlschema.XMLSchema(str(XSD_DIR / "iati-activities-schema.xsd"))
    assert not schema.is_valid(broken)


def test_bundled_schemas_equal_the_shared_ones() -> None:
    if not SHARED_XSD_DIR.exists():
        return  # a clone without the shared folder: the bundled copy is all there is
    for path in SHARED_XSD_DIR.glob("*.xsd"):
        assert filecmp.cmp(path, XSD_DIR / path.name, shallow=False), path.name


def test_parquet_reads_back_in_duckdb(files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "disclosure.parquet"
    disclose(files, "--format", "parquet", "--out", str(out))
    con = duckdb.connect()
    rows = con.execute(
        "SELECT charity_name, period, sum(amount), sum(amount_major) FROM read_parquet(?) "
        "WHERE section = 'income' GROUP BY ALL ORDER BY ALL",
        [str(out)],
    ).fetchall()
    assert ("希望小学 Education Trust", "2026-09", 70_000, Decimal("700.0000")) in rows
    assert ("Clean Water Foundation", "2026-09", 100_000, Decimal("1000.0000")) in rows
    ratio = con.execute(
        "SELECT ratio FROM read_parquet(?) WHERE section = 'overhead' "
        "AND charity_name = 'Clean Water Foundation'",
        [str(out)],
    ).fetchall()
    assert ratio == [(1.0,)]


def test_usage_errors(files: tuple[Path, Path]) -> None:
    archive, genesis = files
    runner = CliRunner()
    base = ["disclose", "--archive", str(archive), "--genesis", str(genesis)]
    result = runner.invoke(cli, [*base, "--format", "parquet"])
    assert result.exit_code == 2 and "needs --out" in result.stderr
    result = runner.invoke(cli, [*base, "--charity", "zz"])
    assert result.exit_code == 2 and "64-hex" in result.stderr
    result = runner.invoke(cli, [*base, "--format", "iati", "--from", "2030-01-01"])
    assert result.exit_code == 2 and "nothing to disclose" in result.stderr


def test_missing_extra_is_a_clear_error(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow/scikit-learn installed (an import that fails), exit 2 naming the
    extra to install."""
    archive, genesis = files
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    runner = CliRunner()
    base = ["--archive", str(archive), "--genesis", str(genesis), "--jobs", "0"]
    out = str(tmp_path / "x.parquet")
    result = runner.invoke(cli, ["disclose", *base, "--format", "parquet", "--out", out])
    assert result.exit_code == 2 and "almoner[analytics]" in result.stderr
    result = runner.invoke(cli, ["supervise", *base, "--scorer", "isolation-forest"])
    assert result.exit_code == 2 and "almoner[analytics]" in result.stderr
