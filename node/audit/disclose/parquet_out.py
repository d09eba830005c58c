"""The long table as Parquet (extra `almoner[analytics]`), for DuckDB, Spark or pandas.

Typed columns: counts and minor-unit amounts as int64, `amount_major` as an exact
decimal(38, 4) (ISO 4217 has no currency with more than 4 minor digits), the ratio as
double; the rest as UTF-8 strings.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from almoner.node.audit.disclose.tables import COLUMNS
from almoner.node.chain.supervision.scores import MissingExtra

INTS = ("count", "amount")


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingExtra(
            "Parquet output needs pyarrow: pip install 'almoner[analytics]'"
        ) from exc
    fields = []
    arrays = []
    for name in COLUMNS:
        values = [row[name] for row in rows]
        if name in INTS:
            kind = pa.int64()
            values = [None if v == "" else int(v) for v in values]
        elif name == "amount_major":
            kind = pa.decimal128(38, 4)
            values = [None if v == "" else Decimal(v) for v in values]
        elif name == "ratio":
            kind = pa.float64()
            values = [None if v in ("", None) else float(v) for v in values]
        else:
            kind = pa.string()
            values = ["" if v is None else str(v) for v in values]
        fields.append(pa.field(name, kind))
        arrays.append(pa.array(values, type=kind))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    pq.write_table(table, path, compression="zstd")
