"""Suite-wide settings: hypothesis profiles (HYPOTHESIS_PROFILE=ci in CI via .ci/run; `default` locally),
and the skip policy (below).

`ci` runs each fuzz test in tests/unit/test_fuzz.py for 1,500 examples (≥ 10,000 in total);
`default` runs 150 each, enough to catch a regression in a local `make test`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
           "print_blob": True}
settings.register_profile("ci", max_examples=1500, **_COMMON)
settings.register_profile("default", max_examples=150, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# -- the skip policy -------------------------------------------------------------------------------------
# The normal run (`make test`: unit tests and the e2e suite on the local sandbox) never skips: a test
# that skips there is reported as a failure with its reason. Only the e2e suite's external mode
# (GRIDSHIM_E2E_KUBECONFIG, tests/e2e/external.py) skips, each test with its marker's reason.
EXTERNAL_MODE = bool(os.environ.get("GRIDSHIM_E2E_KUBECONFIG"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if EXTERNAL_MODE or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{item.nodeid} skipped in the normal run ({reason}); nothing may skip here: "
                       "only the e2e suite's external mode skips (tests/conftest.py, docs/testing.md)")
