"""Test-wide settings: hypothesis runs derandomized, so CI never draws fresh seeds."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "almoner",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("almoner")
