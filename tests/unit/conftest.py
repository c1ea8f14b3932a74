"""Unit-tier fixtures: the documents captured from a real oned 7.5."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "opennebula-7.5"    # tests/fixtures/opennebula-7.5


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"The captured OpenNebula documents are missing: {FIXTURES}")
    return FIXTURES
