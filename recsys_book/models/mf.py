"""Biased matrix factorisation for explicit ratings (Koren, Bell & Volinsky, 2009).

A rating is modelled as a global mean plus a user bias, an item bias and the
dot product of a user and an item factor vector:

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

Training minimises the squared error on the observed ratings plus an L2
penalty on the parameters each rating touches,

    L = mean_{(u,i) in batch} [ (r_ui - r_hat(u, i))^2
                               + l2 (||p_u||^2 + ||q_i||^2) + l2_bias (b_u^2 + b_i^2) ],

with Adam on mini-batches. The same factors rank items for top-k
recommendation (``score``), though a model fitted to ratings is not trained
to rank, and it shows (chapter 3b).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys_book.models.base import Recommender, check_nonnegative, check_positive_int
from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops


class BiasedMFNetwork(keras.Model):
    """Keras model: ``(batch, 2)`` int ``[user, item]`` -> ``(batch,)`` predicted rating.

    The loss (``compute_loss``) is the mean squared error plus ``l2`` (factors)
    and ``l2_bias`` (biases) times the squared norms of the parameters looked
    up in the batch, averaged over the batch.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_factors: int,
        l2: float,
        l2_bias: float,
        global_mean: float,
        init_std: float,
        seed: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.l2 = l2
        self.l2_bias = l2_bias
        self.global_mean = global_mean
        normal = keras.initializers.RandomNormal
        self.user_factors = keras.layers.Embedding(
            n_users, n_factors, embeddings_initializer=normal(stddev=init_std, seed=seed)
        )
        self.item_factors = keras.layers.Embedding(
            n_items, n_factors, embeddings_initializer=normal(stddev=init_std, seed=seed + 1)
        )
        self.user_bias = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros")
        self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros")

    def _parts(self, pairs):
        u, i = pairs[:, 0], pairs[:, 1]
        return (
            self.user_factors(u),
            self.item_factors(i),
            ops.squeeze(self.user_bias(u), -1),
            ops.squeeze(self.item_bias(i), -1),
        )

    def call(self, pairs):
        p, q, bu, bi = self._parts(pairs)
        return self.global_mean + bu + bi + ops.sum(p * q, axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        p, q, bu, bi = self._parts(x)
        mse = ops.mean(ops.square(ops.cast(y, y_pred.dtype) - y_pred))
        factors = ops.sum(p * p, axis=-1) + ops.sum(q * q, axis=-1)
        return mse + ops.mean(self.l2 * factors + self.l2_bias * (bu * bu + bi * bi))


class BiasedMF(Recommender):
    """Biased matrix factorisation trained on explicit ratings (MSE + L2, Adam).

    The defaults were chosen on a validation split of ml-100k (chapter 3b).

    Args:
        n_factors: dimension ``d`` of the user and item factor vectors.
        l2: L2 penalty weight ``>= 0`` per rating on the factors ``||p_u||^2 + ||q_i||^2``.
        l2_bias: L2 penalty weight ``>= 0`` per rating on the biases ``b_u^2 + b_i^2``.
        learning_rate: Adam step size ``> 0``.
        epochs: passes over the training ratings.
        batch_size: ratings per gradient step.
        init_std: standard deviation of the normal initial factors.
        rating_col: column of ``train`` holding the ratings.
        clip: clip ``predict`` to the training rating range.
        seed: seeds the initial factors and the shuffling (same seed, same model on CPU).

    The attributes below are set by ``fit``.

    Attributes:
        network_: the trained :class:`BiasedMFNetwork`.
        global_mean_: ``mu``, the mean training rating.
        history_: training loss per epoch (list of floats).
        fit_seconds_: wall time of ``fit``.

    Raises:
        ValueError: a hyper-parameter out of range (e.g. ``l2 < 0``).
        KeyError: ``train`` lacks ``rating_col``.
    """

    def __init__(
        self,
        n_factors: int = 16,
        l2: float = 0.1,
        l2_bias: float = 0.01,
        learning_rate: float = 0.003,
        epochs: int = 25,
        batch_size: int = 1024,
        init_std: float = 0.01,
        rating_col: str = "rating",
        clip: bool = True,
        seed: int = 42,
    ):
        self.n_factors = check_positive_int("n_factors", n_factors)
        self.l2 = check_nonnegative("l2", l2)
        self.l2_bias = check_nonnegative("l2_bias", l2_bias)
        self.learning_rate = check_nonnegative("learning_rate", learning_rate, strict=True)
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.init_std = check_nonnegative("init_std", init_std)
        self.rating_col = rating_col
        self.clip = bool(clip)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        self.seed = int(seed)

    def _fit(self, train: pd.DataFrame) -> None:
        if self.rating_col not in train.columns:
            raise KeyError(
                f"train has no {self.rating_col!r} column; BiasedMF learns from explicit "
                "ratings (pass rating_col=... if they are stored under another name)."
            )
        ratings = train[self.rating_col].to_numpy(np.float32)
        if not np.isfinite(ratings).all():
            raise ValueError(f"train[{self.rating_col!r}] contains NaN or infinite values.")
        start = time.perf_counter()
        pairs = train[["user_idx", "item_idx"]].to_numpy(np.int32)
        self.global_mean_ = float(ratings.mean())
        self.rating_range_ = (float(ratings.min()), float(ratings.max()))
        self.network_ = BiasedMFNetwork(
            self.n_users,
            self.n_items,
            self.n_factors,
            self.l2,
            self.l2_bias,
            self.global_mean_,
            self.init_std,
            self.seed,
        )
        self.network_.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        rng = np.random.default_rng(self.seed)
        self.history_ = []
        for _ in range(self.epochs):  # loop over epochs; each epoch is batched
            order = rng.permutation(len(pairs))
            h = self.network_.fit(
                pairs[order],
                ratings[order],
                batch_size=self.batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
            )
            self.history_.append(float(h.history["loss"][-1]))
        self.fit_seconds_ = time.perf_counter() - start

    def _weights(self):
        net = self.network_
        return (
            net.user_factors.embeddings,
            net.item_factors.embeddings,
            ops.squeeze(net.user_bias.embeddings, -1),
            ops.squeeze(net.item_bias.embeddings, -1),
        )

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for the pairs ``(users[n], items[n])``: ``(n,) float32``.

        Clipped to the training rating range when ``clip=True``.

        Raises:
            RuntimeError: the model is not fitted.
            ValueError: ``users``/``items`` not equal-length 1-D integer arrays in range.
        """
        pairs = self._check_pairs(users, items)
        pred = ops.convert_to_numpy(self.network_(pairs)).astype(np.float32)
        if self.clip:
            pred = np.clip(pred, *self.rating_range_)
        return pred

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32`` predicted ratings of every item (unclipped)."""
        p, q, bu, bi = self._weights()
        u = ops.convert_to_tensor(users.astype(np.int32))
        s = ops.matmul(ops.take(p, u, axis=0), ops.transpose(q))
        s = s + ops.expand_dims(ops.take(bu, u, axis=0), 1) + ops.expand_dims(bi, 0)
        return ops.convert_to_numpy(s + self.global_mean_)

    def __repr__(self) -> str:
        return (
            f"BiasedMF(n_factors={self.n_factors}, l2={self.l2}, l2_bias={self.l2_bias}, "
            f"learning_rate={self.learning_rate}, epochs={self.epochs})"
        )
