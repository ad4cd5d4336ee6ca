"""Neighbourhood collaborative filtering: ItemKNN and UserKNN.

Both start from the binary interaction matrix ``X`` (users x items) and a
cosine similarity with optional shrinkage,

    sim(a, b) = <x_a, x_b> / (||x_a|| ||x_b|| + shrinkage),

computed between item columns (ItemKNN) or user rows (UserKNN). Each item (or
user) keeps only its ``k`` most similar neighbours, which makes the similarity
matrix sparse. Scoring is then one sparse product:

* ItemKNN: ``score(u, j) = sum_{i in N_k(j)} sim(j, i) * x_ui``, i.e. ``X S^T``;
  an item is recommended when it resembles what the user already has.
* UserKNN: ``score(u, j) = sum_{v in N_k(u)} sim(u, v) * x_vj``, i.e. ``S X``;
  an item is recommended when the user's look-alikes have it.

References: Sarwar et al. (2001), Deshpande & Karypis (2004) for items;
Resnick et al. (1994), Herlocker et al. (1999) for users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_book.models.base import Recommender


def _check_knn_params(k, shrinkage: float, block_size) -> None:
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k <= 0:
        raise ValueError(f"k (neighbours kept) must be a positive integer, got {k!r}.")
    if (
        isinstance(shrinkage, bool)
        or not isinstance(shrinkage, int | float | np.integer | np.floating)
        or not np.isfinite(shrinkage)
        or shrinkage < 0
    ):
        raise ValueError(f"shrinkage must be a finite number >= 0, got {shrinkage!r}.")
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int | np.integer)
        or block_size <= 0
    ):
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")


def cosine_topk(
    rows: sp.spmatrix, k: int, shrinkage: float = 0.0, block_size: int = 1024
) -> sp.csr_matrix:
    """Top-``k`` cosine neighbours of every row of ``rows``.

    Args:
        rows: ``(n, d)`` sparse matrix; row ``a`` is the vector of entity ``a``
            (an item's column of ``X`` for ItemKNN, a user's row for UserKNN).
        k: neighbours kept per row (fewer when a row has fewer non-zero
            similarities). The entity itself is never its own neighbour.
        shrinkage: added to the denominator of the cosine; damps similarities
            resting on few co-occurrences.
        block_size: rows of the dense similarity block computed at a time
            (memory ``block_size * n * 4`` bytes).

    Returns:
        ``(n, n)`` CSR float32 matrix ``S``; ``S[a, b]`` is ``sim(a, b)`` when
        ``b`` is one of ``a``'s ``k`` nearest neighbours, else 0.
    """
    _check_knn_params(k, shrinkage, block_size)
    rows = sp.csr_matrix(rows, dtype=np.float32)
    n = rows.shape[0]
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float32).ravel())
    gram = (rows @ rows.T).tocsr()  # (n, n) co-occurrence counts, sparse
    k = min(int(k), max(n - 1, 1))
    indptr, indices, data = [0], [], []
    for start in range(0, n, block_size):  # loop over blocks, not entities
        stop = min(start + block_size, n)
        block = gram[start:stop].toarray()
        denom = norms[start:stop, None] * norms[None, :] + np.float32(shrinkage)
        with np.errstate(divide="ignore", invalid="ignore"):
            sim = np.where(denom > 0, block / denom, 0.0).astype(np.float32)
        sim[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no self-neighbour
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sim, top, axis=1)
        keep = vals > 0
        counts = keep.sum(axis=1)
        indptr.extend((indptr[-1] + np.cumsum(counts)).tolist())
        indices.append(top[keep])
        data.append(vals[keep])
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
        shape=(n, n),
        dtype=np.float32,
    )


class _KNN(Recommender):
    def __init__(self, k: int = 50, shrinkage: float = 0.0, block_size: int = 1024):
        _check_knn_params(k, shrinkage, block_size)
        self.k = int(k)
        self.shrinkage = float(shrinkage)
        self.block_size = int(block_size)

    def _binary(self) -> sp.csr_matrix:
        x = self.seen_.copy()
        x.data[:] = 1.0
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, shrinkage={self.shrinkage})"


class ItemKNN(_KNN):
    """Item-based neighbourhood model (cosine similarity, top-``k`` neighbours).

    ``score(u, j) = sum_{i in N_k(j)} sim(j, i) x_ui``: how strongly item ``j``
    resembles the items user ``u`` has interacted with.

    Args:
        k: neighbours kept per item (default 50).
        shrinkage: cosine shrinkage ``>= 0`` (default 0: plain cosine).
        block_size: items per dense block when building the similarities.

    The attributes below are set by ``fit``.

    Attributes:
        similarity_: ``(n_items, n_items)`` CSR float32; row ``j`` holds the
            ``k`` neighbours of item ``j``.

    Raises:
        ValueError: ``k`` not a positive integer, or negative ``shrinkage``.
    """

    def _fit(self, train: pd.DataFrame) -> None:
        x = self._binary()
        self.similarity_ = cosine_topk(x.T, self.k, self.shrinkage, self.block_size)
        self._similarity_t = self.similarity_.T.tocsr()

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32`` = ``X[users] S^T`` (one sparse product)."""
        x = self.seen_[users]
        x.data[:] = 1.0
        return (x @ self._similarity_t).toarray()


class UserKNN(_KNN):
    """User-based neighbourhood model (cosine similarity, top-``k`` neighbours).

    ``score(u, j) = sum_{v in N_k(u)} sim(u, v) x_vj``: how many of user
    ``u``'s nearest look-alikes interacted with item ``j``, weighted by likeness.

    Args:
        k: neighbours kept per user (default 50).
        shrinkage: cosine shrinkage ``>= 0`` (default 0: plain cosine).
        block_size: users per dense block when building the similarities.

    The attributes below are set by ``fit``.

    Attributes:
        similarity_: ``(n_users, n_users)`` CSR float32; row ``u`` holds the
            ``k`` neighbours of user ``u``.

    Raises:
        ValueError: ``k`` not a positive integer, or negative ``shrinkage``.
    """

    def _fit(self, train: pd.DataFrame) -> None:
        self._x = self._binary()
        self.similarity_ = cosine_topk(self._x, self.k, self.shrinkage, self.block_size)

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32`` = ``S[users] X`` (one sparse product)."""
        return (self.similarity_[users] @ self._x).toarray()
