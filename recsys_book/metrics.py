"""Evaluation metrics for recommenders, vectorised with NumPy.

Three families, all pure functions of arrays:

* **Ranking metrics** read a boolean *hit matrix* ``hits: (batch, k)`` where
  ``hits[u, j]`` is ``True`` when the item at rank ``j + 1`` of user ``u``'s list
  is relevant, and the number of relevant items ``n_relevant: (batch,)``. Each
  returns one value per user, ``(batch,) float64``, and the caller averages:
  :func:`hit_rate_at_k`, :func:`precision_at_k`, :func:`recall_at_k`,
  :func:`ndcg_at_k`, :func:`mrr`, :func:`map_at_k`; :func:`auc` reads scores
  instead, because it needs the whole ranking.
* **Rating metrics**: :func:`rmse`, :func:`mae`.
* **Beyond accuracy**: :func:`catalog_coverage`, :func:`novelty`,
  :func:`intra_list_diversity`.

Notation in the formulas: ``rel_j`` is ``hits[u, j - 1]`` (1 if the item at
rank ``j`` is relevant), ``R = n_relevant[u]``, ranks start at 1.

Ties. A hit matrix already fixes an order, so these functions have no tie
policy of their own; the evaluator decides it when it builds the matrix
(:func:`recsys_book.evaluation.evaluate` puts a relevant item *after* every
irrelevant item with the same score, so a model that scores everything equal
gets no credit). :func:`auc` counts a tied (positive, negative) pair as half a
win, the Mann-Whitney convention, so such a model gets 0.5, the chance level.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "auc",
    "catalog_coverage",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mrr",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
    "rmse",
]


# --------------------------------------------------------------------------- checks


def _check_hits(hits, n_relevant=None, k: int | None = None, *, need_relevant: bool = False):
    """Validate and return ``(hits[:, :k] as bool, n_relevant as int64 or None)``."""
    hits = np.asarray(hits)
    if hits.ndim != 2:
        raise ValueError(
            f"hits must be a 2-D (batch, k) array, got shape {hits.shape}; "
            "wrap a single list as hits[None, :]."
        )
    if hits.dtype != np.bool_:
        if not np.issubdtype(hits.dtype, np.integer) or ((hits != 0) & (hits != 1)).any():
            raise ValueError(
                f"hits must be boolean (or integers 0/1), got dtype {hits.dtype}; "
                "build it as `relevant_item_matrix[rows, top_items]` or use hits.astype(bool)."
            )
        hits = hits.astype(bool)
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        if k > hits.shape[1]:
            raise ValueError(
                f"k={k} exceeds the length of the lists ({hits.shape[1]}); "
                "compute the hit matrix for at least k ranks."
            )
        hits = hits[:, :k]
    if hits.shape[1] == 0:
        raise ValueError("hits has 0 columns (k=0); k must be a positive integer.")
    if n_relevant is None:
        if need_relevant:
            raise ValueError("n_relevant (the number of relevant items per user) is required.")
        return hits, None
    n_relevant = np.asarray(n_relevant)
    if n_relevant.shape != (hits.shape[0],):
        raise ValueError(
            f"n_relevant must have shape (batch,) = ({hits.shape[0]},), got {n_relevant.shape}."
        )
    if not np.issubdtype(n_relevant.dtype, np.integer):
        raise ValueError(
            f"n_relevant must hold integers (counts of relevant items), got dtype "
            f"{n_relevant.dtype}; NaN or fractional counts are not allowed."
        )
    if (n_relevant < 1).any():
        raise ValueError(
            "n_relevant contains users with no relevant item; the metric is undefined for "
            "them: drop those users before evaluating."
        )
    full_hits = hits.sum(axis=1)
    if (full_hits > n_relevant).any():
        raise ValueError(
            "some rows of hits have more hits than n_relevant; n_relevant must count all "
            "relevant items of the user, including those not ranked in the top k."
        )
    return hits, n_relevant.astype(np.int64)


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(j + 1)`` for ranks ``j = 1..k``: shape ``(k,)``."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


# --------------------------------------------------------------------------- ranking


def hit_rate_at_k(hits, n_relevant=None, k: int | None = None) -> np.ndarray:
    """Hit rate (HR@k): did at least one relevant item make the top ``k``?

    ``HR@k(u) = 1[ sum_{j<=k} rel_j > 0 ]``

    Args:
        hits: ``(batch, K)`` bool hit matrix, best rank first.
        n_relevant: ignored except for validation; accepted so that every ranking
            metric can be called the same way.
        k: cut-off; default ``K`` (all columns).

    Returns:
        ``(batch,) float64`` in ``{0, 1}``.

    Raises:
        ValueError: bad shapes or dtypes, ``k <= 0`` or ``k > K``.
    """
    hits, _ = _check_hits(hits, n_relevant, k)
    return hits.any(axis=1).astype(np.float64)


def precision_at_k(hits, n_relevant=None, k: int | None = None) -> np.ndarray:
    """Precision@k: the share of the ``k`` recommended items that are relevant.

    ``P@k(u) = (1/k) sum_{j<=k} rel_j``  (always divided by ``k``, so a user with
    fewer than ``k`` relevant items cannot reach 1).

    Args, returns and raises as :func:`hit_rate_at_k`; values lie in ``[0, 1]``.
    """
    hits, _ = _check_hits(hits, n_relevant, k)
    return hits.mean(axis=1, dtype=np.float64)


def recall_at_k(hits, n_relevant, k: int | None = None) -> np.ndarray:
    """Recall@k: the share of the user's relevant items found in the top ``k``.

    ``Recall@k(u) = (1/R) sum_{j<=k} rel_j``  (its maximum is ``min(R, k) / R``).

    Args:
        hits: ``(batch, K)`` bool hit matrix.
        n_relevant: ``(batch,)`` integer counts ``R >= 1`` of relevant items per user.
        k: cut-off; default ``K``.

    Returns:
        ``(batch,) float64`` in ``[0, 1]``.

    Raises:
        ValueError: bad shapes or dtypes, ``k`` out of range, ``n_relevant < 1`` or
        fewer relevant items than hits.
    """
    hits, n_relevant = _check_hits(hits, n_relevant, k, need_relevant=True)
    return hits.sum(axis=1) / n_relevant


def ndcg_at_k(hits, n_relevant, k: int | None = None) -> np.ndarray:
    """Normalised discounted cumulative gain with binary gains and a log2 discount.

    ``DCG@k(u)  = sum_{j<=k} rel_j / log2(j + 1)``

    ``IDCG@k(u) = sum_{j<=min(R, k)} 1 / log2(j + 1)``  (all relevant items on top)

    ``NDCG@k(u) = DCG@k(u) / IDCG@k(u)``

    With one relevant item at rank ``r <= k`` this is ``1 / log2(r + 1)``.
    Args, returns and raises as :func:`recall_at_k`; values lie in ``[0, 1]``.
    """
    hits, n_relevant = _check_hits(hits, n_relevant, k, need_relevant=True)
    disc = _discounts(hits.shape[1])
    dcg = hits @ disc
    ideal = np.cumsum(disc)[np.minimum(n_relevant, hits.shape[1]) - 1]
    return dcg / ideal


def mrr(hits, n_relevant=None, k: int | None = None) -> np.ndarray:
    """Reciprocal rank of the first relevant item (averaged over users: MRR@k).

    ``RR@k(u) = 1 / min{ j <= k : rel_j = 1 }``, and 0 when no relevant item is in
    the top ``k``.

    Args, returns and raises as :func:`hit_rate_at_k`; values lie in ``[0, 1]``.
    """
    hits, _ = _check_hits(hits, n_relevant, k)
    first = hits.argmax(axis=1)  # index of the first True (0 if none)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def map_at_k(hits, n_relevant, k: int | None = None) -> np.ndarray:
    """Average precision at k (averaged over users: MAP@k).

    ``AP@k(u) = (1 / min(R, k)) sum_{j<=k} rel_j * P@j(u)``, with
    ``P@j(u) = (1/j) sum_{i<=j} rel_i``.

    The normaliser ``min(R, k)`` is the number of relevant items that *could* be
    in a list of length ``k``, so a perfect ranking scores 1. This is the
    definition of Spark's ``meanAveragePrecisionAt`` and of ``map_at_k`` in the
    Recommenders library (recommenders-team/recommenders); the same library's
    ``map`` divides by ``R`` instead, which makes AP@k equal to at most
    ``Recall@k``.

    Args, returns and raises as :func:`recall_at_k`; values lie in ``[0, 1]``.
    """
    hits, n_relevant = _check_hits(hits, n_relevant, k, need_relevant=True)
    k_ = hits.shape[1]
    precision_at_j = np.cumsum(hits, axis=1) / np.arange(1, k_ + 1)
    return (precision_at_j * hits).sum(axis=1) / np.minimum(n_relevant, k_)


def auc(scores, positives, candidates=None) -> np.ndarray:
    """Per-user area under the ROC curve from a full ranking of the candidates.

    Among user ``u``'s candidate items, ``P`` are positive and ``N`` negative. AUC is
    the probability that a random positive outranks a random negative, ties
    counting one half:

    ``AUC(u) = (1 / (P N)) sum_{i in pos} sum_{n in neg} (1[s_i > s_n] + 0.5 1[s_i = s_n])``

    Computed from ranks (Mann-Whitney): with ``rank_i`` the ascending, tie-averaged
    rank of positive ``i`` among the ``C = P + N`` candidates,
    ``AUC(u) = (sum_i rank_i - P (P + 1) / 2) / (P N)``.
    This equals ``sklearn.metrics.roc_auc_score`` on the user's candidates.

    Args:
        scores: ``(batch, n_items)`` float scores, higher is better; ``-inf`` allowed.
        positives: ``(batch, n_items)`` bool, the relevant items.
        candidates: ``(batch, n_items)`` bool, the items that take part in the
            ranking (e.g. not seen in training, not padding); default all. A
            positive outside the candidates is ignored.

    Returns:
        ``(batch,) float64`` in ``[0, 1]``; 0.5 for a constant or random scorer.

    Raises:
        ValueError: shapes differ, NaN scores, non-boolean masks, or a user with no
        positive or no negative candidate.
    """
    scores = np.asarray(scores)
    positives = np.asarray(positives)
    if scores.ndim != 2 or not np.issubdtype(scores.dtype, np.floating):
        raise ValueError(
            f"scores must be a 2-D float array (batch, n_items), got shape {scores.shape} "
            f"and dtype {scores.dtype}."
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; fix the model (or replace NaN by -inf).")
    candidates = np.ones(scores.shape, bool) if candidates is None else np.asarray(candidates)
    for name, mask in (("positives", positives), ("candidates", candidates)):
        if mask.shape != scores.shape or mask.dtype != np.bool_:
            raise ValueError(
                f"{name} must be a boolean array of the scores' shape {scores.shape}, "
                f"got shape {mask.shape} and dtype {mask.dtype}."
            )
    pos = positives & candidates
    n_pos = pos.sum(axis=1)
    n_neg = candidates.sum(axis=1) - n_pos
    if (n_pos == 0).any() or (n_neg == 0).any():
        raise ValueError(
            "AUC is undefined for users without a positive or without a negative candidate; "
            "drop those users first."
        )
    # Non-candidates go strictly below every candidate (whose -inf becomes the
    # lowest finite float), so they take the first M ranks and tie with no candidate.
    floor = -np.finfo(np.float64).max
    key = np.where(candidates, np.maximum(scores.astype(np.float64), floor), -np.inf)
    order = np.argsort(key, axis=1)  # the order within a run of ties does not matter
    ranked = np.take_along_axis(key, order, axis=1).ravel()
    batch, n = key.shape
    # Runs of equal values in the flattened, row-wise sorted scores (a row always
    # starts a new run): the tie-averaged 1-based rank of a run starting at 0-based
    # position s with length t is s + (t + 1) / 2.
    new_run = np.ones(ranked.size, dtype=bool)
    new_run[1:] = ranked[1:] != ranked[:-1]
    new_run[::n] = True
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run) % n
    run_length = np.bincount(run_id)
    at = np.flatnonzero(np.take_along_axis(pos, order, axis=1))  # positives, sorted order
    rank = run_start[run_id[at]] + (run_length[run_id[at]] + 1) / 2.0
    n_masked = n - candidates.sum(axis=1)
    rank_sum = np.bincount(at // n, weights=rank, minlength=batch) - n_pos * n_masked
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


# --------------------------------------------------------------------------- ratings


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D arrays of the same length, got shapes "
            f"{y_true.shape} and {y_pred.shape}."
        )
    if y_true.size == 0:
        raise ValueError("y_true is empty: there is nothing to evaluate.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
            raise ValueError(f"{name} must be numeric, got dtype {y.dtype}.")
        if np.isnan(y.astype(np.float64)).any():
            raise ValueError(f"{name} contains NaN; drop or impute those ratings first.")
    return y_true.astype(np.float64), y_pred.astype(np.float64)


def rmse(y_true, y_pred) -> float:
    """Root mean squared error ``sqrt((1/n) sum_i (y_i - yhat_i)^2)``, in rating units.

    Args:
        y_true, y_pred: ``(n,)`` numeric arrays.

    Raises:
        ValueError: shapes differ, empty input, non-numeric values or NaN.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error ``(1/n) sum_i |y_i - yhat_i|``, in rating units.

    Args and raises as :func:`rmse`.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


# --------------------------------------------------------------------------- beyond accuracy


def _check_recommended(recommended, n_items: int) -> np.ndarray:
    recommended = np.asarray(recommended)
    if recommended.ndim != 2 or recommended.shape[1] == 0:
        raise ValueError(
            f"recommended must be a 2-D (batch, k) array with k >= 1, got shape "
            f"{recommended.shape}."
        )
    if not np.issubdtype(recommended.dtype, np.integer):
        raise ValueError(
            f"recommended must hold integer item indices, got dtype {recommended.dtype}."
        )
    if recommended.size and (recommended.min() < 1 or recommended.max() >= n_items):
        raise ValueError(
            f"recommended item indices must lie in 1..{n_items - 1} (0 is padding); got "
            f"min {recommended.min()}, max {recommended.max()}."
        )
    return recommended


def catalog_coverage(recommended, n_items: int) -> float:
    """Share of the catalogue that appears in at least one recommendation list.

    ``Coverage = |union_u L_u| / (n_items - 1)`` where ``L_u`` is user ``u``'s list
    and ``n_items - 1`` the number of real items (index 0 is padding).

    Args:
        recommended: ``(batch, k)`` int item indices in ``1..n_items-1``.
        n_items: vocabulary size including padding.

    Returns:
        A float in ``(0, 1]``.

    Raises:
        ValueError: bad shape or dtype, ``n_items < 2``, indices out of range.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 2:
        raise ValueError(f"n_items must be an integer >= 2 (padding + 1 item), got {n_items!r}.")
    recommended = _check_recommended(recommended, n_items)
    return float(np.unique(recommended).size / (n_items - 1))


def novelty(recommended, item_popularity) -> np.ndarray:
    """Mean self-information of each list: how surprising its items are.

    ``p(i) = pop_i / sum_j pop_j``  (the chance that a random interaction is with ``i``)

    ``Novelty(u) = (1/k) sum_{i in L_u} -log2 p(i)``,  in bits.

    Args:
        recommended: ``(batch, k)`` int item indices.
        item_popularity: ``(n_items,)`` non-negative interaction counts per item
            (e.g. from the training data; entry 0 is padding and ignored).

    Returns:
        ``(batch,) float64`` in bits; higher means less popular items.

    Raises:
        ValueError: bad shapes or dtypes, negative or NaN counts, or a recommended
        item with zero popularity (infinite self-information: add a pseudo-count,
        ``item_popularity + 1``).
    """
    pop = np.asarray(item_popularity)
    if pop.ndim != 1 or not (
        np.issubdtype(pop.dtype, np.integer) or np.issubdtype(pop.dtype, np.floating)
    ):
        raise ValueError(
            f"item_popularity must be a 1-D numeric array (n_items,), got shape {pop.shape} "
            f"and dtype {pop.dtype}."
        )
    pop = pop.astype(np.float64)
    if np.isnan(pop).any() or (pop < 0).any():
        raise ValueError("item_popularity must be non-negative counts without NaN.")
    recommended = _check_recommended(recommended, pop.size)
    pop = pop.copy()
    pop[0] = 0.0
    chosen = pop[recommended]
    if (chosen == 0).any():
        raise ValueError(
            "a recommended item has popularity 0, whose self-information is infinite; "
            "pass item_popularity + 1 (a pseudo-count) instead."
        )
    return (-np.log2(chosen / pop.sum())).mean(axis=1)


def intra_list_diversity(recommended, item_vectors) -> np.ndarray:
    """Mean pairwise cosine distance between the items of each list.

    ``ILD(u) = (2 / (k (k - 1))) sum_{j < l} (1 - cos(v_{L_u[j]}, v_{L_u[l]}))``

    Args:
        recommended: ``(batch, k)`` int item indices, ``k >= 2``.
        item_vectors: ``(n_items, d)`` float item representations (genre one-hots,
            embeddings); rows of recommended items must be non-zero.

    Returns:
        ``(batch,) float64`` in ``[0, 2]`` (``[0, 1]`` for non-negative vectors).

    Raises:
        ValueError: bad shapes or dtypes, ``k < 2``, NaN vectors, or a recommended
        item whose vector is zero (its cosine is undefined).
    """
    vectors = np.asarray(item_vectors)
    if vectors.ndim != 2 or not (
        np.issubdtype(vectors.dtype, np.floating) or np.issubdtype(vectors.dtype, np.integer)
    ):
        raise ValueError(
            f"item_vectors must be a 2-D numeric array (n_items, d), got shape "
            f"{vectors.shape} and dtype {vectors.dtype}."
        )
    recommended = _check_recommended(recommended, vectors.shape[0])
    k = recommended.shape[1]
    if k < 2:
        raise ValueError(f"intra-list diversity needs lists of k >= 2 items, got k={k}.")
    v = vectors[recommended].astype(np.float64)  # (batch, k, d)
    if np.isnan(v).any():
        raise ValueError("item_vectors contain NaN for recommended items.")
    norms = np.linalg.norm(v, axis=2, keepdims=True)
    if (norms == 0).any():
        raise ValueError(
            "a recommended item has an all-zero vector, so its cosine similarity is "
            "undefined; give every real item a non-zero representation."
        )
    v = v / norms
    cos = np.einsum("bjd,bld->bjl", v, v)
    sum_off_diagonal = cos.sum(axis=(1, 2)) - np.trace(cos, axis1=1, axis2=2)
    mean_cos = sum_off_diagonal / (k * (k - 1))
    return 1.0 - mean_cos
