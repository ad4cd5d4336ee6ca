"""Item cold start: hold out whole items, and rank among a chosen set of candidates.

A *cold* item is one nobody has interacted with yet: a film released today, a
product listed this morning. A model that learns one vector per item ID from
interactions has nothing to say about it; a model that reads the item's content
(genres, title, description) can still place it. To measure that, the
:func:`item_cold_start_split` removes a random, seeded set of items from the
training data entirely:

* ``train``: the interactions with the remaining (*warm*) items, less a warm test share;
* ``cold_test``: **every** interaction with a held-out item; no training row
  mentions these items, by construction;
* ``warm_test``: a random share of each user's warm interactions, to check that
  what helps cold items does not hurt warm ones.

Both tests are random, not temporal: the question here is *which* items a model
has seen, not *when*. :func:`restrict_to_items` turns a model into a score
function that ranks only a candidate set (the cold items, or the warm ones), so
that :func:`recsys_book.evaluation.evaluate` answers "among the new items, does
the user's item come first?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

from recsys_book.preprocessing import random_split, validate_interactions

__all__ = ["ItemColdStartSplit", "item_cold_start_split", "restrict_to_items"]


@dataclass(frozen=True, eq=False)
class ItemColdStartSplit:
    """Train, cold-item test and warm-item test of an item-cold-start experiment.

    Attributes:
        train: encoded interactions with warm items only.
        cold_test: every interaction with a cold item (of users present in ``train``).
        warm_test: held-out interactions with warm items (of users and items in
            ``train``), or ``None`` when ``warm_test_fraction=0``.
        cold_items: ``(n_cold,) int64`` sorted indices of the held-out items.
        warm_items: ``(n_warm,) int64`` sorted indices of the items in ``train``.
        n_users, n_items: vocabulary sizes including padding, for ``fit``.
        protocol: one line to print next to every number measured on the split.
    """

    train: pd.DataFrame
    cold_test: pd.DataFrame
    warm_test: pd.DataFrame | None
    cold_items: np.ndarray
    warm_items: np.ndarray
    n_users: int
    n_items: int
    protocol: str

    def summary(self) -> pd.DataFrame:
        """Rows, distinct users and distinct items of each part."""
        parts = {"train": self.train, "cold_test": self.cold_test, "warm_test": self.warm_test}
        parts = {k: v for k, v in parts.items() if v is not None}
        return pd.DataFrame(
            {
                "rows": [len(p) for p in parts.values()],
                "users": [p["user_idx"].nunique() for p in parts.values()],
                "items": [p["item_idx"].nunique() for p in parts.values()],
            },
            index=pd.Index(list(parts), name="part"),
        )

    def __repr__(self) -> str:
        warm = "None" if self.warm_test is None else str(len(self.warm_test))
        return (
            f"ItemColdStartSplit(train={len(self.train)}, cold_test={len(self.cold_test)}, "
            f"warm_test={warm}, cold_items={len(self.cold_items)}): {self.protocol}"
        )


def _fraction(value, name: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool)
    low_ok = ok and (value >= 0 if allow_zero else value > 0)
    if not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    return float(value)


def item_cold_start_split(
    frame: pd.DataFrame,
    cold_fraction: float = 0.2,
    warm_test_fraction: float = 0.2,
    *,
    seed: int = 42,
    n_users: int | None = None,
    n_items: int | None = None,
) -> ItemColdStartSplit:
    """Hold out a random set of items entirely: all their interactions become the cold test.

    Args:
        frame: encoded interactions (``user_idx``, ``item_idx``), one row per pair.
        cold_fraction: share of the items *that occur in* ``frame`` to hold out,
            in (0, 1); ``round(cold_fraction * n)`` items, at least one.
        warm_test_fraction: share of each user's warm interactions moved to the
            warm test (user-stratified, see
            :func:`recsys_book.preprocessing.random_split`), in [0, 1); 0 = no warm test.
        seed: the same seed and frame give the same split.
        n_users, n_items: vocabulary sizes; default ``max index + 1``. Pass the
            encoder's sizes (``encoder.n_items``) so that every item keeps its index.

    Returns:
        An :class:`ItemColdStartSplit`. No cold item occurs in ``train``; cold-test
        rows of users absent from ``train`` (users who only met cold items) are
        dropped, as are warm-test rows of items left without training rows, and
        the protocol says how many.

    Raises:
        KeyError: ``frame`` is not encoded.
        ValueError: a fraction out of range, a bad ``seed`` or vocabulary size,
            fewer than two distinct items, or a split that leaves ``train`` or the
            cold test empty.
    """
    validate_interactions(frame, required=("user_idx", "item_idx"), name="frame")
    cold_fraction = _fraction(cold_fraction, "cold_fraction")
    warm_test_fraction = _fraction(warm_test_fraction, "warm_test_fraction", allow_zero=True)
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    users = frame["user_idx"].to_numpy(np.int64)
    items = frame["item_idx"].to_numpy(np.int64)
    sizes = {}
    for name, given, largest in (
        ("n_users", n_users, users.max()),
        ("n_items", n_items, items.max()),
    ):
        if given is None:
            sizes[name] = int(largest) + 1
        elif isinstance(given, bool) or not isinstance(given, Integral) or given <= largest:
            raise ValueError(
                f"{name}={given!r} is too small for indices up to {largest}; pass the "
                f"encoder's size (encoder.{name})."
            )
        else:
            sizes[name] = int(given)
    present = np.unique(items)
    if len(present) < 2:
        raise ValueError(
            f"frame has {len(present)} distinct item(s); a cold-start split needs two."
        )
    n_cold = min(max(1, round(cold_fraction * len(present))), len(present) - 1)
    rng = np.random.default_rng(seed)
    cold_items = np.sort(rng.choice(present, size=n_cold, replace=False))
    is_cold = np.isin(items, cold_items)
    warm, cold_test = frame[~is_cold], frame[is_cold]

    warm_test, warm_text = None, "no warm test"
    train = warm
    if warm_test_fraction > 0:
        part = random_split(
            warm,
            warm_test_fraction,
            seed=int(seed),
            n_users=sizes["n_users"],
            n_items=sizes["n_items"],
        )
        train, warm_test = part.train, part.test
    known_users = np.zeros(sizes["n_users"], bool)
    known_users[train["user_idx"].to_numpy()] = True
    known_items = np.zeros(sizes["n_items"], bool)
    known_items[train["item_idx"].to_numpy()] = True
    keep = known_users[cold_test["user_idx"].to_numpy()]
    dropped_cold = int((~keep).sum())
    cold_test = cold_test[keep]
    if warm_test is not None:
        ok = known_items[warm_test["item_idx"].to_numpy()]
        dropped_warm = int((~ok).sum())
        warm_test = warm_test[ok]
        warm_text = (
            f"warm test = a random {warm_test_fraction:.0%} of each user's warm interactions "
            f"({dropped_warm} rows of items left without training rows dropped)"
        )
    if len(cold_test) == 0:
        raise ValueError(
            "the cold test is empty: every interaction with a held-out item belongs to a user "
            "without training rows; use a smaller cold_fraction or another seed."
        )
    protocol = (
        f"item cold start (seed={seed}): {n_cold} of {len(present)} items ({cold_fraction:.0%}) "
        f"held out entirely, all their interactions are the cold test ({dropped_cold} rows of "
        f"users without training rows dropped); {warm_text}"
    )
    return ItemColdStartSplit(
        train=train,
        cold_test=cold_test,
        warm_test=warm_test,
        cold_items=cold_items.astype(np.int64),
        warm_items=np.flatnonzero(known_items).astype(np.int64),
        n_users=sizes["n_users"],
        n_items=sizes["n_items"],
        protocol=protocol,
    )


def restrict_to_items(model, items, n_items: int) -> Callable[[np.ndarray], np.ndarray]:
    """A score function that ranks only ``items``: every other column becomes ``-inf``.

    Args:
        model: a fitted recommender (its ``score`` is used) or a callable
            ``users (batch,) int64 -> (batch, n_items)`` scores.
        items: the candidate item indices, e.g. ``split.cold_items``.
        n_items: vocabulary size including padding.

    Returns:
        ``score_fn(users) -> (batch, n_items) float32``, to pass to
        :func:`recsys_book.evaluation.evaluate` in place of the model.

    Raises:
        TypeError: ``model`` has no ``score`` and is not callable.
        ValueError: ``items`` is empty or holds indices outside ``1..n_items-1``.
    """
    score = getattr(model, "score", model)
    if not callable(score):
        raise TypeError(
            f"model must be a fitted Recommender or a callable users -> scores, got "
            f"{type(model).__name__}."
        )
    items = np.asarray(items)
    if items.ndim != 1 or items.size == 0 or not np.issubdtype(items.dtype, np.integer):
        raise ValueError(f"items must be a non-empty 1-D array of item indices, got {items!r}.")
    if items.min() < 1 or items.max() >= n_items:
        raise ValueError(
            f"items must lie in 1..{n_items - 1} (0 is padding); got min {items.min()}, "
            f"max {items.max()}."
        )
    outside = np.ones(n_items, bool)
    outside[items] = False

    def score_fn(users: np.ndarray) -> np.ndarray:
        s = np.array(score(users), dtype=np.float32, copy=True)
        s[:, outside] = -np.inf
        return s

    return score_fn
