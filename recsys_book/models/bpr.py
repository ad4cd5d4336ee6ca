"""BPR-MF: matrix factorisation trained to rank (Rendle et al., 2009).

Implicit feedback says what a user interacted with, never what they disliked.
BPR turns it into pairwise preferences: a user ``u`` prefers an item ``i``
they interacted with over an item ``j`` they did not. With the score

    s(u, i) = p_u . q_i + b_i,    x_uij = s(u, i) - s(u, j),

maximising the likelihood ``prod sigma(x_uij)`` under a Gaussian prior on the
parameters gives the loss, per sampled triplet ``(u, i, j)``,

    -log sigma(x_uij) + l2 (||p_u||^2 + ||q_i||^2 + ||q_j||^2 + b_i^2 + b_j^2),

averaged over a mini-batch and minimised with Adam. Each epoch pairs every
training interaction with a fresh negative ``j`` drawn uniformly from the
items the user has not interacted with.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys_book.models.base import Recommender, check_nonnegative, check_positive_int
from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops


def sample_triplets(
    pairs: np.ndarray, n_items: int, rng: np.random.Generator, max_rounds: int = 50
) -> np.ndarray:
    """One negative per positive: ``(n, 2)`` ``[u, i]`` -> ``(n, 3)`` int32 ``[u, i, j]``.

    ``j`` is uniform over ``1..n_items-1`` minus the items of ``u`` in ``pairs``,
    drawn by vectorised rejection sampling (``max_rounds`` redraws of the
    collisions; a user who has seen nearly every item may keep a collision).
    """
    keys = np.unique(pairs[:, 0].astype(np.int64) * n_items + pairs[:, 1])
    users = pairs[:, 0].astype(np.int64)
    neg = rng.integers(1, n_items, size=len(pairs))
    todo = np.arange(len(pairs))
    for _ in range(max_rounds):  # rounds of redraws, each vectorised
        k = users[todo] * n_items + neg[todo]
        pos = np.searchsorted(keys, k).clip(max=len(keys) - 1)
        todo = todo[keys[pos] == k]
        if todo.size == 0:
            break
        neg[todo] = rng.integers(1, n_items, size=todo.size)
    return np.column_stack([pairs[:, 0], pairs[:, 1], neg]).astype(np.int32)


class BPRNetwork(keras.Model):
    """Keras model: ``(batch, 3)`` int ``[u, i, j]`` -> ``(batch,)`` ``x_uij``.

    ``compute_loss`` is ``mean(softplus(-x_uij))`` (= ``-log sigma(x_uij)``)
    plus ``l2`` times the mean squared norm of the parameters in the batch.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_factors: int,
        l2: float,
        init_std: float,
        seed: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.l2 = l2
        normal = keras.initializers.RandomNormal
        self.user_factors = keras.layers.Embedding(
            n_users, n_factors, embeddings_initializer=normal(stddev=init_std, seed=seed)
        )
        self.item_factors = keras.layers.Embedding(
            n_items, n_factors, embeddings_initializer=normal(stddev=init_std, seed=seed + 1)
        )
        self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros")

    def _parts(self, triplets):
        p = self.user_factors(triplets[:, 0])
        qi, qj = self.item_factors(triplets[:, 1]), self.item_factors(triplets[:, 2])
        bi = ops.squeeze(self.item_bias(triplets[:, 1]), -1)
        bj = ops.squeeze(self.item_bias(triplets[:, 2]), -1)
        return p, qi, qj, bi, bj

    def call(self, triplets):
        p, qi, qj, bi, bj = self._parts(triplets)
        return ops.sum(p * (qi - qj), axis=-1) + bi - bj

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        p, qi, qj, bi, bj = self._parts(x)
        penalty = (
            ops.sum(p * p, axis=-1)
            + ops.sum(qi * qi, axis=-1)
            + ops.sum(qj * qj, axis=-1)
            + bi * bi
            + bj * bj
        )
        return ops.mean(ops.softplus(-y_pred)) + self.l2 * ops.mean(penalty)


class BPR(Recommender):
    """Bayesian personalised ranking with a matrix-factorisation scorer.

    Every row of ``train`` counts as a positive interaction (duplicates are
    merged); filter or binarise ratings before ``fit`` if you want otherwise.
    The defaults were chosen on a validation split of ml-100k (chapter 3b).

    Args:
        n_factors: dimension ``d`` of the user and item factors.
        l2: L2 penalty weight ``>= 0`` per triplet.
        learning_rate: Adam step size ``> 0``.
        epochs: passes over the positives, each with freshly sampled negatives.
        batch_size: triplets per gradient step.
        init_std: standard deviation of the normal initial factors.
        seed: seeds the initial factors, the negatives and the shuffling.

    The attributes below are set by ``fit``.

    Attributes:
        network_: the trained :class:`BPRNetwork`.
        history_: training loss per epoch (list of floats).
        fit_seconds_: wall time of ``fit``.

    Raises:
        ValueError: a hyper-parameter out of range (e.g. ``l2 < 0``).
    """

    def __init__(
        self,
        n_factors: int = 32,
        l2: float = 0.01,
        learning_rate: float = 0.005,
        epochs: int = 30,
        batch_size: int = 1024,
        init_std: float = 0.05,
        seed: int = 42,
    ):
        self.n_factors = check_positive_int("n_factors", n_factors)
        self.l2 = check_nonnegative("l2", l2)
        self.learning_rate = check_nonnegative("learning_rate", learning_rate, strict=True)
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.init_std = check_nonnegative("init_std", init_std)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        self.seed = int(seed)

    def _fit(self, train: pd.DataFrame) -> None:
        if self.n_items < 3:
            raise ValueError("BPR needs at least two real items to form (i, j) pairs.")
        start = time.perf_counter()
        coo = self.seen_.tocoo()
        pairs = np.column_stack([coo.row, coo.col]).astype(np.int64)
        self.network_ = BPRNetwork(
            self.n_users, self.n_items, self.n_factors, self.l2, self.init_std, self.seed
        )
        self.network_.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        rng = np.random.default_rng(self.seed)
        self.history_ = []
        for _ in range(self.epochs):  # loop over epochs; each epoch is batched
            triplets = sample_triplets(pairs[rng.permutation(len(pairs))], self.n_items, rng)
            h = self.network_.fit(
                triplets, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0
            )
            self.history_.append(float(h.history["loss"][-1]))
        self.fit_seconds_ = time.perf_counter() - start

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32`` = ``P[users] Q^T + b``."""
        net = self.network_
        u = ops.convert_to_tensor(users.astype(np.int32))
        s = ops.matmul(
            ops.take(net.user_factors.embeddings, u, axis=0),
            ops.transpose(net.item_factors.embeddings),
        )
        return ops.convert_to_numpy(s + ops.transpose(net.item_bias.embeddings))

    def __repr__(self) -> str:
        return (
            f"BPR(n_factors={self.n_factors}, l2={self.l2}, "
            f"learning_rate={self.learning_rate}, epochs={self.epochs})"
        )
