"""The long table as CSV: UTF-8, one header row, RFC 4180 quoting.

Excel opens UTF-8 CSV correctly only when the file starts with a byte order mark, which
other tools may not expect; `bom=True` (`--excel`) writes one.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from almoner.node.audit.disclose.tables import COLUMNS


def to_csv(rows: list[dict[str, Any]], *, bom: bool = False) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return text.getvalue().encode("utf-8-sig" if bom else "utf-8")


def from_csv(data: bytes) -> list[dict[str, str]]:
    """Read back what `to_csv` wrote (with or without a BOM), every value as text."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
