"""EASE: an embarrassingly shallow autoencoder (Steck, 2019), in closed form.

EASE learns one item-item weight matrix ``B`` that reconstructs each user's
row of the binary interaction matrix ``X`` from the *other* items of that row:

    min_B ||X - X B||_F^2 + lam ||B||_F^2    subject to    diag(B) = 0.

The constraint stops the trivial answer ``B = I``. With Lagrange multipliers
for the constraint, the solution is

    P = (X^T X + lam I)^{-1},    B = I - P diag(1 / diag(P)),

i.e. ``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal and 0 on it. Scores are
``X[users] B``. One matrix inverse of size ``n_items`` is the whole training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_book.models.base import Recommender


class EASE(Recommender):
    """Closed-form linear item-item autoencoder with a zero diagonal.

    Args:
        l2: the ridge penalty ``lam > 0`` (Steck used a few hundred on
            MovieLens; tune it on a validation split).

    The attributes below are set by ``fit``.

    Attributes:
        B_: ``(n_items, n_items) float32`` item-item weights, zero diagonal.

    Raises:
        ValueError: ``l2`` not a positive finite number.

    Memory and time: ``n_items^2`` floats and one ``O(n_items^3)`` inverse,
    fine to tens of thousands of items.
    """

    def __init__(self, l2: float = 500.0):
        if (
            isinstance(l2, bool)
            or not isinstance(l2, int | float | np.integer | np.floating)
            or not np.isfinite(l2)
            or l2 <= 0
        ):
            raise ValueError(f"l2 (lambda) must be a positive finite number, got {l2!r}.")
        self.l2 = float(l2)

    def _fit(self, train: pd.DataFrame) -> None:
        x = self.seen_.copy()
        x.data[:] = 1.0
        gram = (x.T @ x).toarray().astype(np.float64)  # X^T X, (n_items, n_items)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]  # B[i, j] = -P[i, j] / P[j, j]
        b[np.diag_indices_from(b)] = 0.0
        self.B_ = b.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32`` = ``X[users] B``."""
        x = self.seen_[users]
        x.data[:] = 1.0
        return np.asarray(x @ self.B_, dtype=np.float32)

    def __repr__(self) -> str:
        return f"EASE(l2={self.l2})"
