"""Multi-task learning: one network predicts several behaviours of a (user, item) pair.

A recommender rarely has one goal. A platform logs clicks, long watches, likes
and purchases, and wants a probability for each. **Multi-task learning**
(Caruana, 1997) trains one network for all of them: the tasks share the lower
layers and each has its own output head, so a sparse task (a like) can borrow
what a dense one (an interaction) has learnt.

Two ways to share, both here:

* **shared bottom**: one network ``h = f(x)`` under every task's tower,
  ``p_t = sigmoid(tower_t(h))``;
* **MMoE**, Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): ``E`` expert
  networks ``f_e(x)`` and, per task, a softmax gate ``g_t(x) in R^E`` that mixes
  them, ``h_t = sum_e g_te(x) f_e(x)``, ``p_t = sigmoid(tower_t(h_t))``. Tasks
  that conflict can lean on different experts. A shared bottom is the special
  case of one expert (its gate is always 1).

The input ``x`` of a pair is the concatenation of the user's and the item's ID
embeddings and, optionally, fixed item features (e.g. genre multi-hot) and user
features (e.g. demographics). The loss is a weighted sum of per-task binary
cross-entropies, each averaged over the examples on which its label is defined:

    L = sum_t w_t * (sum_b m_bt * BCE(y_bt, p_bt)) / max(1, sum_b m_bt),

where ``m_bt`` is 1 if task ``t`` has a label on example ``b`` and 0 otherwise.
A masked example contributes neither loss nor gradient to its task, and a task
with ``w_t = 0`` leaves its tower untouched, so the same code trains the
single-task baselines (``task_weights=(1, 0)`` and ``(0, 1)``).

:func:`two_task_examples` builds the two MovieLens tasks used in chapter 8:
"interacts" (a rated pair, against sampled unrated items) and "likes" (rating
>= 4, defined only on rated pairs, masked on the sampled ones).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_book.models.base import (
    Recommender,
    check_interactions,
    check_nonnegative,
    check_positive_int,
    interaction_matrix,
)
from recsys_book.preprocessing import sample_negatives
from recsys_book.runtime import import_keras
from recsys_book.training import TrainingLog, fit_early_stopping

keras = import_keras()
ops = keras.ops

__all__ = ["ARCHITECTURES", "MultiTask", "MultiTaskNetwork", "masked_bce", "two_task_examples"]

ARCHITECTURES = ("mmoe", "shared_bottom")
TWO_TASKS = ("interact", "like")


# --------------------------------------------------------------------------- data


def two_task_examples(
    frame: pd.DataFrame,
    n_items: int,
    *,
    seen: sp.spmatrix | None = None,
    n_negatives: int = 1,
    like_threshold: float = 4.0,
    rating_col: str = "rating",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Training or evaluation examples for the tasks "interact" and "like".

    Every row of ``frame`` (a rated pair) gives one example with labels
    ``[1, rating >= like_threshold]``; for each of them ``n_negatives`` items the
    user has not rated (not stored in ``seen``) are drawn uniformly, each an
    example with labels ``[0, NaN]``: whether the user would like an item they
    never rated is unknown, so the "like" task is masked there.

    Args:
        frame: encoded ratings with ``user_idx``, ``item_idx`` and ``rating_col``.
        n_items: vocabulary size including padding.
        seen: ``(n_users, n_items)`` sparse matrix of the pairs that may not be
            drawn as negatives (default: those of ``frame``). For evaluation pass
            every rated pair (train and test), so that a negative is truly unrated.
        n_negatives: sampled unrated items per rated pair, ``>= 1``.
        like_threshold: ratings ``>=`` this count as "like".
        rating_col: column holding the ratings.
        seed: seed of the negative sampling.

    Returns:
        ``(pairs, labels)``: ``(n, 2) int64`` ``[user_idx, item_idx]`` and
        ``(n, 2) float32`` labels (columns "interact", "like"; NaN = undefined),
        with ``n = len(frame) * (1 + n_negatives)``; the rated pairs come first.

    Raises:
        KeyError: ``frame`` lacks the indices or ``rating_col``.
        ValueError: a bad argument, or a user with too few unrated items.
    """
    check_interactions(frame, "frame")
    if rating_col not in frame.columns:
        raise KeyError(
            f"frame has no {rating_col!r} column; the 'like' task needs explicit ratings "
            "(pass rating_col=... if they are stored under another name)."
        )
    n_items = check_positive_int("n_items", n_items)
    n_negatives = check_positive_int("n_negatives", n_negatives)
    users = frame["user_idx"].to_numpy(np.int64)
    items = frame["item_idx"].to_numpy(np.int64)
    ratings = frame[rating_col].to_numpy(np.float64)
    if not np.isfinite(ratings).all():
        raise ValueError(f"frame[{rating_col!r}] contains NaN or infinite values.")
    if seen is None:
        seen = interaction_matrix(frame, int(users.max()) + 1, n_items)
    negatives = sample_negatives(users, n_negatives, seen, n_items, seed=seed)
    pairs = np.concatenate(
        [
            np.stack([users, items], axis=1),
            np.stack([np.repeat(users, n_negatives), negatives.reshape(-1)], axis=1),
        ]
    )
    labels = np.full((len(pairs), 2), np.nan, np.float32)
    labels[:, 0] = 0.0
    labels[: len(frame), 0] = 1.0
    labels[: len(frame), 1] = (ratings >= like_threshold).astype(np.float32)
    return pairs, labels


def masked_bce(
    logits: np.ndarray, labels: np.ndarray, task_weights: Sequence[float]
) -> tuple[float, np.ndarray]:
    """The loss of the module docstring, in NumPy (for validation and checks).

    Args:
        logits: ``(n, T)`` predicted logits.
        labels: ``(n, T)`` labels in {0, 1}, NaN where undefined.
        task_weights: ``T`` weights ``w_t >= 0``.

    Returns:
        ``(total, per_task)``: the weighted loss and the ``(T,)`` per-task mean
        cross-entropies over defined labels (NaN for a task without any).
    """
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.float64)
    mask = ~np.isnan(labels)
    y = np.where(mask, labels, 0.0)
    bce = np.logaddexp(0.0, logits) - y * logits  # softplus(z) - y z, stable
    count = mask.sum(axis=0)
    with np.errstate(invalid="ignore"):
        per_task = np.where(mask, bce, 0.0).sum(axis=0) / count
    w = np.asarray(task_weights, np.float64)
    total = float(np.sum(w * np.where(count > 0, per_task, 0.0)))
    return total, per_task


# --------------------------------------------------------------------------- network


def _mlp(units: Sequence[int], seed: int, name: str, output: int | None = None):
    """ReLU ``Dense`` layers of ``units`` widths, then a linear ``Dense(output)`` if given."""
    glorot = keras.initializers.GlorotUniform
    layers = [
        keras.layers.Dense(
            u, activation="relu", kernel_initializer=glorot(seed=seed + k), name=f"{name}_{k}"
        )
        for k, u in enumerate(units)
    ]
    if output is not None:
        layers.append(
            keras.layers.Dense(
                output, kernel_initializer=glorot(seed=seed + 99), name=f"{name}_out"
            )
        )
    return keras.Sequential(layers, name=name)


class MultiTaskNetwork(keras.Model):
    """Keras model: ``(batch, 2)`` int ``[user, item]`` -> ``(batch, T)`` logits.

    ``E`` experts (``E = 1``, no gate: shared bottom) read the input ``x``; task
    ``t`` mixes them with its softmax gate and feeds the mix to its tower. Fixed
    feature tables are stored as non-trainable weights and looked up by index.

    ``fit`` expects ``y`` of shape ``(batch, 2T)``: the labels (0 where undefined)
    followed by the masks (1 = defined); ``compute_loss`` is the weighted masked
    cross-entropy of the module docstring.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        *,
        embedding_dim: int,
        n_tasks: int,
        n_experts: int,
        expert_units: tuple[int, ...],
        tower_units: tuple[int, ...],
        task_weights: Sequence[float],
        item_features: np.ndarray | None = None,
        user_features: np.ndarray | None = None,
        seed: int = 42,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_tasks = n_tasks
        self.n_experts = n_experts
        normal = keras.initializers.RandomNormal
        self.user_embedding = keras.layers.Embedding(
            n_users,
            embedding_dim,
            embeddings_initializer=normal(stddev=0.05, seed=seed),
            name="user_embedding",
        )
        self.item_embedding = keras.layers.Embedding(
            n_items,
            embedding_dim,
            embeddings_initializer=normal(stddev=0.05, seed=seed + 1),
            name="item_embedding",
        )
        self.item_table = (
            None if item_features is None else self._constant("item_table", item_features)
        )
        self.user_table = (
            None if user_features is None else self._constant("user_table", user_features)
        )
        self.experts = [
            _mlp(expert_units, seed + 100 * (e + 1), f"expert_{e}") for e in range(n_experts)
        ]
        self.gates = (
            [
                keras.layers.Dense(
                    n_experts,
                    kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 10_000 + t),
                    name=f"gate_{t}",
                )
                for t in range(n_tasks)
            ]
            if n_experts > 1
            else []
        )
        self.towers = [
            _mlp(tower_units, seed + 1000 * (t + 1), f"tower_{t}", output=1) for t in range(n_tasks)
        ]
        self.task_weights = self._constant("task_weights", np.asarray(task_weights, np.float32))

    def _constant(self, name: str, value: np.ndarray):
        value = np.asarray(value, np.float32)
        var = self.add_weight(
            shape=value.shape, initializer="zeros", trainable=False, name=name, dtype="float32"
        )
        var.assign(value)
        return var

    def _forward(self, pairs):
        """``(logits (B, T), gates (B, T, E))``."""
        pairs = ops.cast(pairs, "int32")
        users, items = pairs[:, 0], pairs[:, 1]
        parts = [self.user_embedding(users), self.item_embedding(items)]
        if self.item_table is not None:
            parts.append(ops.take(self.item_table, items, axis=0))
        if self.user_table is not None:
            parts.append(ops.take(self.user_table, users, axis=0))
        x = ops.concatenate(parts, axis=-1)
        experts = ops.stack([f(x) for f in self.experts], axis=1)  # (B, E, H)
        if self.gates:
            gates = ops.stack([ops.softmax(g(x), axis=-1) for g in self.gates], axis=1)
        else:
            gates = ops.ones((ops.shape(x)[0], self.n_tasks, 1), dtype=x.dtype)
        mixed = ops.einsum("bte,beh->bth", gates, experts)  # (B, T, H)
        logits = ops.concatenate(
            [tower(mixed[:, t, :]) for t, tower in enumerate(self.towers)], axis=-1
        )
        return logits, gates

    def call(self, pairs):
        return self._forward(pairs)[0]

    def gate_weights(self, pairs):
        """``(B, T, E)`` softmax gate weights of each task (all ones for a shared bottom)."""
        return self._forward(pairs)[1]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        t = self.n_tasks
        y = ops.cast(y, y_pred.dtype)
        labels, mask = y[:, :t], y[:, t:]
        bce = ops.softplus(y_pred) - labels * y_pred  # (B, T), stable BCE from logits
        per_task = ops.sum(mask * bce, axis=0) / ops.maximum(ops.sum(mask, axis=0), 1.0)
        return ops.sum(self.task_weights * per_task)


# --------------------------------------------------------------------------- recommender


def _as_table(value, rows: int, name: str) -> np.ndarray | None:
    """A dense ``(rows, f) float32`` feature table, or ``None``."""
    if value is None:
        return None
    if hasattr(value, "matrix") and sp.issparse(value.matrix):  # recsys_book ItemFeatures
        value = value.matrix
    table = value.toarray() if sp.issparse(value) else np.asarray(value)
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number):
        raise ValueError(
            f"{name} must be a 2-D numeric array ({rows}, n_features), got shape "
            f"{table.shape} and dtype {table.dtype}."
        )
    if table.shape[0] != rows:
        raise ValueError(
            f"{name} has {table.shape[0]} rows but the vocabulary has {rows} (padding row "
            "0 included); build it with the encoder's sizes."
        )
    if not np.isfinite(table).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return table.astype(np.float32)


def _units(name: str, value) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of positive ints, got {value!r}.")
    return tuple(check_positive_int(f"{name}[]", u) for u in value)


class MultiTask(Recommender):
    """Shared-bottom or MMoE model of two behaviours, "interact" and "like".

    ``fit(train, n_users, n_items)`` turns the rated pairs of ``train`` into
    examples with :func:`two_task_examples` and trains the network with the
    masked, weighted loss (Adam; early stopping on the same loss over
    ``validation`` if given, else a fixed number of epochs).

    Args:
        architecture: ``"mmoe"`` or ``"shared_bottom"`` (one expert, no gate).
        task_weights: ``(w_interact, w_like)``, each ``>= 0``, not both 0;
            ``(1, 0)`` and ``(0, 1)`` are the single-task baselines.
        n_experts: experts of MMoE, ``>= 2`` (ignored by ``"shared_bottom"``).
        embedding_dim: size of the user and item ID embeddings.
        expert_units: ReLU widths of each expert (of the shared bottom).
        tower_units: ReLU widths of each task tower before its output logit.
        item_features: optional ``(n_items, f)`` fixed item features (an
            ``ItemFeatures``, sparse matrix or array; row 0 = padding).
        user_features: optional ``(n_users, g)`` fixed user features.
        n_negatives: sampled unrated items per rated training pair.
        like_threshold: ratings ``>=`` this are "like".
        rating_col: column of ``train`` holding the ratings.
        learning_rate: Adam step size ``> 0``.
        epochs: maximum passes over the examples.
        patience: epochs without validation improvement before stopping.
        batch_size: examples per gradient step.
        score_task: what ``score`` ranks by: ``"interact"``, ``"like"``, or
            ``"product"`` = P(interact) * P(like), the probability of
            "interacts and likes" (ESMM's entire-space estimate).
        seed: seeds weights, negatives and shuffling (same seed, same model on CPU).

    The attributes below are set by ``fit``.

    Attributes:
        network_: the trained :class:`MultiTaskNetwork`.
        log_: the :class:`~recsys_book.training.TrainingLog` (losses per epoch).
        fit_seconds_: wall time of ``fit``.

    Raises:
        ValueError: a hyper-parameter out of range or an unknown option.
        TypeError: ``expert_units``/``tower_units`` are not sequences of ints.
    """

    task_names = TWO_TASKS

    def __init__(
        self,
        architecture: str = "mmoe",
        task_weights: Sequence[float] = (1.0, 1.0),
        n_experts: int = 4,
        embedding_dim: int = 32,
        expert_units: Sequence[int] = (64,),
        tower_units: Sequence[int] = (32,),
        item_features=None,
        user_features=None,
        n_negatives: int = 1,
        like_threshold: float = 4.0,
        rating_col: str = "rating",
        learning_rate: float = 0.002,
        epochs: int = 10,
        patience: int = 2,
        batch_size: int = 1024,
        score_task: str = "product",
        seed: int = 42,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture={architecture!r} is not one of {ARCHITECTURES}.")
        self.architecture = architecture
        if isinstance(task_weights, str) or len(task_weights) != len(TWO_TASKS):
            raise ValueError(
                f"task_weights must give one weight per task {TWO_TASKS}, got {task_weights!r}."
            )
        self.task_weights = tuple(check_nonnegative("task_weights[]", w) for w in task_weights)
        if sum(self.task_weights) == 0:
            raise ValueError("task_weights are all 0: at least one task must be trained.")
        self.n_experts = check_positive_int("n_experts", n_experts)
        if architecture == "mmoe" and self.n_experts < 2:
            raise ValueError(
                "MMoE needs n_experts >= 2; one expert without a gate is "
                "architecture='shared_bottom'."
            )
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.expert_units = _units("expert_units", expert_units)
        self.tower_units = _units("tower_units", tower_units)
        if not self.expert_units:
            raise ValueError("expert_units must hold at least one width.")
        self.item_features = item_features
        self.user_features = user_features
        self.n_negatives = check_positive_int("n_negatives", n_negatives)
        self.like_threshold = float(like_threshold)
        self.rating_col = rating_col
        self.learning_rate = check_nonnegative("learning_rate", learning_rate, strict=True)
        self.epochs = check_positive_int("epochs", epochs)
        self.patience = check_positive_int("patience", patience)
        self.batch_size = check_positive_int("batch_size", batch_size)
        if score_task not in (*TWO_TASKS, "product"):
            raise ValueError(f"score_task={score_task!r} is not one of {(*TWO_TASKS, 'product')}.")
        self.score_task = score_task
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        self.seed = int(seed)

    # ------------------------------------------------------------------ training

    def fit(
        self,
        train: pd.DataFrame,
        n_users: int | None = None,
        n_items: int | None = None,
        validation: pd.DataFrame | None = None,
    ):
        """Learn from the rated pairs of ``train``; returns ``self``.

        Args:
            train: encoded ratings (``user_idx``, ``item_idx``, ``rating_col``).
            n_users, n_items: vocabulary sizes (padding included); default max + 1.
            validation: optional encoded ratings after (or apart from) ``train``;
                its examples (negatives drawn among items rated in neither part)
                choose the epoch by the weighted masked loss.

        Raises:
            KeyError: ``train`` or ``validation`` lacks a column.
            ValueError: feature tables of the wrong size, or bad ratings.
        """
        if validation is not None:
            check_interactions(validation, "validation")
        self._validation = validation
        try:
            return super().fit(train, n_users, n_items)
        finally:
            del self._validation

    def _fit(self, train: pd.DataFrame) -> None:
        start = time.perf_counter()
        item_table = _as_table(self.item_features, self.n_items, "item_features")
        user_table = _as_table(self.user_features, self.n_users, "user_features")
        pairs, labels = two_task_examples(
            train,
            self.n_items,
            seen=self.seen_,
            n_negatives=self.n_negatives,
            like_threshold=self.like_threshold,
            rating_col=self.rating_col,
            seed=self.seed,
        )
        self.network_ = MultiTaskNetwork(
            self.n_users,
            self.n_items,
            embedding_dim=self.embedding_dim,
            n_tasks=len(TWO_TASKS),
            n_experts=self.n_experts if self.architecture == "mmoe" else 1,
            expert_units=self.expert_units,
            tower_units=self.tower_units,
            task_weights=self.task_weights,
            item_features=item_table,
            user_features=user_table,
            seed=self.seed,
        )
        self.network_.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        mask = ~np.isnan(labels)
        y = np.concatenate([np.where(mask, labels, 0.0), mask], axis=1).astype(np.float32)
        x = pairs.astype(np.int32)
        if self._validation is not None:
            val = self._validation
            seen = interaction_matrix(pd.concat([train, val]), self.n_users, self.n_items)
            val_pairs, val_labels = two_task_examples(
                val,
                self.n_items,
                seen=seen,
                n_negatives=self.n_negatives,
                like_threshold=self.like_threshold,
                rating_col=self.rating_col,
                seed=self.seed + 1,
            )
            val_x = val_pairs.astype(np.int32)

            def validate(network) -> float:
                logits = network.predict(val_x, batch_size=65_536, verbose=0)
                return masked_bce(ops.convert_to_numpy(logits), val_labels, self.task_weights)[0]

            max_epochs, patience, restore = self.epochs, self.patience, True
        else:  # fixed epochs: a constant score never improves, and nothing is restored

            def validate(network) -> float:
                return 0.0

            max_epochs, patience, restore = self.epochs, self.epochs, False
        self.log_: TrainingLog = fit_early_stopping(
            self.network_,
            x,
            y,
            validate,
            max_epochs=max_epochs,
            patience=patience,
            batch_size=self.batch_size,
            seed=self.seed,
            restore_best=restore,
        )
        self.fit_seconds_ = time.perf_counter() - start

    # ------------------------------------------------------------------ prediction

    def _in_chunks(self, fn, pairs: np.ndarray, width: tuple[int, ...], chunk: int = 65_536):
        out = [
            ops.convert_to_numpy(fn(pairs[s : s + chunk])) for s in range(0, len(pairs), chunk)
        ]  # a loop over chunks of pairs, not over pairs
        return np.concatenate(out) if out else np.zeros((0, *width), np.float32)

    def predict(self, users, items) -> np.ndarray:
        """Probabilities of each task for the pairs ``(users[n], items[n])``: ``(n, 2) float32``.

        Column 0 is P(interact), column 1 P(like) (as trained: on rated pairs).

        Raises:
            RuntimeError: the model is not fitted.
            ValueError: ``users``/``items`` not equal-length 1-D integer arrays in range.
        """
        pairs = self._check_pairs(users, items)
        logits = self._in_chunks(self.network_, pairs, (len(TWO_TASKS),))
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def gate_weights(self, users, items) -> np.ndarray:
        """Each task's gate over the experts for the given pairs: ``(n, 2, E) float32``.

        Rows sum to 1. For ``"shared_bottom"`` ``E = 1`` and every weight is 1.

        Raises:
            RuntimeError / ValueError: as :meth:`predict`.
        """
        pairs = self._check_pairs(users, items)
        e = self.network_.n_experts
        return self._in_chunks(self.network_.gate_weights, pairs, (len(TWO_TASKS), e))

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items)`` probability of ``score_task`` for every item."""
        n = self.n_items
        u = np.repeat(users, n - 1)
        i = np.tile(np.arange(1, n), len(users))
        p = self.predict(u, i) if len(users) else np.zeros((0, 2), np.float32)
        if self.score_task == "product":
            s = p[:, 0] * p[:, 1]
        else:
            s = p[:, TWO_TASKS.index(self.score_task)]
        out = np.zeros((len(users), n), np.float32)
        out[:, 1:] = s.reshape(len(users), n - 1)
        return out

    def __repr__(self) -> str:
        experts = f", n_experts={self.n_experts}" if self.architecture == "mmoe" else ""
        return (
            f"MultiTask(architecture={self.architecture!r}{experts}, "
            f"task_weights={self.task_weights}, embedding_dim={self.embedding_dim})"
        )
