"""ContentBased: recommend items whose content resembles what the user liked.

Each item ``i`` has a content vector ``x_i`` (genres, year, tags; see
:mod:`recsys_book.features`). A user's **profile** is the weighted mean of the
vectors of the items they interacted with,

    ``p_u = sum_i w_ui x_i / sum_i |w_ui|``,

and an item's score is the **cosine** between profile and item,
``cos(p_u, x_i) = p_u . x_i / (|p_u| |x_i|)``. With both sides scaled to unit
length that is one sparse matrix product for a whole batch of users:
``S = P_hat[users] @ X_hat.T``.

The model never looks at other users, so it can score an item nobody has rated
yet (a *cold* item) as long as the item has content; and it can only recommend
more of what the user already knows (no serendipity), which the book measures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_book.features import ItemFeatures, l2_normalize_rows
from recsys_book.models.base import Recommender

WEIGHTINGS = ("binary", "rating", "centered")
#: Scale of the popularity tie-breaker: below any cosine difference that matters.
TIE_EPS = 1e-4


def as_feature_matrix(item_features) -> sp.csr_matrix:
    """``ItemFeatures``, a SciPy sparse matrix or a 2-D array -> float32 CSR."""
    if isinstance(item_features, ItemFeatures):
        return sp.csr_matrix(item_features.matrix, dtype=np.float32)
    if sp.issparse(item_features):
        return sp.csr_matrix(item_features, dtype=np.float32)
    arr = np.asarray(item_features)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            "item_features must be ItemFeatures, a scipy.sparse matrix or a 2-D numeric array "
            f"of shape (n_items, n_features); got {type(item_features).__name__} "
            f"with shape {getattr(arr, 'shape', None)}."
        )
    return sp.csr_matrix(arr, dtype=np.float32)


class ContentBased(Recommender):
    """Cosine similarity between a user's content profile and every item.

    Args:
        item_features: ``(n_items, n_features)`` item content (``ItemFeatures``,
            sparse matrix or array); row ``i`` describes item index ``i``; its
            number of rows must equal the ``n_items`` passed to ``fit``.
        weighting: how each training interaction enters the profile:
            ``"binary"`` (weight 1), ``"rating"`` (weight = rating) or
            ``"centered"`` (rating minus the user's mean rating, so disliked
            items push the profile *away* from their content).
        min_rating: if given, only interactions with ``rating >= min_rating``
            build the profile (the "liked" items); the others are still
            excluded from recommendations.
        tie_break: ``"popularity"`` adds ``1e-4 x`` each item's popularity
            percentile (training interactions, in ``[0, 1]``) to the cosine, so
            items with the *same* content (coarse features such as genre + decade
            tie by the hundred) are ordered most popular first, while cosine
            differences above ``1e-4`` keep their order; ``None`` returns the
            pure cosine (ties are then left to the caller).

    The attributes below are set by ``fit``.

    Attributes:
        item_vectors_: ``(n_items, n_features)`` CSR, unit-length item rows.
        profiles_: ``(n_users, n_features)`` CSR, unit-length user profiles
            (a user without liked training items has a zero profile and
            scores 0 for every item).

    Raises:
        ValueError: unknown ``weighting``; ``fit`` with a feature matrix whose
            number of rows differs from ``n_items``.
        KeyError: ``weighting`` or ``min_rating`` need a ``rating`` column.
    """

    def __init__(
        self,
        item_features,
        weighting: str = "rating",
        min_rating: float | None = None,
        tie_break: str | None = "popularity",
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}.")
        if tie_break not in ("popularity", None):
            raise ValueError(f"tie_break must be 'popularity' or None, got {tie_break!r}.")
        if min_rating is not None and not np.isfinite(min_rating):
            raise ValueError(f"min_rating must be a finite number or None, got {min_rating!r}.")
        self.features = as_feature_matrix(item_features)
        self.feature_names = (
            list(item_features.names)
            if isinstance(item_features, ItemFeatures)
            else [f"feature {j}" for j in range(self.features.shape[1])]
        )
        self.weighting = weighting
        self.min_rating = min_rating
        self.tie_break = tie_break

    def _interaction_weights(self, train: pd.DataFrame) -> np.ndarray:
        """``(len(train),) float32``: each interaction's weight in its user's profile."""
        needs_rating = self.weighting != "binary" or self.min_rating is not None
        if needs_rating and "rating" not in train.columns:
            raise KeyError(
                f"weighting={self.weighting!r} / min_rating={self.min_rating!r} need a 'rating' "
                "column in train; use weighting='binary' for implicit data."
            )
        if self.weighting == "binary":
            w = np.ones(len(train), np.float32)
        else:
            r = train["rating"].to_numpy(np.float32)
            if self.weighting == "rating":
                w = r
            else:  # centered: rating minus the user's mean rating
                w = r - train.groupby("user_idx")["rating"].transform("mean").to_numpy(np.float32)
        if self.min_rating is not None:
            w = np.where(train["rating"].to_numpy() >= self.min_rating, w, 0.0)
        return w.astype(np.float32)

    def _fit(self, train: pd.DataFrame) -> None:
        if self.features.shape[0] != self.n_items:
            raise ValueError(
                f"item_features has {self.features.shape[0]} rows but n_items={self.n_items}; "
                "build the features with the same n_items (padding row included) as fit."
            )
        self.item_vectors_ = l2_normalize_rows(self.features)
        w = self._interaction_weights(train)
        weights = sp.csr_matrix(
            (w, (train["user_idx"].to_numpy(), train["item_idx"].to_numpy())),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        weights.sum_duplicates()
        # Weighted mean of item vectors; the denominator does not change a cosine,
        # but keeps profiles interpretable (a mean, in the items' own units).
        total = np.asarray(abs(weights).sum(axis=1)).ravel()
        total[total == 0] = 1.0
        mean = sp.diags((1.0 / total).astype(np.float32)) @ weights @ self.item_vectors_
        self.profiles_ = l2_normalize_rows(mean)
        self.tie_breaker_ = np.zeros(self.n_items, np.float32)
        if self.tie_break == "popularity":
            counts = np.asarray(self.seen_.sum(axis=0)).ravel()
            percentile = counts.argsort(kind="stable").argsort(kind="stable") / (self.n_items - 1)
            self.tie_breaker_ = (TIE_EPS * percentile).astype(np.float32)

    def explain(self, user: int, item: int, top: int = 5) -> pd.DataFrame:
        """Why ``item`` scores what it does for ``user``: the cosine split by feature.

        The cosine is a sum over features of ``p_hat[f] * x_hat[f]``; the rows
        are the ``top`` largest terms (``feature``, ``contribution``), which add
        up to the pure cosine when ``top`` covers every shared feature.

        Raises:
            ValueError: ``user`` or ``item`` outside the fitted ranges.
        """
        self._check_users(np.array([user]))
        if not 1 <= item < self.n_items:
            raise ValueError(f"item must lie in 1..{self.n_items - 1}, got {item}.")
        terms = self.profiles_[user].multiply(self.item_vectors_[item]).tocsr()
        order = np.argsort(-terms.data, kind="stable")[:top]
        return pd.DataFrame(
            {
                "feature": [self.feature_names[terms.indices[j]] for j in order],
                "contribution": terms.data[order].astype(np.float64),
            }
        )

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32``: cosine similarity in ``[-1, 1]`` (+ tie-breaker)."""
        cosine = (self.profiles_[users] @ self.item_vectors_.T).toarray()
        return cosine + self.tie_breaker_[None, :]
