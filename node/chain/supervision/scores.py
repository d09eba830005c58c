"""Anomaly scores per charity and period, with the features that drive each one.

Default (`robust`): per feature, the distance of a value above the median of all rows in
units of the median absolute deviation (scaled to a standard deviation, 1.4826·MAD) —
a robust z-score that a few extreme charities cannot drag, needing nothing beyond the
standard library. A row's score is its largest z; its drivers are the features with
z ≥ 2 (at least the top one), largest first.

`isolation-forest` (extra `almoner[analytics]`): scikit-learn's IsolationForest over the
same robustly scaled features; the score is its anomaly score (higher = more unusual),
and the drivers are still the robust z's, since a forest cannot say why.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from almoner.node.chain.supervision.features import FEATURES, FeatureRow
from almoner.node.errors import AlmonerError

SCORERS = ("robust", "isolation-forest")
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
DRIVER_Z = 2.0


class MissingExtra(AlmonerError):
    """An optional dependency is not installed."""


@dataclass(frozen=True)
class Score:
    charity: bytes
    period: str
    start: int
    end: int
    score: float
    drivers: list[dict[str, Any]]
    method: str

    def to_json(self) -> dict[str, Any]:
        return {
            "party": self.charity.hex(),
            "period": self.period,
            "score": self.score,
            "drivers": self.drivers,
            "method": self.method,
        }


def _scale(values: list[float], center: float) -> float:
    mad = statistics.median(abs(v - center) for v in values)
    if mad > 0:
        return MAD_TO_SD * mad
    mean_ad = statistics.fmean(abs(v - center) for v in values)
    return MEAN_AD_TO_SD * mean_ad


def robust_z(rows: list[FeatureRow]) -> list[dict[str, tuple[float, float, float]]]:
    """Per row, feature -> (value, median, z above the median)."""
    stats = {}
    for name in FEATURES:
        values = [row.values[name] for row in rows]
        center = statistics.median(values)
        stats[name] = (center, _scale(values, center))
    result = []
    for row in rows:
        zs = {}
        for name in FEATURES:
            center, scale = stats[name]
            value = row.values[name]
            z = (value - center) / scale if scale > 0 else 0.0
            zs[name] = (value, center, max(0.0, z))
        result.append(zs)
    return result


def _drivers(zs: dict[str, tuple[float, float, float]]) -> list[dict[str, Any]]:
    ranked = sorted(zs.items(), key=lambda item: -item[1][2])
    chosen = [item for item in ranked if item[1][2] >= DRIVER_Z] or ranked[:1]
    return [
        {"feature": name, "value": value, "median": round(center, 4), "z": round(z, 2)}
        for name, (value, center, z) in chosen
        if z > 0
    ]


def _forest(rows: list[FeatureRow], zs: list[dict[str, tuple[float, float, float]]]) -> list[float]:
    try:
        from sklearn.ensemble import IsolationForest
    except ImportError as exc:
        raise MissingExtra(
            "the isolation-forest scorer needs scikit-learn: pip install 'almoner[analytics]'"
        ) from exc
    matrix = [[z[name][2] for name in FEATURES] for z in zs]
    forest = IsolationForest(n_estimators=200, random_state=0).fit(matrix)
    return [float(-s) for s in forest.score_samples(matrix)]


def score_rows(rows: list[FeatureRow], method: str = "robust") -> list[Score]:
    if method not in SCORERS:
        raise AlmonerError(f"unknown scorer {method!r}; scorers: {', '.join(SCORERS)}")
    if not rows:
        return []
    zs = robust_z(rows)
    if method == "robust":
        values = [max(z[2] for z in row.values()) for row in zs]
    else:
        values = _forest(rows, zs)
    return [
        Score(row.charity, row.period, row.start, row.end, round(value, 4), _drivers(z), method)
        for row, z, value in zip(rows, zs, values, strict=True)
    ]
