"""Offline evaluation of recommenders: full ranking, sampled ranking, rating error.

The evaluator needs only the one question every model in the book answers,
``score(users) -> (batch, n_items)``, so it works for any
:class:`~recsys_book.models.base.Recommender` and for any plain function with
that signature.

* :func:`evaluate` -- **full ranking**, the protocol we report: each test user's
  scores for *every* item are ranked, items the user met in training (and the
  padding column 0) are removed, and the top of the list is compared with the
  user's test items. Results per cut-off ``k``: ``HR@k``, ``NDCG@k``,
  ``Recall@k``, ``Precision@k``, ``MRR@k``, ``MAP@k``; optionally ``AUC``.
* :func:`evaluate_sampled` -- **sampled ranking**, the protocol of many papers:
  each user's test items are ranked among only ``n_negatives`` items drawn by
  :func:`recsys_book.preprocessing.sample_negatives`.
  It is cheaper but inflates every number and can even reorder models
  (Krichene and Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020),
  so the book uses it only to compare with published results.
* :func:`evaluate_ratings` -- RMSE and MAE of predicted ratings.

Ties are broken **pessimistically**: a relevant item is ranked after every
other candidate with the same score (and equal items by their index). A model
that gives every item the same score therefore recommends no relevant item,
rather than whatever happens to carry the smallest indices. The rule is exact
for float32 scores, the precision of the ``score`` contract: a relevant item's
score is replaced by the next float64 below it, which lies above every smaller
float32 value and so ties with nothing.

The work is vectorised over a batch of users: the Python loop runs over batches
only, so ``batch_size`` trades memory (``batch_size * n_items`` floats) for speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_book import metrics as M
from recsys_book.models.base import check_interactions, interaction_matrix
from recsys_book.preprocessing import sample_negatives

__all__ = [
    "DEFAULT_METRICS",
    "RANKING_METRICS",
    "evaluate",
    "evaluate_ratings",
    "evaluate_sampled",
    "top_k",
]

ScoreFn = Callable[[np.ndarray], np.ndarray]

#: Metrics computed from the top-k hit matrix, by the names used in result tables.
RANKING_METRICS: dict[str, Callable[..., np.ndarray]] = {
    "HR": M.hit_rate_at_k,
    "NDCG": M.ndcg_at_k,
    "Recall": M.recall_at_k,
    "Precision": M.precision_at_k,
    "MRR": M.mrr,
    "MAP": M.map_at_k,
}
DEFAULT_METRICS = ("HR", "NDCG", "Recall", "Precision", "MRR", "MAP")
_ALL_METRICS = (*RANKING_METRICS, "AUC")


# --------------------------------------------------------------------------- top-k


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k` without input checks (the evaluator validates once)."""
    n = scores.shape[1]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k :]  # the k largest, unordered
    vals = np.take_along_axis(scores, part, axis=1)
    threshold = vals.min(axis=1, keepdims=True)
    # argpartition picks arbitrarily among items tied with the k-th score; where
    # such ties straddle the cut, keep the ones with the smallest item index.
    straddle = np.flatnonzero((scores >= threshold).sum(axis=1) > k)
    if straddle.size:
        s, t = scores[straddle], threshold[straddle]
        tied = s == t
        need = k - (s > t).sum(axis=1, keepdims=True)
        keep = (s > t) | (tied & (np.cumsum(tied, axis=1) <= need))
        part[straddle] = np.nonzero(keep)[1].reshape(straddle.size, k)
        vals[straddle] = np.take_along_axis(s, part[straddle], axis=1)
    order = np.lexsort((part, -vals), axis=1)  # score descending, then index ascending
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def top_k(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first.

    Uses ``argpartition`` (linear time) and sorts only the ``k`` survivors. Ties
    are broken by the smaller column index, also at the cut-off, so the result is
    deterministic.

    Args:
        scores: ``(batch, n_items)`` float scores, higher is better; ``-inf`` allowed.
        k: list length, ``1 <= k <= n_items``.

    Returns:
        ``(batch, k) int64`` column indices.

    Raises:
        ValueError: ``scores`` not a 2-D float array, NaN in ``scores``, ``k`` out of range.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or not np.issubdtype(scores.dtype, np.floating):
        raise ValueError(
            f"scores must be a 2-D float array (batch, n_items), got shape {scores.shape} "
            f"and dtype {scores.dtype}."
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be an integer in 1..{scores.shape[1]}, got {k!r}.")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; replace them (e.g. by -inf) before ranking.")
    return _top_k(scores, int(k))


# --------------------------------------------------------------------------- checks


def _as_score_fn(model, n_items: int, max_user: int) -> ScoreFn:
    """Return ``model.score`` or ``model`` itself, after checking the model's sizes."""
    if hasattr(model, "score") and callable(model.score):
        model_items = getattr(model, "n_items", None)
        if model_items is not None and model_items != n_items:
            raise ValueError(
                f"the model scores {model_items} items but n_items={n_items}; pass the "
                "n_items of the encoder/split the model was fitted on."
            )
        model_users = getattr(model, "n_users", None)
        if model_users is not None and max_user >= model_users:
            raise ValueError(
                f"test user index {max_user} is outside the model's score range "
                f"1..{model_users - 1}; fit the model with n_users=split.n_users so that it "
                "knows every user."
            )
        return model.score
    if callable(model):
        return model
    raise TypeError(
        f"model must be a Recommender (with .score) or a callable users -> scores, "
        f"got {type(model).__name__}."
    )


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_ks(k, n_items: int) -> list[int]:
    ks = [k] if isinstance(k, int | np.integer) and not isinstance(k, bool) else k
    if not isinstance(ks, Sequence | np.ndarray) or len(ks) == 0:
        raise ValueError(
            f"k must be a positive integer or a non-empty sequence of them, got {k!r}."
        )
    ks = [_check_positive_int(v, "k") for v in ks]
    if max(ks) > n_items - 1:
        raise ValueError(
            f"k={max(ks)} exceeds the number of real items ({n_items - 1}); choose a smaller k."
        )
    return sorted(set(ks))


def _check_metrics(metrics) -> list[str]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    by_lower = {m.lower(): m for m in _ALL_METRICS}
    names = []
    for m in metrics:
        if not isinstance(m, str) or m.lower() not in by_lower:
            raise ValueError(f"unknown metric {m!r}; choose from {list(_ALL_METRICS)}.")
        names.append(by_lower[m.lower()])
    if not names:
        raise ValueError(f"metrics is empty; choose from {list(_ALL_METRICS)}.")
    return list(dict.fromkeys(names))


def _check_scores(s, n_users_in_batch: int, n_items: int) -> np.ndarray:
    s = np.asarray(s)
    if s.shape != (n_users_in_batch, n_items):
        raise ValueError(
            f"the score function returned shape {s.shape}, expected (batch, n_items) = "
            f"({n_users_in_batch}, {n_items}); it must score every item, column 0 included."
        )
    if not np.issubdtype(s.dtype, np.floating):
        raise ValueError(
            f"the score function returned dtype {s.dtype}; return float scores "
            "(float32 by the Recommender contract)."
        )
    if np.isnan(s).any():
        raise ValueError(
            "the score function returned NaN scores; check the model (diverged training, "
            "0/0 in a normalisation) or replace them by -inf for items it cannot score."
        )
    return s


class _Data:
    """The test users and the two CSR matrices the evaluator reads."""

    def __init__(self, train, test, n_items: int, users, need_train: bool):
        if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 2:
            raise ValueError(
                f"n_items must be an integer >= 2 (padding + items), got {n_items!r}; "
                "pass split.n_items."
            )
        check_interactions(test, "test")
        if need_train:
            if train is None:
                raise ValueError("train is required to exclude seen items; pass split.train.")
            check_interactions(train, "train")
        frames = [test] if train is None else [train, test]
        n_users = int(max(f["user_idx"].max() for f in frames)) + 1
        self.relevant = interaction_matrix(test, n_users, n_items)
        self.seen = (
            interaction_matrix(train, n_users, n_items)
            if train is not None
            else sp.csr_matrix((n_users, n_items), dtype=np.float32)
        )
        test_users = np.unique(test["user_idx"].to_numpy()).astype(np.int64)
        if users is not None:
            users = np.asarray(users)
            if users.ndim != 1 or not np.issubdtype(users.dtype, np.integer) or users.size == 0:
                raise ValueError(
                    f"users must be a non-empty 1-D array of integer user indices, got shape "
                    f"{users.shape} and dtype {users.dtype}."
                )
            missing = np.setdiff1d(users, test_users)
            if missing.size:
                raise ValueError(
                    f"{missing.size} of the requested users have no test items "
                    f"(e.g. {missing[:5].tolist()}); evaluate only users that appear in test."
                )
            test_users = np.unique(users).astype(np.int64)
        self.users = test_users
        self.n_items = int(n_items)


def _rows(csr: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (0..batch-1) and columns of the non-zeros of ``csr[users]``."""
    sub = csr[users]
    return np.repeat(np.arange(len(users)), np.diff(sub.indptr)), sub.indices


# --------------------------------------------------------------------------- core


def _run(
    score_fn: ScoreFn,
    data: _Data,
    *,
    ks: list[int],
    names: list[str],
    batch_size: int,
    exclude_seen: bool,
    negatives: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-user metric arrays, keyed by column name (``"HR@10"``, ..., ``"AUC"``).

    ``negatives: (len(data.users), n_negatives)`` sampled item indices restrict
    each user's candidates to those items plus the relevant ones (sampled
    ranking); ``None`` ranks all items.
    """
    ranking = [m for m in names if m in RANKING_METRICS]
    columns = [f"{m}@{k}" for k in ks for m in ranking] + (["AUC"] if "AUC" in names else [])
    out: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    n_items, k_max = data.n_items, max(ks)
    for start in range(0, len(data.users), batch_size):
        users = data.users[start : start + batch_size]
        b = len(users)
        key = _check_scores(score_fn(users), b, n_items).astype(np.float64)  # a fresh copy
        rel_r, rel_c = _rows(data.relevant, users)
        relevant = np.zeros((b, n_items), dtype=bool)
        relevant[rel_r, rel_c] = True
        excluded = np.zeros((b, n_items), dtype=bool)
        excluded[:, 0] = True
        if exclude_seen:
            seen_r, seen_c = _rows(data.seen, users)
            excluded[seen_r, seen_c] = True
        key[excluded] = -np.inf
        candidates = ~excluded
        if negatives is not None:
            # Sampled ranking: keep only the columns of each user's candidates.
            columns = _candidate_columns(negatives[start : start + b], rel_r, rel_c)
            key = np.take_along_axis(key, columns, axis=1)
            relevant = np.take_along_axis(relevant, columns, axis=1) & (columns > 0)
            candidates = np.take_along_axis(candidates, columns, axis=1) & (columns > 0)
        if "AUC" in names:  # before the tie rule below: AUC counts a tie as half a win
            out["AUC"].append(_auc_batch(key, relevant, candidates))
        # Pessimistic ties: each relevant score drops to the next float64 below it.
        key[relevant] = np.nextafter(key[relevant], -np.inf)
        top = _top_k(key, k_max)
        hits = np.take_along_axis(relevant, top, axis=1)
        hits &= np.take_along_axis(key, top, axis=1) > -np.inf  # excluded items never count
        n_relevant = np.bincount(rel_r, minlength=b)
        for k in ks:
            for m in ranking:
                out[f"{m}@{k}"].append(RANKING_METRICS[m](hits, n_relevant, k=k))
    return {c: np.concatenate(v) for c, v in out.items()}


def _candidate_columns(negatives: np.ndarray, rel_rows: np.ndarray, rel_cols: np.ndarray):
    """Item indices of each user's sampled candidates: ``(batch, n_negatives + max_relevant)``.

    Each row holds the user's negatives, then the user's relevant items, padded
    with column 0 (padding: excluded, never relevant). Ranking this compact
    matrix is much faster than ranking full rows that are almost all ``-inf``.
    ``rel_rows``/``rel_cols`` list the relevant (row, item) pairs sorted by row.
    """
    b = len(negatives)
    counts = np.bincount(rel_rows, minlength=b)
    slot = np.arange(len(rel_rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    relevant_items = np.zeros((b, max(int(counts.max()), 1)), dtype=np.int64)
    relevant_items[rel_rows, slot] = rel_cols
    return np.concatenate([negatives, relevant_items], axis=1)


def _auc_batch(key: np.ndarray, relevant: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Per-user AUC; NaN for users whose relevant items were all excluded."""
    pos = relevant & candidates
    ok = pos.any(axis=1) & (candidates & ~relevant).any(axis=1)
    result = np.full(len(key), np.nan)
    if ok.any():
        result[ok] = M.auc(key[ok], relevant[ok], candidates[ok])
    return result


def _table(values: dict[str, np.ndarray], users: np.ndarray, per_user: bool, protocol: str):
    if per_user:
        table = pd.DataFrame({"user_idx": users, **values})
    else:
        row = {c: float(np.nanmean(v)) for c, v in values.items()}
        table = pd.DataFrame([{**row, "users": len(users)}])
    table.attrs["protocol"] = protocol
    return table


# --------------------------------------------------------------------------- public API


def evaluate(
    model,
    train: pd.DataFrame | None,
    test: pd.DataFrame,
    *,
    n_items: int,
    k: int | Sequence[int] = 10,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 1024,
    exclude_seen: bool = True,
    users=None,
    per_user: bool = False,
) -> pd.DataFrame:
    """Full-ranking evaluation: rank every item for every test user.

    For each batch of test users: ``score(users) -> (batch, n_items)``; the padding
    column and (with ``exclude_seen``) the user's training items are set to
    ``-inf``; the top ``max(k)`` items are compared with the user's test items
    (ties pessimistic, see the module docstring); each metric is computed per user
    and averaged over users.

    Args:
        model: a fitted :class:`~recsys_book.models.base.Recommender` (its ``score``
            is used) or any callable ``users (batch,) int64 -> (batch, n_items) float``.
        train: encoded training interactions (``user_idx``, ``item_idx``): the items
            to exclude. May be ``None`` only with ``exclude_seen=False``.
        test: encoded test interactions: every (user, item) pair is a relevant item.
            A test item that is also among the user's training items is excluded
            with them, so it cannot be hit but still counts as relevant.
        n_items: vocabulary size including padding (``split.n_items``).
        k: cut-off(s), e.g. ``10`` or ``(5, 10, 20)``.
        metrics: names among ``"HR"``, ``"NDCG"``, ``"Recall"``, ``"Precision"``,
            ``"MRR"``, ``"MAP"`` (each reported at every ``k``) and ``"AUC"``
            (needs a full sort, so it is slower and off by default); case-insensitive.
        batch_size: users scored at once.
        exclude_seen: remove training items from the ranking (the usual protocol).
        users: optional subset of test users to evaluate (e.g. cold-start users).
        per_user: return one row per user instead of the average.

    Returns:
        A DataFrame: one row with the columns ``"HR@10"``, ``"NDCG@10"``, ...
        (grouped by ``k``), ``"AUC"`` if asked, and ``"users"`` (how many users were
        averaged); or, with ``per_user=True``, one row per user with ``"user_idx"``
        first. ``table.attrs["protocol"]`` describes the protocol in one line.

    Raises:
        ValueError: empty ``test``, indices beyond ``n_items``, test users outside
            the model's range, a model whose ``n_items`` differs, ``k`` out of range,
            unknown metrics, or a score function that returns the wrong shape, a
            non-float dtype or NaN.
        KeyError: ``train``/``test`` lack ``user_idx``/``item_idx``.
        TypeError: ``model`` is neither a Recommender nor callable.
    """
    data = _Data(train, test, n_items, users, need_train=exclude_seen)
    score_fn = _as_score_fn(model, n_items, int(data.users.max()))
    ks = _check_ks(k, n_items)
    names = _check_metrics(metrics)
    batch_size = _check_positive_int(batch_size, "batch_size")
    values = _run(
        score_fn, data, ks=ks, names=names, batch_size=batch_size, exclude_seen=exclude_seen
    )
    protocol = (
        f"full ranking of all {n_items - 1} items"
        + (", training items excluded" if exclude_seen else "")
        + ", ties pessimistic"
    )
    return _table(values, data.users, per_user, protocol)


def evaluate_sampled(
    model,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    n_items: int,
    n_negatives: int = 100,
    strategy: str = "uniform",
    k: int | Sequence[int] = 10,
    seed: int = 0,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 1024,
    users=None,
    per_user: bool = False,
) -> pd.DataFrame:
    """Sampled-ranking evaluation: rank each user's test items among sampled negatives.

    For every test user, ``n_negatives`` items the user interacted with neither in
    ``train`` nor in ``test`` are drawn; the candidate list is those negatives plus
    the user's test items, and the metrics of :func:`evaluate` are computed on it.
    With one test item per user (a leave-one-out split) and ``n_negatives=100``
    this is the protocol of NCF (He et al., 2017) and many later papers. Numbers
    are much higher than under full ranking and are *not* comparable with them.

    Args:
        model, train, test, n_items, k, metrics, batch_size, users, per_user:
            as in :func:`evaluate` (training items are never candidates).
        n_negatives: sampled negatives per user, distinct, drawn by
            :func:`recsys_book.preprocessing.sample_negatives`.
        strategy: ``"uniform"`` over eligible items, or ``"popularity"``: in
            proportion to the item's number of training interactions (items never
            seen in training are then never drawn).
        seed: seed of the sampler; the negatives are drawn once for all users,
            so the numbers do not depend on ``batch_size``.

    Returns:
        The table of :func:`evaluate`; ``table.attrs["protocol"]`` names the
        sampling protocol.

    Raises:
        ValueError: as :func:`evaluate`; ``n_negatives`` not positive or smaller than
            ``max(k)`` (every list would contain every candidate), an unknown
            ``strategy``, a negative ``seed``, or a user with fewer than
            ``n_negatives`` items outside their training and test items.
    """
    data = _Data(train, test, n_items, users, need_train=True)
    score_fn = _as_score_fn(model, n_items, int(data.users.max()))
    ks = _check_ks(k, n_items)
    names = _check_metrics(metrics)
    batch_size = _check_positive_int(batch_size, "batch_size")
    n_negatives = _check_positive_int(n_negatives, "n_negatives")
    if n_negatives > n_items - 1:
        raise ValueError(
            f"n_negatives={n_negatives} exceeds the number of real items ({n_items - 1})."
        )
    if max(ks) > n_negatives:
        raise ValueError(
            f"k={max(ks)} is larger than n_negatives={n_negatives}: the list would hold "
            "every candidate. Use more negatives or a smaller k."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    # Drawn once for all users, before batching, so results do not depend on batch_size.
    negatives = sample_negatives(
        data.users,
        n_negatives,
        data.seen + data.relevant,  # never a training or a test item of the user
        n_items,
        strategy=strategy,
        item_counts=np.bincount(train["item_idx"].to_numpy(), minlength=n_items),
        seed=int(seed),
    )
    values = _run(
        score_fn,
        data,
        ks=ks,
        names=names,
        batch_size=batch_size,
        exclude_seen=True,
        negatives=negatives,
    )
    protocol = (
        f"sampled ranking: test items among {n_negatives} {strategy}-sampled unseen "
        f"items per user (seed {seed}), ties pessimistic"
    )
    return _table(values, data.users, per_user, protocol)


def evaluate_ratings(
    predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    test: pd.DataFrame,
    *,
    rating_col: str = "rating",
    batch_size: int = 65_536,
) -> pd.DataFrame:
    """Rating-prediction error on ``test``: RMSE and MAE, in rating units.

    Args:
        predict_fn: ``predict_fn(users (n,) int64, items (n,) int64) -> (n,)`` float
            predicted ratings.
        test: encoded interactions with a ``rating_col`` column.
        rating_col: name of the true rating column.
        batch_size: pairs predicted per call.

    Returns:
        One row with the columns ``"RMSE"``, ``"MAE"`` and ``"ratings"`` (count).

    Raises:
        ValueError: empty ``test``, NaN ratings, or predictions of the wrong shape,
            non-numeric dtype or with NaN.
        KeyError: ``test`` lacks ``user_idx``, ``item_idx`` or ``rating_col``.
        TypeError: ``predict_fn`` is not callable.
    """
    if not callable(predict_fn):
        raise TypeError(
            f"predict_fn must be a callable (users, items) -> ratings, got "
            f"{type(predict_fn).__name__}."
        )
    check_interactions(test, "test")
    if rating_col not in test.columns:
        raise KeyError(f"test has no column {rating_col!r}; pass rating_col=<name of ratings>.")
    batch_size = _check_positive_int(batch_size, "batch_size")
    users = test["user_idx"].to_numpy(np.int64)
    items = test["item_idx"].to_numpy(np.int64)
    parts = []
    for start in range(0, len(users), batch_size):
        u, i = users[start : start + batch_size], items[start : start + batch_size]
        p = np.asarray(predict_fn(u, i))
        if p.shape != u.shape:
            p = p.reshape(-1) if p.size == u.size else p
            if p.shape != u.shape:
                raise ValueError(
                    f"predict_fn returned shape {p.shape} for {len(u)} pairs; return one "
                    "prediction per (user, item) pair."
                )
        if np.issubdtype(p.dtype, np.floating) and np.isnan(p).any():
            raise ValueError("predict_fn returned NaN predictions; check the model.")
        parts.append(p)
    pred = np.concatenate(parts)
    y = test[rating_col].to_numpy()
    table = pd.DataFrame([{"RMSE": M.rmse(y, pred), "MAE": M.mae(y, pred), "ratings": len(y)}])
    table.attrs["protocol"] = f"rating prediction on {len(y)} test ratings"
    return table
