"""From raw interactions to model inputs: ids, filters, splits, sequences, negatives.

Everything here takes the tidy interaction frames of :mod:`recsys_book.data`
(``user_id`` int64, ``item_id`` int64, ``rating`` float32, ``timestamp`` int64
unix seconds) and returns new objects; no function changes its input.

The order of the steps, and why:

1. :func:`validate_interactions` (every public function calls it) and, if it
   reports duplicates, :func:`deduplicate`.
2. :func:`to_implicit` and :func:`kcore_filter` on the raw ids.
3. :func:`encode_ids` adds the contiguous indices ``user_idx`` and ``item_idx``.
   **Index 0 is reserved for padding**; ``n_users`` and ``n_items`` are vocabulary
   sizes *including* it.
4. A split, which returns a :class:`Split` whose ``protocol`` is a one-line
   description to print next to every number measured on it:

   * :func:`temporal_split`: one global cut-off time, the realistic default. No
     training interaction is later than a test interaction, by construction.
   * :func:`leave_one_out_split`: each user's last interaction is the test, to
     compare with papers that use this protocol.
   * :func:`random_split`: a user-stratified random split, leaky in time; only to
     compare with published tables that use it.
5. :func:`build_sequences` / :func:`shifted_sequences` for sequential models and
   :func:`sample_negatives` for sampled losses and sampled evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "IdEncoder",
    "Split",
    "build_sequences",
    "deduplicate",
    "encode_ids",
    "kcore_filter",
    "leave_one_out_split",
    "random_split",
    "sample_negatives",
    "shifted_sequences",
    "temporal_split",
    "to_implicit",
    "validate_interactions",
]

_ID_COLUMNS = ("user_id", "item_id", "user_idx", "item_idx")
_ENCODED = ("user_idx", "item_idx")


# --------------------------------------------------------------------------- validation


def validate_interactions(
    frame: pd.DataFrame,
    *,
    required: tuple[str, ...] = ("user_id", "item_id"),
    name: str = "ratings",
    allow_duplicates: bool = False,
) -> None:
    """Raise a helpful error unless ``frame`` is a clean interaction frame.

    Checks, in order: a DataFrame (``TypeError``); the ``required`` columns
    (``KeyError``); at least one row (``ValueError``); then for each of
    ``user_id``, ``item_id``, ``user_idx``, ``item_idx``, ``timestamp`` that is
    present: no missing values (``ValueError``) and an integer dtype
    (``TypeError``); indices ``>= 1`` (0 is padding); a numeric, finite ``rating``
    if present; and, unless ``allow_duplicates``, at most one row per
    ``(user_id, item_id)`` pair (or ``(user_idx, item_idx)`` without raw ids).

    Args:
        frame: the interactions.
        required: columns that must be present.
        name: what to call the frame in messages.
        allow_duplicates: skip the duplicate check (sequences may repeat items).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        if set(missing) & set(_ENCODED):
            fix = "encode the raw ids first: frame, encoder = encode_ids(frame)."
        elif "timestamp" in missing:
            fix = "this step orders interactions by time and needs a 'timestamp' column."
        else:
            fix = "rename your columns, e.g. frame.rename(columns={'userId': 'user_id'})."
        raise KeyError(
            f"{name} lacks the column(s) {missing} (it has {list(frame.columns)}); {fix}"
        )
    if len(frame) == 0:
        raise ValueError(f"{name} is empty: there are no interactions to work with.")

    for col in (*_ID_COLUMNS, "timestamp"):
        if col not in frame.columns:
            continue
        n_missing = int(frame[col].isna().sum())
        if n_missing:
            raise ValueError(
                f"{name}[{col!r}] has {n_missing} missing value(s) (NaN); drop those rows "
                f"first: frame.dropna(subset=[{col!r}])."
            )
        if not pd.api.types.is_integer_dtype(frame[col].dtype):
            fix = (
                "convert to unix seconds: (frame['timestamp'] - pd.Timestamp('1970-01-01')) "
                "// pd.Timedelta('1s')"
                if col == "timestamp"
                else f"map them to integers, e.g. frame[{col!r}] = pd.factorize(frame[{col!r}])[0]"
            )
            raise TypeError(
                f"{name}[{col!r}] must hold integers, got dtype {frame[col].dtype}; {fix}."
            )
    for col in _ENCODED:
        if col in frame.columns and (frame[col] < 1).any():
            raise ValueError(
                f"{name}[{col!r}] contains indices < 1, but index 0 is reserved for padding; "
                "build the indices with encode_ids(...)."
            )

    if "rating" in frame.columns:
        rating = frame["rating"]
        if not pd.api.types.is_numeric_dtype(rating.dtype) or pd.api.types.is_bool_dtype(rating):
            raise TypeError(
                f"{name}['rating'] must be numeric, got dtype {rating.dtype}; convert with "
                "frame.astype({'rating': 'float32'})."
            )
        values = rating.to_numpy(dtype=np.float64, na_value=np.nan)
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        if n_nan or n_inf:
            raise ValueError(
                f"{name}['rating'] must be finite: {n_nan} NaN and {n_inf} infinite value(s); "
                "drop or repair those rows first."
            )

    if allow_duplicates:
        return
    keys = next((k for k in (["user_id", "item_id"], list(_ENCODED)) if set(k) <= set(frame)), None)
    if keys is not None:
        dup = frame.duplicated(keys, keep=False)
        if dup.any():
            first = tuple(int(v) for v in frame.loc[dup, keys].iloc[0])
            n_extra = int(frame.duplicated(keys).sum())
            raise ValueError(
                f"{name} has {n_extra} duplicate ({keys[0]}, {keys[1]}) row(s), e.g. {first}; "
                "keep one row per pair with deduplicate(frame, keep='last')."
            )


def deduplicate(frame: pd.DataFrame, keep: str = "last") -> pd.DataFrame:
    """Keep one row per ``(user_id, item_id)`` pair: the latest (``"last"``) or earliest.

    "Latest" is by ``timestamp`` if the frame has one (row order breaks ties),
    else by row order. The kept rows stay in their original order.
    """
    if keep not in ("first", "last"):
        raise ValueError(f"keep must be 'first' or 'last', got {keep!r}.")
    validate_interactions(frame, name="frame", allow_duplicates=True)
    positions = np.arange(len(frame))
    if "timestamp" in frame.columns:
        positions = np.lexsort((positions, frame["timestamp"].to_numpy()))
    in_time = frame.iloc[positions]
    kept = ~in_time.duplicated(["user_id", "item_id"], keep=keep).to_numpy()
    return frame.iloc[np.sort(positions[kept])].copy()


# --------------------------------------------------------------------------- argument checks


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value}.")
    return int(value)


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}.")
    return float(value)


def _vocabulary_size(frame: pd.DataFrame, column: str, given, name: str) -> int:
    """``given`` checked against the largest index in ``frame[column]``, or ``max + 1``."""
    largest = int(frame[column].max())
    if given is None:
        return largest + 1
    if isinstance(given, bool) or not isinstance(given, Integral) or given <= largest:
        raise ValueError(
            f"{name}={given!r} is too small: {column} goes up to {largest}, so {name} must be "
            f"an integer >= {largest + 1}; pass the encoder's size (encoder.{name})."
        )
    return int(given)


def _preview(values: np.ndarray, n: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:n])
    return shown + (", ..." if len(values) > n else "")


# --------------------------------------------------------------------------- ids


def _lookup(vocabulary: np.ndarray, raw, kind: str) -> np.ndarray:
    """1-based positions of ``raw`` in the sorted ``vocabulary``; KeyError for unknown ids."""
    raw = np.asarray(raw)
    if raw.size and not np.issubdtype(raw.dtype, np.integer):
        raise TypeError(f"raw {kind} ids must be integers, got dtype {raw.dtype}.")
    pos = np.searchsorted(vocabulary, raw)
    found = vocabulary[np.minimum(pos, len(vocabulary) - 1)] == raw
    if not found.all():
        unknown = np.unique(raw[~found])
        raise KeyError(
            f"{len(unknown)} {kind} id(s) unknown to the encoder: {_preview(unknown)}; "
            "drop them with encoder.transform(frame, unknown='drop') or encode a frame "
            "that contains them."
        )
    return (pos + 1).astype(np.int64)


def _to_raw(vocabulary: np.ndarray, idx, kind: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{kind} indices must be integers, got dtype {idx.dtype}.")
    if idx.size and (idx.min() < 1 or idx.max() > len(vocabulary)):
        raise ValueError(
            f"{kind} indices must lie in 1..{len(vocabulary)} (0 is padding); got min "
            f"{idx.min()}, max {idx.max()}."
        )
    return vocabulary[idx - 1]


@dataclass(frozen=True, eq=False)
class IdEncoder:
    """Maps raw user/item ids to contiguous 1-based indices and back.

    Index ``k`` (``k >= 1``) stands for the ``k``-th smallest raw id, so the
    order of raw ids is preserved; index 0 is padding and maps to no id.

    Attributes:
        user_ids: ``(n_users - 1,) int64``, sorted raw user ids (read-only).
        item_ids: ``(n_items - 1,) int64``, sorted raw item ids (read-only).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray

    def __post_init__(self) -> None:
        for name in ("user_ids", "item_ids"):
            ids = np.array(getattr(self, name), dtype=np.int64)
            if ids.ndim != 1 or (ids.size > 1 and (np.diff(ids) <= 0).any()):
                raise ValueError(f"{name} must be a 1-D array of strictly increasing raw ids.")
            ids.setflags(write=False)
            object.__setattr__(self, name, ids)

    @property
    def n_users(self) -> int:
        """Vocabulary size including the padding index 0."""
        return len(self.user_ids) + 1

    @property
    def n_items(self) -> int:
        """Vocabulary size including the padding index 0."""
        return len(self.item_ids) + 1

    def __repr__(self) -> str:
        return f"IdEncoder(n_users={self.n_users}, n_items={self.n_items})"

    def users_to_idx(self, raw) -> np.ndarray:
        """Raw user ids -> ``int64`` indices in ``1..n_users-1``; KeyError if unknown."""
        return _lookup(self.user_ids, raw, "user")

    def items_to_idx(self, raw) -> np.ndarray:
        """Raw item ids -> ``int64`` indices in ``1..n_items-1``; KeyError if unknown."""
        return _lookup(self.item_ids, raw, "item")

    def users_to_raw(self, idx) -> np.ndarray:
        """User indices (``1..n_users-1``) -> raw user ids; ValueError for 0 or out of range."""
        return _to_raw(self.user_ids, idx, "user")

    def items_to_raw(self, idx) -> np.ndarray:
        """Item indices (``1..n_items-1``) -> raw item ids; ValueError for 0 or out of range."""
        return _to_raw(self.item_ids, idx, "item")

    def transform(self, frame: pd.DataFrame, unknown: str = "raise") -> pd.DataFrame:
        """A copy of ``frame`` with ``user_idx`` and ``item_idx`` (int64) added.

        Args:
            frame: rows with raw ``user_id`` and ``item_id``.
            unknown: ``"raise"`` (KeyError naming the unknown ids) or ``"drop"``
                (rows with an unknown user or item are left out).
        """
        if unknown not in ("raise", "drop"):
            raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}.")
        validate_interactions(frame, name="frame", allow_duplicates=True)
        users, items = frame["user_id"].to_numpy(), frame["item_id"].to_numpy()
        if unknown == "drop":
            known = np.isin(users, self.user_ids) & np.isin(items, self.item_ids)
            frame, users, items = frame[known], users[known], items[known]
        out = frame.copy()
        out["user_idx"] = self.users_to_idx(users)
        out["item_idx"] = self.items_to_idx(items)
        return out


def encode_ids(
    ratings: pd.DataFrame, items: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, IdEncoder]:
    """Add contiguous 1-based indices ``user_idx`` and ``item_idx`` (int64) to ``ratings``.

    The users are those in ``ratings``. The items are every ``item_id`` of
    ``items`` if given (so never-rated, cold items get an index too), else those
    in ``ratings``. Indices follow the sorted raw ids, so ids that are already
    ``1..n`` (ml-100k, ml-1m users) map to themselves. Index 0 is padding.

    Returns:
        ``(encoded, encoder)``: a copy of ``ratings`` with the two columns added,
        and the :class:`IdEncoder` (``encoder.n_users``, ``encoder.n_items``
        include the padding index).

    Raises:
        KeyError: an item of ``ratings`` is missing from ``items``.
    """
    validate_interactions(ratings)
    item_ids = np.unique(ratings["item_id"].to_numpy())
    if items is not None:
        validate_interactions(items, required=("item_id",), name="items", allow_duplicates=True)
        catalogue = np.unique(items["item_id"].to_numpy())
        absent = np.setdiff1d(item_ids, catalogue)
        if absent.size:
            raise KeyError(
                f"{absent.size} rated item id(s) are missing from the items frame: "
                f"{_preview(absent)}; pass the full item table or drop those ratings."
            )
        item_ids = catalogue
    encoder = IdEncoder(np.unique(ratings["user_id"].to_numpy()), item_ids)
    return encoder.transform(ratings), encoder


def _ints(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- filters


def kcore_filter(
    frame: pd.DataFrame, min_user_interactions: int = 5, min_item_interactions: int = 5
) -> pd.DataFrame:
    """The k-core: keep rows whose user and item both have enough interactions.

    Dropping a rare item can push a user under the threshold and vice versa, so
    the filter repeats until nothing changes; the result is the largest subset
    in which every user has ``>= min_user_interactions`` rows and every item
    ``>= min_item_interactions``. Run it on raw ids, before :func:`encode_ids`.

    Raises:
        ValueError: a threshold below 1, or nothing survives the filter.
    """
    k_user = _check_positive_int(min_user_interactions, "min_user_interactions")
    k_item = _check_positive_int(min_item_interactions, "min_item_interactions")
    validate_interactions(frame)
    users = pd.factorize(frame["user_id"])[0]
    items = pd.factorize(frame["item_id"])[0]
    keep = np.ones(len(frame), dtype=bool)
    while True:
        user_counts = np.bincount(users[keep], minlength=users.max() + 1)
        item_counts = np.bincount(items[keep], minlength=items.max() + 1)
        still = keep & (user_counts[users] >= k_user) & (item_counts[items] >= k_item)
        if still.sum() == keep.sum():
            break
        keep = still
    if not keep.any():
        raise ValueError(
            f"no interactions survive the {k_user}/{k_item} (user/item) core; lower the thresholds."
        )
    return frame[keep].copy()


def to_implicit(frame: pd.DataFrame, min_rating: float = 4.0) -> pd.DataFrame:
    """Keep the rows with ``rating >= min_rating`` as positive feedback; ``rating`` stays.

    Raises:
        ValueError: ``min_rating`` outside the observed rating scale ``[min, max]``.
    """
    validate_interactions(frame, required=("rating",))
    rating = frame["rating"].to_numpy(dtype=np.float64)
    low, high = rating.min(), rating.max()
    if (
        isinstance(min_rating, bool)
        or not isinstance(min_rating, Real)
        or not (low <= min_rating <= high)
    ):
        raise ValueError(
            f"min_rating={min_rating!r} lies outside the observed rating scale "
            f"[{low:g}, {high:g}]; choose a threshold inside it (4.0 on MovieLens' 1-5 stars)."
        )
    return frame[rating >= min_rating].copy()


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test interactions and the protocol that made them.

    Attributes:
        train, validation, test: encoded interaction frames (``validation`` may be
            ``None``); rows keep their original index labels.
        n_users, n_items: vocabulary sizes including padding, for ``fit``.
        protocol: one line that says how the split was made; print it next to
            every number measured on the split.
        cold_removed: rows taken out of each evaluation part because their user
            or item never occurs in ``train``, e.g. ``{"test": 17}``.
    """

    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame
    n_users: int
    n_items: int
    protocol: str
    cold_removed: dict[str, int] = field(default_factory=dict)

    def parts(self) -> dict[str, pd.DataFrame]:
        """The non-empty parts by name, in the order train, validation, test."""
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {k: v for k, v in named.items() if v is not None}

    def summary(self) -> pd.DataFrame:
        """Rows, distinct users and distinct items of each part (one row per part)."""
        return pd.DataFrame(
            {
                "rows": [len(p) for p in self.parts().values()],
                "users": [p["user_idx"].nunique() for p in self.parts().values()],
                "items": [p["item_idx"].nunique() for p in self.parts().values()],
            },
            index=pd.Index(list(self.parts()), name="part"),
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.parts().items())
        return f"Split({sizes}, n_users={self.n_users}, n_items={self.n_items}): {self.protocol}"


def _check_split_input(frame: pd.DataFrame, needs_time: bool) -> None:
    required = (*_ENCODED, "timestamp") if needs_time else _ENCODED
    validate_interactions(frame, required=required)


def _when(t: int) -> str:
    """Unix seconds as a readable UTC date, for protocol strings."""
    try:
        return pd.Timestamp(int(t), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError):  # not unix seconds after all
        return f"t={t}"


def _cut_index(tail_sizes: np.ndarray, target: int, lowest: int, highest: int) -> int:
    """The ``j`` in ``lowest..highest`` whose tail size is closest to ``target``."""
    candidates = np.arange(lowest, highest + 1)
    return int(candidates[np.argmin(np.abs(tail_sizes[candidates] - target))])


def _drop_cold(part: pd.DataFrame, train: pd.DataFrame, n_users: int, n_items: int):
    """``part`` without rows whose user or item is absent from ``train``; and how many."""
    known_users = np.zeros(n_users, dtype=bool)
    known_items = np.zeros(n_items, dtype=bool)
    known_users[_ints(train, "user_idx")] = True
    known_items[_ints(train, "item_idx")] = True
    warm = known_users[_ints(part, "user_idx")] & known_items[_ints(part, "item_idx")]
    return part[warm], int((~warm).sum())


def temporal_split(
    frame: pd.DataFrame,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.0,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    remove_cold: bool = True,
) -> Split:
    """Global temporal split: one cut-off time, the future is the test.

    Every row with ``timestamp >= cut`` is test, so the latest training
    interaction is strictly earlier than the earliest test interaction. Rows
    that share a timestamp always land in the same part, so with ties the cut
    is the distinct timestamp whose test share is closest to ``test_fraction``.
    An optional validation part is cut the same way just before the test.

    Args:
        frame: encoded interactions (``user_idx``, ``item_idx``, ``timestamp``).
        test_fraction: target share of all rows in the test, in (0, 1).
        validation_fraction: target share of all rows in the validation part,
            in [0, 1); 0 means no validation part.
        n_users, n_items: vocabulary sizes; default ``max index + 1``. Pass the
            encoder's sizes when it knows items that ``frame`` lacks.
        remove_cold: drop validation and test rows whose user or item never
            occurs in the training part (no model can have learnt them); the
            counts go to ``Split.cold_removed`` and the protocol.

    Raises:
        KeyError: ``frame`` is not encoded or has no ``timestamp``.
        ValueError: a bad fraction; too few distinct timestamps to cut; an
            empty test after removing cold rows.
    """
    _check_split_input(frame, needs_time=True)
    test_fraction = _check_fraction(test_fraction, "test_fraction")
    if validation_fraction != 0:
        validation_fraction = _check_fraction(validation_fraction, "validation_fraction")
    if test_fraction + validation_fraction >= 1:
        raise ValueError(
            f"test_fraction + validation_fraction = {test_fraction + validation_fraction:g} "
            "leaves nothing to train on; keep the sum below 1."
        )
    n_users = _vocabulary_size(frame, "user_idx", n_users, "n_users")
    n_items = _vocabulary_size(frame, "item_idx", n_items, "n_items")

    ts = _ints(frame, "timestamp")
    times, counts = np.unique(ts, return_counts=True)
    n_parts = 3 if validation_fraction else 2
    if len(times) < n_parts:
        raise ValueError(
            f"frame has {len(times)} distinct timestamp(s); a temporal split into {n_parts} "
            "parts needs at least that many. Use leave_one_out_split or random_split."
        )
    # tail[j] = number of rows with timestamp >= times[j]
    tail = np.cumsum(counts[::-1])[::-1]
    n = len(frame)
    j_test = _cut_index(tail, max(1, round(test_fraction * n)), n_parts - 1, len(times) - 1)
    test_cut = times[j_test]
    train_mask, test_mask = ts < test_cut, ts >= test_cut
    validation, val_text = None, ""
    if validation_fraction:
        target = tail[j_test] + max(1, round(validation_fraction * n))
        val_cut = times[_cut_index(tail, target, 1, j_test - 1)]
        train_mask = ts < val_cut
        validation = frame[(ts >= val_cut) & (ts < test_cut)]
        val_text = f", the {validation_fraction:.0%} before them validation (from {_when(val_cut)})"
    train, test = frame[train_mask], frame[test_mask]

    cold_removed: dict[str, int] = {}
    cold_text = "cold users/items kept in evaluation"
    if remove_cold:
        test, cold_removed["test"] = _drop_cold(test, train, n_users, n_items)
        cold_text = f"{cold_removed['test']} test"
        if validation is not None:
            validation, cold_removed["validation"] = _drop_cold(validation, train, n_users, n_items)
            cold_text += f" and {cold_removed['validation']} validation"
        cold_text += " rows of users/items unseen in training removed"
        if len(test) == 0:
            raise ValueError(
                "every test interaction involves a user or item unseen in training; use a "
                "larger test_fraction or remove_cold=False."
            )
    protocol = (
        f"global temporal split: interactions from {_when(test_cut)} on "
        f"(last {test_fraction:.0%} by time) are test{val_text}; {cold_text}"
    )
    return Split(train, validation, test, n_users, n_items, protocol, cold_removed)


def _rank_from_end(frame: pd.DataFrame, order_by: str = "timestamp") -> np.ndarray:
    """For each row, how many of its user's interactions come later (0 = the user's last).

    Order is by ``order_by``, then by row position, so ties keep the row order.
    """
    users = _ints(frame, "user_idx")
    order = np.lexsort((np.arange(len(frame)), _ints(frame, order_by), users))
    sorted_users = pd.Series(users[order])
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = sorted_users.groupby(sorted_users, sort=False).cumcount(ascending=False)
    return rank


def leave_one_out_split(
    frame: pd.DataFrame,
    validation: bool = True,
    *,
    drop_short_users: bool = False,
    n_users: int | None = None,
    n_items: int | None = None,
    order_by: str = "timestamp",
) -> Split:
    """Leave-one-out by time: each user's last interaction is the test.

    Per user, interactions are ordered by ``order_by`` (``timestamp``, or
    ``position`` for data that give only each user's order, like Amazon Beauty
    from :func:`recsys_book.data.load_beauty`) and, for equal values, by row order. The last one goes to test, the one before it to
    validation (if ``validation``), the rest to train. The common protocol of
    sequential-recommendation papers (SASRec, BERT4Rec); note that the test
    interactions of different users happen at different times, so a model may
    train on interactions later than another user's test.

    Args:
        frame: encoded interactions (``user_idx``, ``item_idx``, ``timestamp``).
        validation: also hold out each user's second-to-last interaction.
        drop_short_users: leave out users with too few interactions (3 with
            validation, else 2) instead of raising.
        n_users, n_items: vocabulary sizes; default ``max index + 1``.
        order_by: the numeric column that orders each user's interactions.

    Raises:
        KeyError: ``frame`` lacks ``user_idx``, ``item_idx`` or ``order_by``.
        TypeError: ``order_by`` is not a numeric column.
        ValueError: some users have too few interactions (and not ``drop_short_users``).
    """
    if not isinstance(order_by, str):
        raise TypeError(f"order_by must be a column name, got {order_by!r}.")
    validate_interactions(frame, required=(*_ENCODED, order_by))
    if not pd.api.types.is_numeric_dtype(frame[order_by]):
        raise TypeError(
            f"frame[{order_by!r}] must be numeric to order interactions, got dtype "
            f"{frame[order_by].dtype}."
        )
    n_users = _vocabulary_size(frame, "user_idx", n_users, "n_users")
    n_items = _vocabulary_size(frame, "item_idx", n_items, "n_items")
    need = 3 if validation else 2
    users = _ints(frame, "user_idx")
    per_user = np.bincount(users, minlength=n_users)
    short = np.flatnonzero((per_user > 0) & (per_user < need))
    dropped_text = ""
    if short.size:
        if not drop_short_users:
            raise ValueError(
                f"{short.size} user(s) have fewer than {need} interactions (user_idx "
                f"{_preview(short)}); leave-one-out needs {need} per user. Filter first with "
                f"kcore_filter(frame, min_user_interactions={need}, min_item_interactions=1) "
                "or pass drop_short_users=True."
            )
        frame = frame[per_user[users] >= need]
        dropped_text = f"; {short.size} users with fewer than {need} interactions left out"
    rank = _rank_from_end(frame, order_by)
    test = frame[rank == 0]
    val_part = frame[rank == 1] if validation else None
    train = frame[rank >= (2 if validation else 1)]
    by = "time" if order_by == "timestamp" else f"{order_by!r}"
    protocol = (
        f"leave-one-out by {by}: each user's last interaction is test"
        + (", the second-to-last validation" if validation else "")
        + f", the rest train (equal {order_by}s keep row order)"
        + dropped_text
    )
    return Split(train, val_part, test, n_users, n_items, protocol)


def random_split(
    frame: pd.DataFrame,
    test_fraction: float = 0.25,
    *,
    seed: int = 42,
    n_users: int | None = None,
    n_items: int | None = None,
) -> Split:
    """User-stratified random split: a random share of each user's rows is the test.

    A user with ``n`` interactions gets ``round(test_fraction * n)`` (halves
    round up) of them, chosen at random, in the test, but never all: at least
    one stays in train, so every user is in train. The same as the recommenders
    library's ``python_stratified_split(ratio=1 - test_fraction)`` up to
    rounding and random numbers.

    This split is **leaky in time**: a model trains on interactions that happen
    after some test interactions. It exists to compare with published tables
    that use it; prefer :func:`temporal_split`.

    Args:
        frame: encoded interactions (``user_idx``, ``item_idx``).
        test_fraction: share of each user's interactions in the test, in (0, 1).
        seed: the same seed and frame give the same split.
        n_users, n_items: vocabulary sizes; default ``max index + 1``.
    """
    _check_split_input(frame, needs_time=False)
    test_fraction = _check_fraction(test_fraction, "test_fraction")
    n_users = _vocabulary_size(frame, "user_idx", n_users, "n_users")
    n_items = _vocabulary_size(frame, "item_idx", n_items, "n_items")
    users = _ints(frame, "user_idx")
    per_user = np.bincount(users, minlength=n_users)
    n_test = np.minimum(np.floor(test_fraction * per_user + 0.5), per_user - 1)
    # shuffle within each user: sort by (user, random key); the first n_test[user] are test
    order = np.lexsort((np.random.default_rng(seed).random(len(frame)), users))
    sorted_users = pd.Series(users[order])
    position = np.empty(len(frame), dtype=np.int64)
    position[order] = sorted_users.groupby(sorted_users, sort=False).cumcount()
    is_test = position < n_test[users]
    protocol = (
        f"random user-stratified split (seed={seed}): about {test_fraction:.0%} of each "
        "user's interactions drawn at random for test, at least one kept in train; leaky in "
        "time (training contains interactions later than test ones), only for comparison with "
        "published tables that use it"
    )
    return Split(frame[~is_test], None, frame[is_test], n_users, n_items, protocol)


# --------------------------------------------------------------------------- sequences


def build_sequences(frame: pd.DataFrame, max_len: int, n_users: int | None = None) -> np.ndarray:
    """Each user's items in time order, left-padded: ``(n_users, max_len) int64``.

    Row ``u`` holds user ``u``'s most recent ``max_len`` items, oldest first, the
    most recent in the last column, and 0 (padding) before them. Equal
    timestamps keep the row order. Row 0 (the padding user) and the rows of
    users without interactions are all zeros. Repeated items are allowed.

    Args:
        frame: encoded interactions (``user_idx``, ``item_idx``, ``timestamp``),
            usually ``split.train``.
        max_len: sequence length (columns); longer histories are truncated to
            their most recent ``max_len`` items.
        n_users: rows; defaults to ``max user_idx + 1``.
    """
    max_len = _check_positive_int(max_len, "max_len")
    validate_interactions(frame, required=(*_ENCODED, "timestamp"), allow_duplicates=True)
    n_users = _vocabulary_size(frame, "user_idx", n_users, "n_users")
    rank = _rank_from_end(frame)
    recent = rank < max_len
    sequences = np.zeros((n_users, max_len), dtype=np.int64)
    sequences[_ints(frame, "user_idx")[recent], max_len - 1 - rank[recent]] = _ints(
        frame, "item_idx"
    )[recent]
    return sequences


def shifted_sequences(sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets for training a sequential model.

    ``inputs[:, t]`` is an item and ``targets[:, t]`` the item that followed it,
    so a causal model reading ``inputs[:, :t+1]`` learns to predict
    ``targets[:, t]``. Where the input is padding the target is 0 too (mask those
    positions out of the loss). Build the sequences with ``max_len + 1`` to get
    inputs of length ``max_len``.

    Args:
        sequences: ``(n, L) int64`` left-padded sequences from :func:`build_sequences`.

    Returns:
        ``(inputs, targets)``, each ``(n, L - 1) int64``.
    """
    sequences = np.asarray(sequences)
    if sequences.ndim != 2 or sequences.shape[1] < 2:
        raise ValueError(
            f"sequences must be 2-D with at least 2 columns, got shape {sequences.shape}; "
            "build them with build_sequences(frame, max_len=L + 1)."
        )
    if not np.issubdtype(sequences.dtype, np.integer):
        raise TypeError(f"sequences must hold integer item indices, got dtype {sequences.dtype}.")
    inputs = sequences[:, :-1].astype(np.int64)
    targets = np.where(inputs == 0, 0, sequences[:, 1:]).astype(np.int64)
    return inputs, targets


# --------------------------------------------------------------------------- negatives


def sample_negatives(
    users,
    n_negatives: int,
    seen: sp.spmatrix | sp.sparray,
    n_items: int,
    *,
    strategy: str = "uniform",
    item_counts: np.ndarray | None = None,
    seed: int | np.random.Generator = 0,
    max_rounds: int = 20,
) -> np.ndarray:
    """Items each user has not interacted with: ``(len(users), n_negatives) int64``.

    Each row holds ``n_negatives`` distinct items, none of them 0 (padding) and
    none stored in that user's row of ``seen``. Items are drawn uniformly from
    ``1..n_items-1`` (``"uniform"``) or with probability proportional to
    ``item_counts`` (``"popularity"``; items with count 0 are never drawn), then
    seen or repeated draws are redrawn, for all rows at once, for up to
    ``max_rounds`` rounds. The few cells still open after that (users who have
    seen nearly everything) are filled exactly from the list of their unseen items.

    Args:
        users: ``(batch,)`` user indices in ``1..seen.shape[0]-1``; may repeat.
        n_negatives: negatives per row, ``>= 1``.
        seen: ``(n_users, n_items)`` sparse matrix; every stored entry of row
            ``u`` is an item user ``u`` has seen (e.g. ``interaction_matrix(train, ...)``).
        n_items: vocabulary size including padding.
        strategy: ``"uniform"`` or ``"popularity"``.
        item_counts: ``(n_items,)`` non-negative weights for ``"popularity"``,
            e.g. ``np.bincount(train.item_idx, minlength=n_items)``.
        seed: an int or a NumPy Generator; the same seed gives the same negatives.
        max_rounds: rounds of vectorised redrawing before the exact fallback.

    Raises:
        ValueError: bad arguments, or a user with fewer unseen (drawable) items
            than ``n_negatives``.
    """
    n_negatives = _check_positive_int(n_negatives, "n_negatives")
    n_items = _check_positive_int(n_items, "n_items")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, Integral) or max_rounds < 0:
        raise ValueError(f"max_rounds must be a non-negative integer, got {max_rounds!r}.")
    if not sp.issparse(seen):
        raise TypeError(
            f"seen must be a scipy sparse matrix, got {type(seen).__name__}; build it with "
            "recsys_book.models.base.interaction_matrix(train, n_users, n_items)."
        )
    if seen.shape[1] != n_items:
        raise ValueError(
            f"seen has {seen.shape[1]} columns but n_items={n_items}; they must match."
        )
    users = np.asarray(users)
    if users.ndim != 1 or (users.size and not np.issubdtype(users.dtype, np.integer)):
        raise ValueError(
            f"users must be a 1-D array of integer user indices, got shape {users.shape} "
            f"and dtype {users.dtype}."
        )
    users = users.astype(np.int64)
    if users.size and (users.min() < 1 or users.max() >= seen.shape[0]):
        raise ValueError(
            f"user indices must lie in 1..{seen.shape[0] - 1} (0 is padding); got min "
            f"{users.min()}, max {users.max()}."
        )

    if strategy == "uniform":
        weights = np.ones(n_items)
    elif strategy == "popularity":
        if item_counts is None:
            raise ValueError(
                "strategy='popularity' needs item_counts, e.g. "
                "np.bincount(train['item_idx'], minlength=n_items)."
            )
        weights = np.asarray(item_counts, dtype=np.float64)
        if weights.shape != (n_items,) or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(
                f"item_counts must be {n_items} finite non-negative numbers (one per item "
                f"index), got shape {weights.shape}."
            )
        weights = weights.copy()
    else:
        raise ValueError(f"strategy must be 'uniform' or 'popularity', got {strategy!r}.")
    weights[0] = 0.0
    drawable = weights > 0
    if not drawable.any():
        raise ValueError("item_counts gives every item (other than padding) weight 0.")
    probabilities = weights / weights.sum()

    seen = sp.csr_matrix(seen, copy=True)
    seen.sum_duplicates()  # canonical: sorted column indices, so the keys below are sorted
    seen.data[:] = 1.0
    unseen = int(drawable.sum()) - (seen @ drawable.astype(np.float64))[users]
    if users.size and unseen.min() < n_negatives:
        bad = np.unique(users[unseen < n_negatives])
        raise ValueError(
            f"{bad.size} user(s) have fewer than n_negatives={n_negatives} unseen items to draw "
            f"(user_idx {_preview(bad)}); ask for fewer negatives."
        )

    rng = np.random.default_rng(seed)
    # seen (user, item) pairs as sorted keys user * n_items + item, looked up by binary search
    seen_keys = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)) * n_items + seen.indices

    def is_seen(keys: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(seen_keys, keys), max(len(seen_keys) - 1, 0))
        return seen_keys[pos] == keys if len(seen_keys) else np.zeros(len(keys), dtype=bool)

    negatives = np.zeros((len(users), n_negatives), dtype=np.int64)
    row_of = np.repeat(np.arange(len(users)), n_negatives)  # row of each flat cell
    open_cells = np.arange(negatives.size)
    for _ in range(max_rounds):
        if open_cells.size == 0:
            break
        draws = rng.choice(n_items, size=open_cells.size, p=probabilities)
        accept = ~is_seen(users[row_of[open_cells]] * n_items + draws)
        negatives.flat[open_cells[accept]] = draws[accept]
        open_cells = open_cells[~accept]
        if n_negatives > 1:  # reopen repeated items within a row, keeping one of each
            keys = row_of * n_items + negatives.ravel()
            filled = np.flatnonzero(negatives.ravel() > 0)
            _, first = np.unique(keys[filled], return_index=True)
            repeated = np.ones(filled.size, dtype=bool)
            repeated[first] = False
            negatives.flat[filled[repeated]] = 0
            open_cells = np.union1d(open_cells, filled[repeated])

    for row in np.unique(row_of[open_cells]):  # exact fallback, rare: see the docstring
        taken = np.union1d(
            seen.indices[seen.indptr[users[row]] : seen.indptr[users[row] + 1]], negatives[row]
        )
        candidates = np.setdiff1d(np.flatnonzero(drawable), taken)
        holes = np.flatnonzero(negatives[row] == 0)
        p = probabilities[candidates] / probabilities[candidates].sum()
        negatives[row, holes] = rng.choice(candidates, size=holes.size, replace=False, p=p)
    return negatives
