"""Shared test configuration.

Two host CPU devices so sharding code paths run in CI, and a deterministic
Hypothesis profile (DESIGN.md, tests).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "deterministic",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("PYIMGANO_HYPOTHESIS_EXAMPLES", "50")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("deterministic")
