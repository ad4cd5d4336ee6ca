"""Explanations for item-based recommendations: "because you liked ...".

An item-based model scores a candidate ``j`` for user ``u`` as a sum over the
items the user already has,

    score(u, j) = sum_{i in H_u} w(j, i),

with ``w`` the item-item weight (ItemKNN: the cosine ``sim(j, i)``; EASE:
``B[i, j]``). Each term is the share of the score that liked item ``i``
contributes, so the largest terms *are* the reasons, not a story told after the
fact: removing item ``i`` from the history lowers the score by exactly
``w(j, i)``. For embedding models (MF, two-tower) there is no such exact sum;
the cosine of item vectors gives the nearest liked items, which is a useful but
only approximate account of why the model ranked ``j`` high.

Convention: ``weights[j, i]`` is the contribution of the liked item ``i`` to the
score of the recommended item ``j`` (row = recommended). For ItemKNN pass
``model.similarity_``; for EASE pass ``model.B_.T``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["explain_item_based"]

COLUMNS = ["rank", "item_idx", "reason", "because_idx", "weight", "share"]


def _as_index_array(values, name: str, n_items: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D array of integer item indices, got shape {values.shape} "
            f"and dtype {values.dtype}."
        )
    if values.size == 0:
        raise ValueError(f"{name} is empty; there is nothing to explain.")
    if values.min() < 1 or values.max() >= n_items:
        raise ValueError(
            f"{name} must lie in 1..{n_items - 1} (0 is padding); got min {values.min()}, "
            f"max {values.max()}."
        )
    return values.astype(np.int64)


def _weights_block(weights, item_vectors, recommended, history) -> tuple[np.ndarray, int]:
    """``(len(recommended), len(history))`` block of contributions and ``n_items``."""
    if (weights is None) == (item_vectors is None):
        raise ValueError("pass exactly one of weights= (item-item matrix) or item_vectors=.")
    if weights is not None:
        if not sp.issparse(weights):
            weights = np.asarray(weights)
        if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
            raise ValueError(
                f"weights must be a square (n_items, n_items) matrix, got shape {weights.shape}."
            )
        n_items = weights.shape[0]
        rec = _as_index_array(recommended, "recommended", n_items)
        hist = _as_index_array(history, "history", n_items)
        block = weights[rec][:, hist]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        return block.astype(np.float64), n_items
    vectors = np.asarray(item_vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise ValueError(
            f"item_vectors must be a numeric (n_items, d) array, got shape {vectors.shape} "
            f"and dtype {vectors.dtype}."
        )
    n_items = vectors.shape[0]
    rec = _as_index_array(recommended, "recommended", n_items)
    hist = _as_index_array(history, "history", n_items)
    a, b = vectors[rec].astype(np.float64), vectors[hist].astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    denom = np.outer(na, nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        block = np.where(denom > 0, (a @ b.T) / denom, 0.0)
    return block, n_items


def _title_lookup(titles, n_items: int):
    if titles is None:
        return None
    if isinstance(titles, pd.Series):
        return lambda idx: titles.reindex(idx).to_numpy()
    titles = np.asarray(titles, dtype=object)
    if titles.shape != (n_items,):
        raise ValueError(
            f"titles must be a pandas Series indexed by item_idx or an array of length "
            f"n_items={n_items}, got shape {titles.shape}."
        )
    return lambda idx: titles[idx]


def explain_item_based(
    recommended,
    history,
    *,
    weights=None,
    item_vectors=None,
    n_reasons: int = 3,
    titles=None,
) -> pd.DataFrame:
    """The liked items that explain each recommended item of one user.

    Args:
        recommended: ``(k,)`` int item indices, the user's list best first.
        history: ``(h,)`` int item indices the user liked (the training items the
            model scored from).
        weights: ``(n_items, n_items)`` dense or SciPy sparse matrix,
            ``weights[j, i]`` = contribution of liked ``i`` to recommended ``j``
            (ItemKNN: ``model.similarity_``; EASE: ``model.B_.T``).
        item_vectors: ``(n_items, d)`` item vectors instead of ``weights``; the
            contribution is then the cosine similarity (an approximation).
        n_reasons: at most this many reasons per recommended item.
        titles: optional item titles, a Series indexed by ``item_idx`` or an array
            of length ``n_items``; adds the columns ``title`` and ``because_title``.

    Returns:
        A tidy DataFrame, one row per (recommended item, reason), ordered by
        ``rank`` then ``reason``, with columns ``rank`` (1-based position in the
        list), ``item_idx``, ``reason`` (1 = strongest), ``because_idx`` (the
        liked item), ``weight`` (its contribution) and ``share`` (``weight`` over
        the sum of the item's positive contributions from the whole history,
        in ``(0, 1]``). Only positive contributions count as reasons; an item
        without any has no rows.

    Raises:
        ValueError: not exactly one of ``weights``/``item_vectors``; bad shapes or
            dtypes; indices outside ``1..n_items-1``; ``n_reasons < 1``; NaN weights.
    """
    if isinstance(n_reasons, bool) or not isinstance(n_reasons, int | np.integer) or n_reasons < 1:
        raise ValueError(f"n_reasons must be a positive integer, got {n_reasons!r}.")
    block, n_items = _weights_block(weights, item_vectors, recommended, history)
    if np.isnan(block).any():
        raise ValueError("the weights between recommended and liked items contain NaN.")
    rec = np.asarray(recommended, dtype=np.int64)
    hist = np.asarray(history, dtype=np.int64)
    positive = np.where(block > 0, block, 0.0)
    total = positive.sum(axis=1, keepdims=True)  # (k, 1)
    n = min(int(n_reasons), len(hist))
    order = np.argsort(-block, axis=1, kind="stable")[:, :n]  # (k, n) strongest first
    top = np.take_along_axis(block, order, axis=1)
    keep = top > 0
    r, c = np.nonzero(keep)
    table = pd.DataFrame(
        {
            "rank": r + 1,
            "item_idx": rec[r],
            "reason": c + 1,
            "because_idx": hist[order[r, c]],
            "weight": top[r, c],
            "share": top[r, c] / total[r, 0],
        },
        columns=COLUMNS,
    )
    lookup = _title_lookup(titles, n_items)
    if lookup is not None:
        table.insert(2, "title", lookup(table["item_idx"].to_numpy()))
        table["because_title"] = lookup(table["because_idx"].to_numpy())
    return table.reset_index(drop=True)
