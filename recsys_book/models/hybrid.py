"""Hybrid recommenders: combine collaborative signal with item content.

Two ways to build a hybrid, the two the book measures:

* :class:`WeightedHybrid` blends the *scores* of already-built recommenders
  (say ``ItemKNN`` and ``ContentBased``). Scores of different models live on
  different scales (cosines in ``[-1, 1]``, co-occurrence counts, logits), so
  each model's row of scores is first normalised per user (z-score, min-max or
  rank), then mixed with fixed weights.
* :class:`FeatureMF` puts content *inside* the model, in the spirit of LightFM
  (Kula, 2015): an item's embedding is its ID embedding plus the weighted sum
  of its features' embeddings,

      v_i = e_i + sum_f x_if * g_f,      b_i = c_i + sum_f x_if * h_f,

  and a user's score for item ``i`` is ``u_u . v_i + b_i``. Items that share
  features share parameters, so an item with no training interactions (a cold
  item) still gets a meaningful ``v_i`` from its features alone.
  ``FeatureMF`` trains with a full softmax over the catalogue or with BPR.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_book.models.base import Recommender
from recsys_book.models.content import as_feature_matrix
from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops

NORMALIZATIONS = ("zscore", "minmax", "rank", "none")


# --------------------------------------------------------------------------- weighted blend


def normalize_scores(scores: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Put each row of ``scores`` on a common scale, ignoring non-finite entries.

    Args:
        scores: ``(batch, n_items)`` scores; ``-inf`` marks items a model cannot
            score (the padding column).
        method: ``"zscore"`` (subtract the row mean, divide by the row standard
            deviation), ``"minmax"`` (map the row to ``[0, 1]``), ``"rank"``
            (the item's rank in the row as a fraction in ``[0, 1]``, 1 = best)
            or ``"none"``.

    Returns:
        ``(batch, n_items) float32``; non-finite inputs and rows without any
        spread (a model with no opinion about a user) become 0.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"method must be one of {NORMALIZATIONS}, got {method!r}.")
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if method == "none":
        return np.where(finite, s, 0.0).astype(np.float32)
    if method == "rank":
        filled = np.where(finite, s, -np.inf)
        ranks = filled.argsort(axis=1, kind="stable").argsort(axis=1, kind="stable")
        n_bad = (~finite).sum(axis=1, keepdims=True)
        denom = np.maximum(s.shape[1] - n_bad - 1, 1)
        out = (ranks - n_bad) / denom
        return np.where(finite, out, 0.0).astype(np.float32)
    x = np.where(finite, s, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows: handled below
        if method == "zscore":
            centre, spread = (
                np.nanmean(x, axis=1, keepdims=True),
                np.nanstd(x, axis=1, keepdims=True),
            )
        else:
            centre = np.nanmin(x, axis=1, keepdims=True)
            spread = np.nanmax(x, axis=1, keepdims=True) - centre
    ok = np.isfinite(spread) & (spread > 0)
    out = (x - np.where(ok, centre, 0.0)) / np.where(ok, spread, 1.0)
    out = np.where(ok & finite, out, 0.0)
    return out.astype(np.float32)


class WeightedHybrid(Recommender):
    """``score = sum_m w_m * normalize(score_m)``: a weighted blend of recommenders.

    Args:
        models: two or more :class:`Recommender` instances.
        weights: one non-negative weight per model (default: equal weights);
            they are rescaled to sum to 1.
        normalize: per-user score normalisation, see :func:`normalize_scores`.
        refit: ``True`` fits every component on the hybrid's training data;
            ``False`` uses components that are already fitted (their
            ``n_users``/``n_items`` must match).

    Raises:
        TypeError: a component is not a Recommender.
        ValueError: fewer than two models, wrong number or sign of weights,
            unknown normalisation, mismatched sizes of pre-fitted components.
    """

    def __init__(
        self,
        models: Sequence[Recommender],
        weights: Sequence[float] | None = None,
        normalize: str = "zscore",
        refit: bool = True,
    ) -> None:
        models = list(models)
        if len(models) < 2:
            raise ValueError(f"a hybrid needs at least two models, got {len(models)}.")
        for m in models:
            if not isinstance(m, Recommender):
                raise TypeError(f"every component must be a Recommender, got {type(m).__name__}.")
        w = np.ones(len(models)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(models),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() == 0:
            raise ValueError(
                f"weights must be {len(models)} non-negative finite numbers, not all zero; "
                f"got {weights!r}."
            )
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
        self.models = models
        self.weights = (w / w.sum()).astype(np.float32)
        self.normalize = normalize
        self.refit = refit

    def _fit(self, train: pd.DataFrame) -> None:
        for m in self.models:
            if self.refit:
                m.fit(train, self.n_users, self.n_items)
            elif not hasattr(m, "seen_"):
                raise ValueError(f"{type(m).__name__} is not fitted; fit it or use refit=True.")
            elif (m.n_users, m.n_items) != (self.n_users, self.n_items):
                raise ValueError(
                    f"{type(m).__name__} was fitted with n_users={m.n_users}, n_items={m.n_items}; "
                    f"the hybrid has n_users={self.n_users}, n_items={self.n_items}."
                )

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32`` weighted sum of normalised component scores."""
        total = np.zeros((len(users), self.n_items), np.float32)
        for w, m in zip(self.weights, self.models, strict=True):
            total += w * normalize_scores(m.score(users), self.normalize)
        return total


# --------------------------------------------------------------------------- feature-aware MF


class FeatureMFNet(keras.Model):
    """Keras network of :class:`FeatureMF` (see the module docstring for the maths).

    Inputs are a dict of int arrays ``{"user": (batch,)}`` (softmax: returns
    ``(batch, n_items)`` logits, items absent from training masked to -1e9) or
    ``{"user", "pos", "neg": (batch,)}`` (BPR: returns ``(batch,)`` score
    differences ``s(u, pos) - s(u, neg)``).
    """

    def __init__(
        self,
        n_users: int,
        item_features: np.ndarray,
        warm_items: np.ndarray,
        dim: int = 32,
        l2: float = 1e-5,
        use_item_ids: bool = True,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        n_items, n_features = item_features.shape
        self.use_item_ids = use_item_ids

        def table(name, rows, cols, offset):
            init = (
                keras.initializers.RandomNormal(stddev=0.05, seed=seed + offset)
                if cols > 1
                else "zeros"
            )
            layer = keras.layers.Embedding(
                rows,
                cols,
                embeddings_initializer=init,
                embeddings_regularizer=keras.regularizers.L2(l2) if l2 else None,
                name=name,
            )
            layer.build((None,))
            return layer

        self.user_embedding = table("user_embedding", n_users, dim, 0)
        self.feature_embedding = table("feature_embedding", n_features, dim, 2)
        self.feature_bias = table("feature_bias", n_features, 1, 4)
        if use_item_ids:
            self.item_id_embedding = table("item_id_embedding", n_items, dim, 1)
            self.item_id_bias = table("item_id_bias", n_items, 1, 3)
        self.item_features = self.add_weight(
            shape=(n_items, n_features), initializer="zeros", trainable=False, name="item_features"
        )
        self.item_features.assign(item_features.astype("float32"))
        self.warm = self.add_weight(
            shape=(n_items,), initializer="zeros", trainable=False, name="warm_items"
        )
        self.warm.assign(warm_items.astype("float32"))

    def item_vectors(self, items=None):
        """``(v, b)``: embeddings ``(n, dim)`` and biases ``(n,)`` of ``items`` (all if None)."""
        x = self.item_features if items is None else ops.take(self.item_features, items, axis=0)
        warm = self.warm if items is None else ops.take(self.warm, items, axis=0)
        v = ops.matmul(x, self.feature_embedding.embeddings)
        b = ops.squeeze(ops.matmul(x, self.feature_bias.embeddings), -1)
        if self.use_item_ids:
            ids = (
                self.item_id_embedding.embeddings
                if items is None
                else self.item_id_embedding(items)
            )
            bias = self.item_id_bias.embeddings if items is None else self.item_id_bias(items)
            # Only items seen in training have a trained ID part; cold items use content only.
            v = v + warm[:, None] * ids
            b = b + warm * ops.squeeze(bias, -1)
        return v, b

    def call(self, inputs):
        u = self.user_embedding(inputs["user"])
        if "neg" in inputs:
            v_pos, b_pos = self.item_vectors(inputs["pos"])
            v_neg, b_neg = self.item_vectors(inputs["neg"])
            return ops.sum(u * (v_pos - v_neg), axis=-1) + b_pos - b_neg
        v, b = self.item_vectors()
        logits = ops.matmul(u, ops.transpose(v)) + b[None, :]
        return ops.where(self.warm[None, :] > 0, logits, -1e9)


class FeatureMF(Recommender):
    """Feature-aware matrix factorisation (LightFM-style), trained in Keras.

    Args:
        item_features: ``(n_items, n_features)`` item content (``ItemFeatures``,
            sparse or dense); held densely inside the network, so keep
            ``n_items * n_features`` moderate (it must be below 5e7).
        dim: embedding size.
        loss: ``"bpr"`` (pairwise, one uniformly sampled warm negative per
            positive; cost independent of the catalogue size) or ``"softmax"``
            (full-catalogue cross-entropy: each training interaction is a class
            label among all warm items; cost ``O(n_items * (n_features + dim))``
            per example, so keep it for catalogues of a few thousand items).
        epochs, batch_size, learning_rate: Adam training schedule.
        l2: L2 penalty on every embedding table (per optimisation step).
        use_item_ids: ``False`` drops the item-ID part: a pure feature model.
        seed: seeds initialisation, shuffling and negative sampling.

    The attributes below are set by ``fit``.

    Attributes:
        model_: the trained :class:`FeatureMFNet`.
        user_factors_: ``(n_users, dim) float32``.
        item_factors_: ``(n_items, dim) float32``.
        item_bias_: ``(n_items,)``.
        history_: training loss per epoch.
    """

    def __init__(
        self,
        item_features,
        dim: int = 32,
        loss: str = "bpr",
        epochs: int = 20,
        batch_size: int = 512,
        learning_rate: float = 5e-3,
        l2: float = 1e-5,
        use_item_ids: bool = True,
        seed: int = 0,
    ) -> None:
        if loss not in ("softmax", "bpr"):
            raise ValueError(f"loss must be 'softmax' or 'bpr', got {loss!r}.")
        for name, value in (("dim", dim), ("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not learning_rate > 0 or l2 < 0:
            raise ValueError(
                f"need learning_rate > 0 and l2 >= 0, got learning_rate={learning_rate}, l2={l2}."
            )
        self.features = as_feature_matrix(item_features)
        if self.features.shape[0] * self.features.shape[1] > 5e7:
            raise ValueError(
                f"item_features of shape {self.features.shape} is too large to hold densely; "
                "keep fewer features (e.g. a larger min_tag_items)."
            )
        self.dim, self.loss, self.epochs = int(dim), loss, int(epochs)
        self.batch_size, self.learning_rate, self.l2 = int(batch_size), float(learning_rate), l2
        self.use_item_ids, self.seed = use_item_ids, int(seed)

    def _fit(self, train: pd.DataFrame) -> None:
        if self.features.shape[0] != self.n_items:
            raise ValueError(
                f"item_features has {self.features.shape[0]} rows but n_items={self.n_items}; "
                "build the features with the same n_items (padding row included) as fit."
            )
        warm = np.asarray(self.seen_.sum(axis=0)).ravel() > 0
        self.model_ = FeatureMFNet(
            self.n_users,
            self.features.toarray(),
            warm,
            dim=self.dim,
            l2=self.l2,
            use_item_ids=self.use_item_ids,
            seed=self.seed,
        )
        if self.loss == "softmax":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        else:
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
        self.model_.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=loss)

        rng = np.random.default_rng(self.seed)
        users = train["user_idx"].to_numpy(np.int64)
        items = train["item_idx"].to_numpy(np.int64)
        warm_ids = np.flatnonzero(warm)
        self.history_ = []
        for _ in range(self.epochs):
            order = rng.permutation(len(users))
            if self.loss == "softmax":
                x, y = {"user": users[order]}, items[order]
            else:
                neg = warm_ids[rng.integers(0, len(warm_ids), len(order))]
                x = {"user": users[order], "pos": items[order], "neg": neg}
                y = np.ones(len(order), np.float32)
            h = self.model_.fit(
                x, y, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0
            )
            self.history_.append(float(h.history["loss"][-1]))

        v, b = self.model_.item_vectors()
        self.item_factors_ = np.asarray(ops.convert_to_numpy(v), np.float32)
        self.item_bias_ = np.asarray(ops.convert_to_numpy(b), np.float32)
        self.user_factors_ = np.asarray(
            ops.convert_to_numpy(self.model_.user_embedding.embeddings), np.float32
        )

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32``: ``u . v_i + b_i`` (cold items via features only)."""
        return self.user_factors_[users] @ self.item_factors_.T + self.item_bias_[None, :]
