"""Popularity: recommend the items most users interacted with.

The simplest recommender there is, and the baseline every other model in the
book must beat. Each item's score is the number of training interactions it
has, the same for every user; ``recommend`` then removes what each user has
already seen, so users still get different lists.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_book.models.base import Recommender


class Popularity(Recommender):
    """Score every item by its number of training interactions.

    The attributes below are set by ``fit``.

    Attributes:
        counts_: ``(n_items,) float32``, interactions per item in ``train``
            (column 0, the padding item, is 0).

    Example:
        >>> model = Popularity().fit(train, n_users, n_items)
        >>> model.recommend(np.array([1, 2]), k=10).shape
        (2, 10)
    """

    def _fit(self, train: pd.DataFrame) -> None:
        # seen_ is the binary user x item matrix: a column sum counts distinct users.
        self.counts_ = np.asarray(self.seen_.sum(axis=0), dtype=np.float32).ravel()

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items) float32``: the same popularity row for every user."""
        return np.broadcast_to(self.counts_, (len(users), self.n_items)).copy()
