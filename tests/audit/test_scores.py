"""Anomaly scores: the outlier ranks first and is explained by the feature that makes it
one; the scikit-learn scorer agrees; a missing extra is a clear error."""

from __future__ import annotations

import random

import pytest

from almoner.node.chain.supervision.features import FEATURES, FeatureRow
from almoner.node.chain.supervision.scores import score_rows
from almoner.node.errors import AlmonerError
from tests.audit.scenario import DAY, Scenario


def rows_with_outlier() -> list[FeatureRow]:
    rng = random.Random(3)
    rows = []
    for i in range(40):
        values = {name: round(rng.uniform(0.05, 0.15), 4) for name in FEATURES}
        if i == 17:
            values["overhead_ratio"] = 0.9
        rows.append(FeatureRow(bytes([i]) * 32, "2026-09", 0, 1, values))
    return rows


@pytest.mark.parametrize("method", ["robust", "isolation-forest"])
def test_the_outlier_scores_highest(method: str) -> None:
    scores = score_rows(rows_with_outlier(), method)
    top = max(scores, key=lambda s: s.score)
    assert top.charity == bytes([17]) * 32
    assert top.drivers[0]["feature"] == "overhead_ratio"
    assert top.drivers[0]["value"] == 0.9 and top.drivers[0]["z"] > 10
    assert top.method == method


def test_identical_rows_score_zero() -> None:
    rows = [FeatureRow(bytes([i]) * 32, "p", 0, 1, dict.fromkeys(FEATURES, 0.1)) for i in range(5)]
    assert {s.score for s in score_rows(rows)} == {0.0}
    assert all(s.drivers == [] for s in score_rows(rows))


def test_unknown_scorer_is_an_error() -> None:
    with pytest.raises(AlmonerError, match="unknown scorer"):
        score_rows(rows_with_outlier(), "magic")


def test_features_from_a_chain() -> None:
    s = Scenario()
    s.at(1, *s.w.opening())
    s.at(DAY, s.donate("charity-1", 10_000, "a"), s.donate("charity-2", 10_000, "b"))
    s.at(
        DAY * 3,
        s.w.confirm("platform-1", "a", "charity-1"),
        s.disburse("charity-1", 2_000, category="admin"),
        s.disburse("charity-1", 2_000, payee="X"),
        s.refund("charity-2", "platform-1", "b", 5_000),
    )
    report = s.supervise()
    rows = {(r.charity, r.period): r.values for r in report.features}
    one = rows[(s.pub("charity-1"), "2026-09")]
    assert one["overhead_ratio"] == 0.5
    assert one["payee_concentration"] == 0.5
    assert one["confirmation_delay"] == 2.0  # days
    assert one["spending_velocity"] == 0.4
    assert one["idle_share"] == 0.0  # the general fund was drawn from
    two = rows[(s.pub("charity-2"), "2026-09")]
    assert two["refund_rate"] == 0.5
    assert two["idle_share"] == 0.0  # a refund takes from the fund too
    s.at(DAY * 4, s.donate("charity-3", 10_000, "c", campaign=None))
    report = s.supervise()
    rows = {(r.charity, r.period): r.values for r in report.features}
    assert rows[(s.pub("charity-3"), "2026-09")]["idle_share"] == 1.0
