"""Early stopping for any Keras model, with reproducible shuffling.

A model trained for a fixed number of epochs either stops too early or fits the
noise of its training data. **Early stopping** watches a validation score after
every epoch, keeps the weights of the best epoch, and stops once the score has
not improved for ``patience`` epochs (Prechelt, "Early Stopping -- But When?",
1998). The validation data should come *after* the training data in time (a
temporal split of the training part, :func:`recsys_book.preprocessing.temporal_split`),
so that the epoch count is chosen the way it will be used: on the future.

Keras has an ``EarlyStopping`` callback, but it watches only numbers that
``fit`` logs. :func:`fit_early_stopping` accepts any ``validate(network) ->
float``: a rating RMSE (:func:`validation_rmse`) or a full-ranking NDCG from
:func:`recsys_book.evaluation.evaluate`. It also shuffles with a seeded NumPy
generator, so the same seed gives the same batches on every backend, and it
stops at once when the training loss becomes NaN or infinite (a diverging
learning rate), saying so in the returned :class:`TrainingLog`.

Only ``keras`` and NumPy are used, so the helpers run unchanged on TensorFlow,
JAX and PyTorch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops

__all__ = ["TrainingLog", "fit_early_stopping", "validation_rmse"]

Inputs = np.ndarray | Mapping[str, np.ndarray]


@dataclass
class TrainingLog:
    """What :func:`fit_early_stopping` did, epoch by epoch.

    Attributes:
        train_loss: mean training loss of each epoch run (``compute_loss`` units).
        val_score: validation score after each epoch (``nan`` for an epoch whose
            training loss was not finite).
        best_epoch: 1-based epoch with the best validation score (0 if none was
            finite); its weights are the network's when ``restore_best=True``.
        best_score: the validation score of ``best_epoch`` (``nan`` if none).
        mode: ``"min"`` (lower is better) or ``"max"``.
        diverged: the training loss became NaN or infinite; training stopped there.
        seconds: wall time of the whole run.
    """

    train_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("nan")
    mode: str = "min"
    diverged: bool = False
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        """Number of epochs trained before stopping."""
        return len(self.train_loss)

    def __str__(self) -> str:
        if self.diverged:
            return f"diverged in epoch {self.epochs_run} (training loss {self.train_loss[-1]})"
        return (
            f"best epoch {self.best_epoch} of {self.epochs_run} run "
            f"(validation {self.best_score:.4f}, {self.mode} is best)"
        )


def _n_rows(x: Inputs, name: str) -> int:
    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"{name} is an empty mapping; give at least one input array.")
        sizes = {k: len(v) for k, v in x.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"the arrays of {name} differ in length: {sizes}.")
        return next(iter(sizes.values()))
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a NumPy array or a dict of NumPy arrays, got {type(x).__name__}."
        )
    return len(x)


def _take(x: Inputs, rows: np.ndarray) -> Inputs:
    if isinstance(x, Mapping):
        return {k: np.asarray(v)[rows] for k, v in x.items()}
    return x[rows]


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def fit_early_stopping(
    network: keras.Model,
    x: Inputs,
    y: np.ndarray | None,
    validate: Callable[[keras.Model], float],
    *,
    max_epochs: int = 100,
    patience: int = 3,
    min_delta: float = 0.0,
    mode: str = "min",
    batch_size: int = 512,
    seed: int = 0,
    restore_best: bool = True,
) -> TrainingLog:
    """Train a compiled Keras model epoch by epoch until validation stops improving.

    Each epoch: the rows of ``x`` (and ``y``) are shuffled by
    ``numpy.random.default_rng(seed)``, the network is fitted for one pass with
    ``shuffle=False``, and ``validate(network)`` is called. An epoch *improves*
    when its score beats the best so far by more than ``min_delta``. Training
    stops after ``patience`` epochs in a row without improvement, after
    ``max_epochs``, or as soon as the epoch's training loss is NaN or infinite.

    Args:
        network: a compiled ``keras.Model`` (any backend).
        x: training inputs, ``(n, ...)`` array or dict of ``(n, ...)`` arrays.
        y: training targets ``(n, ...)``, or ``None`` for models whose
            ``compute_loss`` needs only ``x`` (e.g. pairwise losses).
        validate: ``validate(network) -> float``, the validation score.
        max_epochs: upper bound on the epochs run.
        patience: epochs in a row without improvement after which training
            stops, ``>= 1`` (as in Keras's ``EarlyStopping``).
        min_delta: smallest change that counts as an improvement, ``>= 0``.
        mode: ``"min"`` if lower scores are better (RMSE, loss), ``"max"`` if
            higher are better (NDCG, recall).
        batch_size: rows per gradient step.
        seed: seed of the shuffling; the same seed and initial weights give the
            same batches on every backend.
        restore_best: set the network's weights back to those of the best epoch.

    Returns:
        A :class:`TrainingLog` with the curves, the best epoch and whether the
        run diverged.

    Raises:
        ValueError: the network is not compiled, an argument is out of range,
            ``x`` and ``y`` differ in length or are empty, or ``validate``
            returns something that is not a real number.
        TypeError: ``validate`` is not callable, or ``x`` is not an array/dict.
    """
    if not isinstance(network, keras.Model):
        raise TypeError(f"network must be a keras.Model, got {type(network).__name__}.")
    if not getattr(network, "compiled", False):
        raise ValueError("network is not compiled; call network.compile(optimizer=...) first.")
    if not callable(validate):
        raise TypeError(
            f"validate must be a callable network -> float, got {type(validate).__name__}."
        )
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
    max_epochs = _positive_int("max_epochs", max_epochs)
    patience = _positive_int("patience", patience)
    batch_size = _positive_int("batch_size", batch_size)
    seed = _positive_int("seed", seed, minimum=0)
    if isinstance(min_delta, bool) or not np.isfinite(min_delta) or min_delta < 0:
        raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}.")
    n = _n_rows(x, "x")
    if n == 0:
        raise ValueError("x has no rows: there is nothing to train on.")
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"x has {n} rows but y has {len(y)}; give one target per row.")

    sign = 1.0 if mode == "min" else -1.0  # compare sign * score, lower is better
    log = TrainingLog(mode=mode)
    best_weights, waited = None, 0
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for epoch in range(1, max_epochs + 1):  # a loop over epochs; each epoch is batched
        order = rng.permutation(n)
        history = network.fit(
            _take(x, order),
            None if y is None else y[order],
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        loss = float(history.history["loss"][-1])
        log.train_loss.append(loss)
        if not np.isfinite(loss):
            log.diverged = True
            log.val_score.append(float("nan"))
            break
        score = validate(network)
        if isinstance(score, bool) or not isinstance(score, int | float | np.number):
            raise ValueError(
                f"validate returned {score!r}; it must return one real number per call."
            )
        score = float(score)
        log.val_score.append(score)
        if np.isfinite(score) and (
            log.best_epoch == 0 or sign * score < sign * log.best_score - min_delta
        ):
            log.best_epoch, log.best_score, waited = epoch, score, 0
            if restore_best:
                best_weights = [np.array(w) for w in network.get_weights()]
        else:
            waited += 1
            if waited >= patience:
                break
    if restore_best and best_weights is not None:
        network.set_weights(best_weights)
    log.seconds = time.perf_counter() - start
    return log


def validation_rmse(
    x: Inputs, ratings: np.ndarray, *, batch_size: int = 65_536
) -> Callable[[keras.Model], float]:
    """A ``validate`` function: root mean squared error of ``network(x)`` against ``ratings``.

    Args:
        x: validation inputs, e.g. ``(n, 2)`` int ``[user_idx, item_idx]`` pairs.
        ratings: ``(n,)`` true ratings, in rating units.
        batch_size: rows predicted per call (memory only; the result is the same).

    Returns:
        ``validate(network) -> float``, the RMSE in rating units (use ``mode="min"``).

    Raises:
        ValueError: empty or non-finite ``ratings``, or lengths that differ.
    """
    ratings = np.asarray(ratings, dtype=np.float64).reshape(-1)
    n = _n_rows(x, "x")
    if n == 0 or len(ratings) != n:
        raise ValueError(
            f"x has {n} rows and ratings {len(ratings)}; give one rating per row (and at least one)."
        )
    if not np.isfinite(ratings).all():
        raise ValueError("ratings contain NaN or infinite values.")
    batch_size = _positive_int("batch_size", batch_size)

    def validate(network: keras.Model) -> float:
        pred = network.predict(x, batch_size=batch_size, verbose=0)
        pred = np.asarray(ops.convert_to_numpy(pred), dtype=np.float64).reshape(-1)
        return float(np.sqrt(np.mean((pred - ratings) ** 2)))

    return validate
