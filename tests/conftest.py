"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys_book.runtime import import_keras

keras = import_keras()  # once, quietly, before any test imports Keras
if keras.backend.backend() == "jax":
    # On a GPU, JAX multiplies float32 matrices in TF32 by default (about three
    # significant digits); the tests compare two computations of the same quantity to
    # 1e-6, as on a CPU. On an H200, two of them failed that way under the default
    # (tests/test_models_sequential.py::test_left_padding_is_ignored and
    # tests/test_two_tower.py::test_score_and_recommend_shapes).
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The verified MovieLens copies named by RECSYS_BOOK_DATA (CI: ../shared/data)."""
    path = os.environ.get("RECSYS_BOOK_DATA")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("CI must set RECSYS_BOOK_DATA to the verified data copies (see .ci/run).")
        pytest.skip("RECSYS_BOOK_DATA is not set; real-data tests need it.")
    return Path(path)
