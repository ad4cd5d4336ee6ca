"""Scaling measurements: parameters, data and compute of a sequence recommender.

A *scaling curve* plots a model's quality against one resource -- parameters
``N``, training data ``D`` or training compute ``C`` -- with the others held
fixed. This module holds the four pieces a scaling experiment needs:

* :func:`sasrec_params`: the closed-form parameter count of
  :class:`~recsys_book.models.sasrec.SASRec`, split as
  :func:`recsys_book.params.count_params` splits a built model (embedding
  tables, dense kernels, layer norms), and :func:`training_flops`, the
  ``6 N D``-style estimate of training compute that goes with it;
* :func:`subsample_users`: nested subsets of the training users, for the data axis;
* :func:`run_sweep`: fit one model per setting and return a tidy table of
  quality, parameters and seconds;
* :func:`fit_power_law` and :func:`bootstrap_ci`: a log-log slope with its
  standard error, and a confidence interval of a mean over users -- so that a
  trend can be told from noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recsys_book.models.base import check_interactions, check_positive_int
from recsys_book.params import ParamCount, count_params

__all__ = [
    "PowerLawFit",
    "bootstrap_ci",
    "fit_power_law",
    "run_sweep",
    "sasrec_params",
    "subsample_users",
    "training_flops",
]


# --------------------------------------------------------------------------- counting


def sasrec_params(
    n_items: int, embedding_dim: int, n_layers: int, max_len: int, d_ff: int | None = None
) -> ParamCount:
    """Trainable parameters of SASRec (the package's transformer), in closed form.

    With ``V = n_items`` (padding row included), ``L = max_len``, ``d =
    embedding_dim`` and ``f = d_ff`` (``4 d`` by default), the groups are

    * ``embedding = (V + L) d``: item table (shared with the output layer) and
      positional table;
    * ``dense = n_layers (4 d^2 + 2 d f + 5 d + f)``: per block the query/key/value
      map ``d x 3d`` and output map ``d x d`` with biases, and the feed-forward
      network ``d x f`` and ``f x d`` with biases (``12 d^2 + 9 d`` for ``f = 4d``);
    * ``other = (2 n_layers + 1) 2 d``: scale and shift of two layer norms per
      block and one final layer norm.

    Raises:
        ValueError: a size that is not a positive integer.
    """
    v = check_positive_int("n_items", n_items)
    d = check_positive_int("embedding_dim", embedding_dim)
    n_layers = check_positive_int("n_layers", n_layers)
    length = check_positive_int("max_len", max_len)
    f = 4 * d if d_ff is None else check_positive_int("d_ff", d_ff)
    dense = n_layers * (4 * d * d + 2 * d * f + 5 * d + f)
    return ParamCount(embedding=(v + length) * d, dense=dense, other=(2 * n_layers + 1) * 2 * d)


def training_flops(
    n_items: int,
    embedding_dim: int,
    n_layers: int,
    positions: int,
    context: int,
    d_ff: int | None = None,
    scored_items: int | None = None,
) -> float:
    """Estimated floating-point operations to train SASRec on ``positions`` examples.

    A multiply-add counts as 2 operations, and the backward pass costs about
    twice the forward pass, so training costs ``3 x`` the forward operations,

        C = 6 D (N_blocks + n_layers 2 W d + d V_scored),

    where ``D = positions`` (next-item examples seen, summed over epochs),
    ``N_blocks`` the dense weights of the transformer blocks, ``2 W d`` per block
    the attention scores and weighted sum over ``W = context`` keys, and ``d
    V_scored`` the output logits (``V_scored = n_items`` for the full softmax,
    the number of sampled items otherwise). Embedding *lookups* cost no
    multiply-adds, so the input side of the item table is free; its use as the
    output layer is not. Biases, layer norms and the softmax itself are ignored.

    Raises:
        ValueError: a size that is not a positive integer.
    """
    d = check_positive_int("embedding_dim", embedding_dim)
    n_layers = check_positive_int("n_layers", n_layers)
    w = check_positive_int("context", context)
    d_positions = check_positive_int("positions", positions)
    scored = check_positive_int("scored_items", n_items if scored_items is None else scored_items)
    f = 4 * d if d_ff is None else check_positive_int("d_ff", d_ff)
    blocks = n_layers * (4 * d * d + 2 * d * f)
    return 6.0 * d_positions * (blocks + n_layers * 2 * w * d + d * scored)


# --------------------------------------------------------------------------- data axis


def subsample_users(frame: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """The interactions of a random ``fraction`` of the users in ``frame`` (whole histories).

    Users are taken in the order of one permutation fixed by ``seed``, so the
    subsets are *nested*: the users of ``fraction=0.25`` are among those of
    ``fraction=0.5``. At least one user is kept.

    Args:
        frame: encoded interactions (``user_idx``, ``item_idx``, ...).
        fraction: share of users to keep, in ``(0, 1]``.
        seed: seed of the permutation.

    Returns:
        The rows of ``frame`` whose user is kept, in their original order.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1]``; TypeError/KeyError/ValueError:
            ``frame`` is not an encoded, non-empty interaction frame.
    """
    check_interactions(frame, "frame")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float | np.number):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}.")
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}.")
    users = np.unique(frame["user_idx"].to_numpy())
    order = np.random.default_rng(seed).permutation(users)
    keep = order[: max(1, round(float(fraction) * len(users)))]
    return frame[frame["user_idx"].isin(keep)]


# --------------------------------------------------------------------------- sweep


def _log_loss(model, histories: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``-log p(target | history)`` under the softmax over all real items, per row (nats)."""
    logits = model.score_histories(histories).astype(np.float64)[:, 1:]
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return log_z - logits[np.arange(len(targets)), targets - 1]


def run_sweep(
    make_model: Callable[..., Any],
    points: Sequence[Mapping[str, Any]],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    *,
    n_users: int,
    n_items: int,
    history: pd.DataFrame | None = None,
    subset_seed: int = 0,
    per_user: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Fit one sequence model per setting and measure quality, size and time.

    Each point is a dict of keyword arguments for ``make_model`` (which returns
    an unfitted :class:`~recsys_book.models.sequential.SequentialRecommender`),
    plus two optional keys for ``fit``: ``"fraction"`` -- train on the nested
    subset :func:`subsample_users` ``(train, fraction, subset_seed)`` and choose
    the epoch on those users' validation items -- and ``"patience"`` (stop after
    that many epochs without a better validation NDCG@10). Every model is then evaluated on
    **all** users of ``test``, reading each user's history from ``history``
    (default: ``train`` and ``validation`` together) -- the same test users and
    histories for every point, whatever it was trained on.

    Args:
        make_model: ``make_model(**point) -> model`` (without ``"fraction"`` and
            ``"patience"``).
        points: the settings, e.g. ``[{"embedding_dim": 16}, {"embedding_dim": 32}]``.
        train, validation, test: encoded interactions with an order column
            (a leave-one-out :class:`~recsys_book.preprocessing.Split`'s parts).
        n_users, n_items: vocabulary sizes (padding included).
        history: where test-time histories are read; ``None``: train + validation.
        subset_seed: seed of the user subsets.
        per_user: also return the per-user test metrics.

    Returns:
        One row per point: the point's settings; ``parameters``,
        ``embedding_params``, ``non_embedding_params``; ``train_users`` and
        ``train_positions`` (next-item examples per epoch); ``epochs``,
        ``best_epoch``, ``fit_seconds`` (wall time of ``fit``, validation
        included), ``first_epoch_seconds`` (which includes building the graph or
        compiling it) and ``epoch_seconds`` (median training time of the later
        epochs); ``train_loss`` and
        ``val_NDCG@10`` at the best epoch; test ``HR@10``, ``NDCG@10`` and
        ``log_loss`` (mean ``-log p(test item)`` in nats) with standard errors
        over users (``*_se``). With ``per_user``, also a long frame with columns
        ``point`` (row of the first table), ``user_idx``, ``HR@10``, ``NDCG@10``,
        ``log_loss``.

    Raises:
        ValueError: no points, a point that is not a mapping, or a bad ``fraction``.
        TypeError: ``make_model`` does not return a sequence recommender.
    """
    from recsys_book.evaluation import evaluate
    from recsys_book.models.sequential import SequentialRecommender

    if len(points) == 0:
        raise ValueError("points is empty: pass at least one setting, e.g. [{}].")
    for c, name in ((train, "train"), (validation, "validation"), (test, "test")):
        check_interactions(c, name)
    history = pd.concat([train, validation]) if history is None else history
    test_users = np.sort(test["user_idx"].to_numpy())
    targets = test.set_index("user_idx").loc[test_users, "item_idx"].to_numpy()
    rows, per_user_rows = [], []
    for i, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise ValueError(f"points[{i}] must be a dict of settings, got {point!r}.")
        kwargs = dict(point)
        fraction = kwargs.pop("fraction", 1.0)
        patience = kwargs.pop("patience", None)
        part = train if fraction == 1.0 else subsample_users(train, fraction, subset_seed)
        users = np.unique(part["user_idx"].to_numpy())
        val = validation[validation["user_idx"].isin(users)]
        model = make_model(**kwargs)
        if not isinstance(model, SequentialRecommender):
            raise TypeError(
                f"make_model must return a SequentialRecommender, got {type(model).__name__}."
            )
        start = time.perf_counter()
        model.fit(part, n_users, n_items, validation=val, patience=patience)
        fit_seconds = time.perf_counter() - start
        best = model.history_[model.best_epoch_ - 1]
        seconds = [h["seconds"] for h in model.history_]
        table = evaluate(
            model.scorer(history), history, test, n_items=n_items, metrics=("HR", "NDCG"),
            per_user=True,
        )  # fmt: skip
        table = table.set_index("user_idx").loc[test_users]
        loss = _log_loss(model, model.build_histories(history)[test_users], targets)
        counted = count_params(model)
        lengths = part.groupby("user_idx").size().to_numpy()
        record = {
            **point,
            "fraction": float(fraction),
            "parameters": counted.total,
            "embedding_params": counted.embedding,
            "non_embedding_params": counted.total - counted.embedding,
            "train_users": len(users),
            "train_positions": int(np.minimum(lengths - 1, model.max_len).sum()),
            "epochs": len(model.history_),
            "best_epoch": model.best_epoch_,
            "fit_seconds": fit_seconds,
            "first_epoch_seconds": seconds[0],
            "epoch_seconds": float(np.median(seconds[1:] if len(seconds) > 1 else seconds)),
            "train_loss": best["loss"],
            "val_NDCG@10": best["val_NDCG@10"],
        }
        n = len(test_users)
        for name, values in (
            ("HR@10", table["HR@10"].to_numpy()),
            ("NDCG@10", table["NDCG@10"].to_numpy()),
            ("log_loss", loss),
        ):
            record[name] = float(values.mean())
            record[f"{name}_se"] = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        rows.append(record)
        if per_user:
            per_user_rows.append(
                pd.DataFrame(
                    {"point": i, "user_idx": test_users, "HR@10": table["HR@10"].to_numpy(),
                     "NDCG@10": table["NDCG@10"].to_numpy(), "log_loss": loss}
                )
            )  # fmt: skip
    result = pd.DataFrame(rows)
    return (result, pd.concat(per_user_rows, ignore_index=True)) if per_user else result


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class PowerLawFit:
    """``y = prefactor * x ** exponent``, fitted as a straight line in log-log space.

    Attributes:
        exponent: the slope of ``log y`` on ``log x``.
        exponent_se: its standard error (``nan`` with two points).
        prefactor: ``y`` at ``x = 1``.
        r2: share of the variance of ``log y`` explained by the line.
        n: number of points.
    """

    exponent: float
    exponent_se: float
    prefactor: float
    r2: float
    n: int

    def predict(self, x) -> np.ndarray:
        """``prefactor * x ** exponent`` for an array ``x > 0``."""
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """``level`` confidence interval of the exponent (Student t, ``n - 2`` d.o.f.)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {level!r}.")
        if self.n < 3:
            return (float("nan"), float("nan"))
        t = stats.t.ppf(0.5 + level / 2, self.n - 2)
        return (self.exponent - t * self.exponent_se, self.exponent + t * self.exponent_se)


def fit_power_law(x, y) -> PowerLawFit:
    """Least-squares fit of ``log y = log a + b log x``: the power law ``y = a x^b``.

    A power law is a straight line on log-log axes; its slope ``b`` is the
    exponent: multiplying ``x`` by ``k`` multiplies ``y`` by ``k^b``.

    Args:
        x, y: 1-D arrays of the same length (at least 2), all finite and ``> 0``.

    Returns:
        A :class:`PowerLawFit`.

    Raises:
        ValueError: different lengths, fewer than two points, values ``<= 0`` or not
            finite, or all ``x`` equal.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}.")
    if x.size < 2:
        raise ValueError(f"a power law needs at least two points, got {x.size}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and x.min() > 0 and y.min() > 0):
        raise ValueError("x and y must be finite and > 0 (they are fitted on log scales).")
    lx, ly = np.log(x), np.log(y)
    if np.ptp(lx) == 0:
        raise ValueError("all x are equal; a slope needs at least two different x.")
    fit = stats.linregress(lx, ly)
    se = float(fit.stderr) if x.size > 2 else float("nan")
    return PowerLawFit(
        float(fit.slope), se, float(np.exp(fit.intercept)), float(fit.rvalue**2), int(x.size)
    )


def bootstrap_ci(
    values, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    ``values`` are per-user metrics (``evaluate(..., per_user=True)``); for the
    difference of two models on the same users, pass the per-user differences
    (a *paired* interval). Users are resampled with replacement ``n_boot`` times.

    Raises:
        ValueError: fewer than two values, non-finite values, ``n_boot`` not a
            positive integer, or ``level`` outside ``(0, 1)``.
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError(f"need at least two finite values, got {v.size} (or non-finite ones).")
    n_boot = check_positive_int("n_boot", n_boot)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}.")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)
