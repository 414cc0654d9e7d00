"""The unit tests' kit, importable from tests/unit and tests/e2e (tests/ is on sys.path through
tests/conftest.py): the one fake API server, the one golden-file check, the one fixture loader.

    from kit import FakeApi, golden, fixture

E2E tests against the real sandbox stay the evidence that a feature works; the kit makes unit tests cheap.
"""

from kit.api import Call, FakeApi, field_match, label_match, merge_patch
from kit.fixtures import FIXTURES, fixture, fixture_names
from kit.golden import GOLDEN, golden, golden_text
from kit.grid import GridApi

__all__ = ["Call", "FakeApi", "FIXTURES", "GOLDEN", "field_match", "fixture", "fixture_names", "golden",
           "golden_text", "GridApi", "label_match", "merge_patch"]
