"""Shared fixtures: the real survey files beside the project, tiny models."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path to ``../shared/data``; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real SDSS/MaNGA test files not found at {SHARED_DATA} "
            "(they live beside the project checkout, not in it)"
        )
    return SHARED_DATA
