"""Suite-wide settings: hypothesis profiles (HYPOTHESIS_PROFILE=ci in CI via .ci/run; `default` locally).

`ci` runs each fuzz test in tests/unit/test_fuzz.py for 1,500 examples (≥ 10,000 in total);
`default` runs 150 each, enough to catch a regression in a local `make test`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
           "print_blob": True}
settings.register_profile("ci", max_examples=1500, **_COMMON)
settings.register_profile("default", max_examples=150, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
