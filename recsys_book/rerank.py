"""Maximal Marginal Relevance (MMR) re-ranking: trade a little accuracy for diversity.

A ranker orders items by relevance alone, so its top-k list is often k near
copies of one taste (five Star Wars films). MMR (Carbonell & Goldstein, 1998)
builds the list greedily; at each position it takes the candidate that
maximises

    MMR(j) = lam * rel(u, j) - (1 - lam) * max_{i in picked} cos(v_j, v_i),

the relevance of ``j`` minus its similarity to the most similar item already in
the list. ``lam = 1`` gives back the ranker's own list; ``lam = 0`` ignores
relevance after the first pick and spreads the list as widely as the item
vectors allow.

Two practical details make the two terms comparable and the cost small:

* only the ``n_candidates`` best-scored items of each user are re-ranked (the
  usual "re-rank the head of the list" set-up), so the cost is
  ``O(batch * n_candidates^2 * d)`` for the similarities plus
  ``O(k * batch * n_candidates)`` for the greedy loop, whatever the catalogue;
* relevance is min-max scaled to ``[0, 1]`` within each user's candidates, the
  same range as a cosine of non-negative vectors, so ``lam`` means the same for
  every model and user.

The greedy loop runs over the ``k`` positions only; every step is vectorised
over the batch of users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_book.evaluation import top_k

__all__ = ["mmr_rerank"]


def _check_lambda(lam) -> float:
    if isinstance(lam, bool) or not isinstance(lam, int | float | np.integer | np.floating):
        raise TypeError(f"lam must be a number in [0, 1], got {type(lam).__name__}.")
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"lam must lie in [0, 1] (1 = relevance only), got {lam!r}.")
    return float(lam)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _masked_scores(scores, exclude) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2 or not np.issubdtype(scores.dtype, np.floating):
        raise ValueError(
            f"scores must be a 2-D float array (batch, n_items), got shape {scores.shape} "
            f"and dtype {scores.dtype}."
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; replace them (e.g. by -inf) before re-ranking.")
    scores = scores.astype(np.float64, copy=True)
    if exclude is not None:
        if sp.issparse(exclude):
            exclude = exclude.toarray()
        exclude = np.asarray(exclude)
        if exclude.shape != scores.shape or exclude.dtype != bool:
            raise ValueError(
                f"exclude must be a boolean mask of the same shape as scores {scores.shape}, "
                f"got shape {exclude.shape} and dtype {exclude.dtype}; build it e.g. as "
                "model.seen_[users].toarray() > 0."
            )
        scores[exclude] = -np.inf
    return scores


def mmr_rerank(
    scores,
    item_vectors,
    k: int = 10,
    lam: float = 0.5,
    *,
    exclude=None,
    n_candidates: int = 100,
) -> np.ndarray:
    """Greedy MMR lists: ``(batch, k)`` item indices, first pick first.

    Args:
        scores: ``(batch, n_items)`` float relevance scores, higher is better;
            ``-inf`` marks items that may not be recommended (column 0, padding).
        item_vectors: ``(n_items, d)`` item representations (genre indicators,
            learned embeddings); similarity is their cosine. An all-zero row has
            similarity 0 to everything (nothing is known against it).
        k: list length, ``1 <= k <= n_candidates``.
        lam: the trade-off ``lam`` in ``[0, 1]``: 1 = relevance only (the plain
            top-k list), 0 = diversity only after the first pick.
        exclude: optional ``(batch, n_items)`` boolean mask (NumPy or SciPy
            sparse), True for items to leave out, e.g. the user's training items
            ``model.seen_[users].toarray() > 0``.
        n_candidates: how many best-scored items per user are re-ranked.

    Returns:
        ``(batch, k) int64`` item indices. With ``lam=1`` they equal
        :func:`recsys_book.evaluation.top_k` of the masked scores.

    Raises:
        ValueError: bad shapes or dtypes, NaN scores or vectors, ``lam`` outside
            ``[0, 1]``, ``k`` or ``n_candidates`` out of range, or a user with fewer
            than ``k`` recommendable (finite-score) items.
        TypeError: ``lam`` is not a number.
    """
    lam = _check_lambda(lam)
    scores = _masked_scores(scores, exclude)
    batch, n_items = scores.shape
    vectors = np.asarray(item_vectors)
    if (
        vectors.ndim != 2
        or vectors.shape[0] != n_items
        or not np.issubdtype(vectors.dtype, np.number)
    ):
        raise ValueError(
            f"item_vectors must be a numeric (n_items={n_items}, d) array, got shape "
            f"{vectors.shape} and dtype {vectors.dtype}."
        )
    if np.isnan(vectors).any():
        raise ValueError("item_vectors contain NaN.")
    n_candidates = _check_int(n_candidates, "n_candidates", 1)
    n_candidates = min(n_candidates, n_items)
    k = _check_int(k, "k", 1)
    if k > n_candidates:
        raise ValueError(f"k={k} exceeds n_candidates={n_candidates}; raise n_candidates.")
    finite = np.isfinite(scores).sum(axis=1)
    if batch and finite.min() < k:
        bad = int(np.argmin(finite))
        raise ValueError(
            f"row {bad} has only {int(finite[bad])} recommendable items (finite scores), "
            f"fewer than k={k}; lower k or exclude fewer items."
        )

    cand = top_k(scores, n_candidates)  # (batch, C), best first, ties by index
    rel = np.take_along_axis(scores, cand, axis=1)  # (batch, C)
    valid = np.isfinite(rel)
    # min-max scale relevance to [0, 1] among each user's finite candidates
    lo = np.where(valid, rel, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, rel, -np.inf).max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    rel = np.where(valid, (rel - lo) / span, 0.0)  # invalid ones are never available

    v = vectors[cand].astype(np.float64)  # (batch, C, d)
    norms = np.linalg.norm(v, axis=2, keepdims=True)
    v = v / np.where(norms > 0, norms, 1.0)
    sim = np.einsum("bcd,bed->bce", v, v)  # (batch, C, C) cosine similarities

    rows = np.arange(batch)
    max_sim = np.zeros_like(rel)  # similarity to the closest picked item so far
    available = valid.copy()
    picked = np.empty((batch, k), dtype=np.int64)
    for position in range(k):  # loop over list positions only
        gain = lam * rel - (1.0 - lam) * max_sim
        gain = np.where(available, gain, -np.inf)
        best = np.argmax(gain, axis=1)  # ties -> the better-scored candidate
        picked[:, position] = best
        available[rows, best] = False
        max_sim = np.maximum(max_sim, sim[rows, best, :])
    return np.take_along_axis(cand, picked, axis=1).astype(np.int64)
