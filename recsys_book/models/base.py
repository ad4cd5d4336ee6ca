"""The one interface every recommender in the book answers to.

Conventions (the same in every module):

* Interaction frames carry the contiguous indices ``user_idx`` and ``item_idx``
  made by :func:`recsys_book.preprocessing.encode_ids`. Index 0 is reserved for
  padding, so real users are ``1..n_users-1`` and real items ``1..n_items-1``;
  ``n_users`` and ``n_items`` are vocabulary sizes *including* the padding row.
* ``score(users)`` returns ``(batch, n_items) float32`` scores, higher is better,
  for every item of the catalogue; column 0 (padding) is ``-inf``.
* ``recommend(users, k)`` returns ``(batch, k) int64`` item indices, best first,
  without the items each user interacted with in the training data.

The evaluator (:mod:`recsys_book.evaluation`) needs nothing but ``score``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

REQUIRED_COLUMNS = ("user_idx", "item_idx")


def check_interactions(frame: pd.DataFrame, name: str = "train") -> None:
    """Raise a helpful error unless ``frame`` is a non-empty encoded interaction frame."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(
            f"{name} lacks the column(s) {missing}; encode raw ids first with "
            "recsys_book.preprocessing.encode_ids(...)."
        )
    if len(frame) == 0:
        raise ValueError(f"{name} is empty: there is nothing to learn from or evaluate.")
    for c in REQUIRED_COLUMNS:
        if not np.issubdtype(frame[c].dtype, np.integer):
            raise TypeError(f"{name}[{c!r}] must hold integers, got dtype {frame[c].dtype}.")
        if (frame[c] < 1).any():
            raise ValueError(
                f"{name}[{c!r}] contains indices < 1; index 0 is reserved for padding. "
                "Use recsys_book.preprocessing.encode_ids to build the indices."
            )


def interaction_matrix(
    frame: pd.DataFrame, n_users: int, n_items: int, values: str | None = None
) -> sp.csr_matrix:
    """``(n_users, n_items)`` CSR matrix of ``frame``; 1.0 per interaction unless ``values``."""
    check_interactions(frame)
    if frame["user_idx"].max() >= n_users or frame["item_idx"].max() >= n_items:
        raise ValueError(
            f"indices exceed the vocabulary (n_users={n_users}, n_items={n_items}); "
            "pass the sizes of the encoder that made the indices."
        )
    data = (
        frame[values].to_numpy(np.float32)
        if values is not None
        else np.ones(len(frame), dtype=np.float32)
    )
    m = sp.csr_matrix(
        (data, (frame["user_idx"].to_numpy(), frame["item_idx"].to_numpy())),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    m.sum_duplicates()
    return m


def check_positive_int(name: str, value) -> int:
    """``value`` as an int, or ``ValueError`` naming ``name`` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_nonnegative(name: str, value, strict: bool = False) -> float:
    """``value`` as a float, or ``ValueError`` unless finite and ``>= 0`` (``> 0`` if strict)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and np.isfinite(value)
        and (value > 0 if strict else value >= 0)
    )
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)


class Recommender:
    """Base class: ``fit`` on interactions, ``score`` all items, ``recommend`` top-k.

    Subclasses implement ``_fit(train)`` and ``_score(users) -> (batch, n_items)``.
    """

    n_users: int
    n_items: int
    seen_: sp.csr_matrix

    def fit(self, train: pd.DataFrame, n_users: int | None = None, n_items: int | None = None):
        """Learn from ``train`` (encoded interactions); returns ``self``.

        ``n_users``/``n_items`` default to ``max index + 1``; pass the encoder's
        sizes so that users and items absent from ``train`` can still be scored.
        """
        check_interactions(train)
        self.n_users = int(n_users if n_users is not None else train["user_idx"].max() + 1)
        self.n_items = int(n_items if n_items is not None else train["item_idx"].max() + 1)
        self.seen_ = interaction_matrix(train, self.n_users, self.n_items)
        self._fit(train)
        return self

    def _fit(self, train: pd.DataFrame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_users(self, users) -> np.ndarray:
        if not hasattr(self, "seen_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit(train) first.")
        users = np.asarray(users)
        if users.ndim != 1 or not np.issubdtype(users.dtype, np.integer):
            raise ValueError(
                f"users must be a 1-D array of integer user indices, got shape {users.shape} "
                f"and dtype {users.dtype}."
            )
        if users.size and (users.min() < 1 or users.max() >= self.n_users):
            raise ValueError(
                f"user indices must lie in 1..{self.n_users - 1}; got min {users.min()}, "
                f"max {users.max()}."
            )
        return users.astype(np.int64)

    def _check_pairs(self, users, items) -> np.ndarray:
        """``(n, 2) int32`` (user, item) pairs, or ``ValueError`` naming what is wrong."""
        users = self._check_users(users)
        items = np.asarray(items)
        if items.shape != users.shape or not np.issubdtype(items.dtype, np.integer):
            raise ValueError(
                f"items must be a 1-D integer array of the same length as users "
                f"({users.shape}), got shape {items.shape} and dtype {items.dtype}."
            )
        if items.size and (items.min() < 1 or items.max() >= self.n_items):
            raise ValueError(
                f"item indices must lie in 1..{self.n_items - 1}; got min {items.min()}, "
                f"max {items.max()}."
            )
        return np.stack([users, items], axis=1).astype(np.int32)

    def score(self, users) -> np.ndarray:
        """Scores of every item for each user: ``(batch, n_items) float32``; column 0 is -inf."""
        users = self._check_users(users)
        s = np.asarray(self._score(users), dtype=np.float32)
        if s.shape != (len(users), self.n_items):
            raise AssertionError(
                f"{type(self).__name__}._score returned {s.shape}, "
                f"expected {(len(users), self.n_items)}"
            )
        s[:, 0] = -np.inf
        return s

    def recommend(self, users, k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """Top-``k`` item indices per user, best first: ``(batch, k) int64``."""
        if not isinstance(k, int | np.integer) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        users = self._check_users(users)
        s = self.score(users)
        if exclude_seen:
            rows = self.seen_[users]
            r, c = rows.nonzero()
            s[r, c] = -np.inf
        k = min(int(k), self.n_items - 1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int64)
