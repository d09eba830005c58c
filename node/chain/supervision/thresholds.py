"""Rule thresholds: documented defaults, overridden per rule from a TOML file.

    [overhead_above_limit]
    limit = 0.25          # a share, 0..1
    severity = "high"

    [quick_refund]
    enabled = false

Unknown rules, unknown keys and values of the wrong type are errors (a typo must not
silently fall back to a default a regulator did not choose).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from almoner.node.chain.supervision.model import SEVERITIES
from almoner.node.errors import AlmonerError

# rule -> key -> default. Amounts are minor units of whatever currency the tx uses.
DEFAULTS: dict[str, dict[str, Any]] = {
    "unconfirmed_donation": {"severity": "warning", "days": 30.0},
    "spent_before_confirmation": {"severity": "high"},
    "idle_restricted_funds": {"severity": "warning", "days": 180.0, "min_balance": 1},
    "overhead_above_limit": {"severity": "warning", "limit": 0.10, "min_spending": 1},
    "disbursement_without_evidence": {"severity": "warning", "min_amount": 100_000},
    "circular_flow": {"severity": "high", "days": 30.0, "max_hops": 4, "min_amount": 1},
    "quick_refund": {"severity": "warning", "days": 7.0, "min_share": 0.5},
    "donation_splitting": {
        "severity": "warning",
        "hours": 24.0,
        "min_count": 5,
        "max_amount": 10_000,
    },
    "payee_concentration": {
        "severity": "info",
        "share": 0.8,
        "min_disbursements": 5,
        "min_spending": 1,
    },
    "audit_opinion": {
        "severity": "warning",
        "qualified": "warning",
        "adverse": "high",
        "disclaimer": "high",
        "suspension": "high",
    },
}

_SEVERITY_KEYS = {"severity", "qualified", "adverse", "disclaimer", "suspension"}
_SHARE_KEYS = {"limit", "share", "min_share"}


class ThresholdError(AlmonerError):
    """A thresholds file that cannot be used as written."""


def _check(rule: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{rule}] {key}"
    if key in _SEVERITY_KEYS:
        if value not in SEVERITIES:
            raise ThresholdError(f"{where} must be one of {', '.join(SEVERITIES)}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ThresholdError(f"{where} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ThresholdError(f"{where} must be a number")
    if isinstance(default, int) and not isinstance(value, int):
        raise ThresholdError(f"{where} must be a whole number")
    if value < 0:
        raise ThresholdError(f"{where} must not be negative")
    if key in _SHARE_KEYS and value > 1:
        raise ThresholdError(f"{where} is a share and must be between 0 and 1")
    return float(value) if isinstance(default, float) else value


def resolve(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Defaults with `overrides` ({rule: {key: value}}) applied and checked."""
    result = {rule: {"enabled": True, **values} for rule, values in DEFAULTS.items()}
    for rule, table in overrides.items():
        if rule not in DEFAULTS:
            raise ThresholdError(f"unknown rule [{rule}]; rules: {', '.join(DEFAULTS)}")
        if not isinstance(table, dict):
            raise ThresholdError(f"[{rule}] must be a table")
        for key, value in table.items():
            if key not in result[rule]:
                known = ", ".join(result[rule])
                raise ThresholdError(f"[{rule}] has no setting {key!r}; settings: {known}")
            result[rule][key] = _check(rule, key, value, result[rule][key])
    return result


def load(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return resolve({})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThresholdError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThresholdError(f"{path} is not valid TOML: {exc}") from exc
    return resolve(data)
