"""Shared test fixtures: the ../shared data folder (tests needing it skip when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SELFDESC_SHARED", REPO.parent / "shared")) / "data"


def shared_path(relative: str) -> Path:
    """A path under ../shared/data; skips the calling test when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {path}")
    return path


@pytest.fixture
def graf_root() -> Path:
    """HPatches-layout folder holding v_graffiti."""
    return shared_path("eval/hpatches-graf")


@pytest.fixture
def weights_dir() -> Path:
    return shared_path("weights")


@pytest.fixture
def synth_base() -> Path:
    return shared_path("eval/synth-base")
