"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys_book.runtime import import_keras

import_keras()  # once, quietly, before any test imports Keras


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The verified MovieLens copies named by RECSYS_BOOK_DATA (CI: ../shared/data)."""
    path = os.environ.get("RECSYS_BOOK_DATA")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("CI must set RECSYS_BOOK_DATA to the verified data copies (see .ci/run).")
        pytest.skip("RECSYS_BOOK_DATA is not set; real-data tests need it.")
    return Path(path)
