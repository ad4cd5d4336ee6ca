"""Item content features: what an item *is*, as a sparse matrix aligned with ``item_idx``.

Content-based filtering and feature-aware hybrids describe every item by a row
of features, the same way for items that have been rated and for items nobody
has seen yet. This module builds those rows from MovieLens metadata:

* **genres** as a multi-hot vector (``genre:Comedy``),
* **release year** as a one-hot bucket (``year:1990s``),
* **user tags** (ml-latest-small) as counts (``tag:dark comedy``),

and weights them with **TF-IDF**, so that a rare, specific feature ("film-noir",
the tag "heist") counts more than a common one ("Drama").

Every builder returns an :class:`ItemFeatures`: a ``(n_items, n_features)``
float32 CSR matrix whose row ``i`` describes the item with index ``i`` (row 0,
the padding item, is all zeros), plus one readable name per column. Frames must
carry the ``item_idx`` column made by :func:`recsys_book.preprocessing.encode_ids`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Genre labels that mean "no genre" rather than a genre (ml-latest-small, ml-100k).
MISSING_GENRES = ("(no genres listed)", "unknown")


@dataclass(frozen=True)
class ItemFeatures:
    """A content matrix aligned with the item indices.

    Attributes:
        matrix: ``(n_items, n_features) float32`` CSR; row ``i`` describes item
            index ``i``; row 0 (padding) is all zeros.
        names: one name per column, ``"<kind>:<value>"`` (``"genre:Action"``).
    """

    matrix: sp.csr_matrix
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not sp.issparse(self.matrix) or self.matrix.ndim != 2:
            raise TypeError("ItemFeatures.matrix must be a 2-D scipy.sparse matrix.")
        if self.matrix.shape[1] != len(self.names):
            raise ValueError(
                f"ItemFeatures has {self.matrix.shape[1]} columns but {len(self.names)} names."
            )

    @property
    def n_items(self) -> int:
        """Number of rows, padding row included."""
        return int(self.matrix.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return int(self.matrix.shape[1])

    def select(self, kind: str) -> ItemFeatures:
        """The columns whose name starts with ``"<kind>:"`` (``"genre"``, ``"year"``, ``"tag"``)."""
        cols = [j for j, n in enumerate(self.names) if n.startswith(kind + ":")]
        if not cols:
            kinds = sorted({n.split(":", 1)[0] for n in self.names})
            raise KeyError(f"no feature of kind {kind!r}; this matrix has kinds {kinds}.")
        return ItemFeatures(self.matrix[:, cols].tocsr(), tuple(self.names[j] for j in cols))

    def describe(self, item: int, top: int = 5) -> list[tuple[str, float]]:
        """The ``top`` largest features of item index ``item`` as ``(name, weight)`` pairs."""
        if not 0 <= item < self.n_items:
            raise ValueError(f"item index {item} is outside 0..{self.n_items - 1}.")
        row = self.matrix.getrow(item)
        order = np.argsort(-row.data, kind="stable")[:top]
        return [(self.names[row.indices[j]], float(row.data[j])) for j in order]

    def to_frame(self, items: Iterable[int] | None = None) -> pd.DataFrame:
        """Dense view (rows = item indices, columns = feature names) for display."""
        rows = np.arange(self.n_items) if items is None else np.asarray(list(items))
        return pd.DataFrame(self.matrix[rows].toarray(), index=rows, columns=list(self.names))


# --------------------------------------------------------------------------- helpers


def _check_items(
    items: pd.DataFrame, n_items: int, column: str, name: str = "items", unique: bool = True
) -> None:
    """Validate a frame keyed by ``item_idx`` (one row per item when ``unique``)."""
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(items).__name__}.")
    if "item_idx" not in items.columns:
        raise KeyError(
            f"{name} lacks the 'item_idx' column; map item_id to item_idx with the IdEncoder "
            "returned by recsys_book.preprocessing.encode_ids(ratings, items=items)."
        )
    if column not in items.columns:
        raise KeyError(f"{name} lacks the column {column!r}; columns are {list(items.columns)}.")
    if not isinstance(n_items, int | np.integer) or n_items < 2:
        raise ValueError(f"n_items must be an integer >= 2 (padding + one item), got {n_items!r}.")
    idx = items["item_idx"]
    if idx.isna().any() or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(
            f"{name}['item_idx'] must hold integers without missing values; drop items the "
            "encoder does not know before building features."
        )
    if len(idx) and (idx.min() < 1 or idx.max() >= n_items):
        raise ValueError(
            f"{name}['item_idx'] must lie in 1..{n_items - 1} (n_items={n_items}); "
            f"got min {idx.min()}, max {idx.max()}."
        )
    if unique and idx.duplicated().any():
        dup = int(idx[idx.duplicated()].iloc[0])
        raise ValueError(f"{name}['item_idx'] has duplicates (e.g. {dup}); one row per item.")


def _from_tokens(
    item_idx: np.ndarray, tokens: Sequence[str], values: np.ndarray, n_items: int, kind: str
) -> ItemFeatures:
    """Scatter ``(item_idx, token, value)`` triples into an ItemFeatures (duplicates summed)."""
    vocab = sorted(set(tokens))
    col = {t: j for j, t in enumerate(vocab)}
    cols = np.fromiter((col[t] for t in tokens), dtype=np.int64, count=len(tokens))
    m = sp.csr_matrix(
        (np.asarray(values, np.float32), (np.asarray(item_idx, np.int64), cols)),
        shape=(n_items, len(vocab)),
        dtype=np.float32,
    )
    m.sum_duplicates()
    return ItemFeatures(m, tuple(f"{kind}:{t}" for t in vocab))


# --------------------------------------------------------------------------- builders


def genre_multi_hot(
    items: pd.DataFrame, n_items: int, ignore: Sequence[str] = MISSING_GENRES
) -> ItemFeatures:
    """Multi-hot genres: entry ``(i, g)`` is 1 when item ``i`` has genre ``g``.

    Args:
        items: frame with ``item_idx`` and ``genres`` (a list of strings per row).
        n_items: vocabulary size including the padding row.
        ignore: labels that mean "no genre"; such items get an all-zero row.

    Returns:
        ``ItemFeatures`` with columns ``"genre:<name>"``, sorted by name.
    """
    _check_items(items, n_items, "genres")
    exploded = items[["item_idx", "genres"]].explode("genres").dropna()
    exploded = exploded[~exploded["genres"].isin(list(ignore))].drop_duplicates()
    return _from_tokens(
        exploded["item_idx"].to_numpy(),
        exploded["genres"].astype(str).tolist(),
        np.ones(len(exploded), np.float32),
        n_items,
        "genre",
    )


def year_buckets(items: pd.DataFrame, n_items: int, width: int = 10) -> ItemFeatures:
    """One-hot release-year buckets of ``width`` years (``width=10``: decades).

    Items whose year is missing get an all-zero row. Column names are the
    bucket's first year with an ``s`` (``"year:1990s"``); with ``width != 10``
    they are ranges (``"year:1990-1994"``).

    Raises:
        ValueError: if ``width`` is not a positive integer.
    """
    if not isinstance(width, int | np.integer) or width < 1:
        raise ValueError(f"width must be a positive integer number of years, got {width!r}.")
    _check_items(items, n_items, "year")
    known = items[items["year"].notna()]
    start = (known["year"].astype("int64").to_numpy() // width) * width
    labels = [f"{s}s" if width == 10 else f"{s}-{s + width - 1}" for s in start]
    return _from_tokens(
        known["item_idx"].to_numpy(), labels, np.ones(len(known), np.float32), n_items, "year"
    )


def tag_counts(tags: pd.DataFrame, n_items: int, min_items: int = 2) -> ItemFeatures:
    """How many times each (lower-cased, stripped) tag was applied to each item.

    Args:
        tags: frame with ``item_idx`` and ``tag`` (one row per tag application).
        n_items: vocabulary size including the padding row.
        min_items: keep only tags applied to at least this many distinct items;
            a tag on a single item cannot make two items similar.

    Raises:
        KeyError: if a column is missing; ValueError: if ``min_items < 1``.
    """
    if not isinstance(min_items, int | np.integer) or min_items < 1:
        raise ValueError(f"min_items must be a positive integer, got {min_items!r}.")
    _check_items(tags, n_items, "tag", name="tags", unique=False)
    t = tags[["item_idx", "tag"]].dropna().copy()
    t["tag"] = t["tag"].astype(str).str.strip().str.lower()
    t = t[t["tag"] != ""]
    spread = t.groupby("tag")["item_idx"].nunique()
    t = t[t["tag"].isin(spread.index[spread >= min_items])]
    return _from_tokens(
        t["item_idx"].to_numpy(), t["tag"].tolist(), np.ones(len(t), np.float32), n_items, "tag"
    )


def hstack(*blocks: ItemFeatures) -> ItemFeatures:
    """Concatenate feature blocks column-wise (all must have the same ``n_items``)."""
    if not blocks:
        raise ValueError("hstack needs at least one ItemFeatures block.")
    sizes = {b.n_items for b in blocks}
    if len(sizes) != 1:
        raise ValueError(f"blocks have different numbers of rows {sorted(sizes)}; use one n_items.")
    m = sp.hstack([b.matrix for b in blocks], format="csr", dtype=np.float32)
    return ItemFeatures(m, tuple(n for b in blocks for n in b.names))


# --------------------------------------------------------------------------- weighting


def idf(counts: sp.spmatrix, smooth: bool = True) -> np.ndarray:
    """Inverse document frequency of each column: ``(n_features,) float32``.

    With ``N`` items (rows 1.., the padding row excluded) and ``df_t`` the
    number of items that have feature ``t``::

        smooth=True:   idf_t = ln((1 + N) / (1 + df_t)) + 1
        smooth=False:  idf_t = ln(N / df_t) + 1

    (scikit-learn's ``TfidfTransformer`` conventions; the ``+ 1`` keeps a
    feature that every item has from vanishing altogether).
    """
    m = sp.csr_matrix(counts)[1:]
    n = m.shape[0]
    df = np.diff(m.tocsc().indptr).astype(np.float64)
    if smooth:
        return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    with np.errstate(divide="ignore"):
        return (np.log(n / df) + 1.0).astype(np.float32)


def l2_normalize_rows(m: sp.spmatrix) -> sp.csr_matrix:
    """Scale every non-zero row of ``m`` to unit Euclidean length (zero rows stay zero)."""
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ m)


def tfidf(
    features: ItemFeatures, smooth: bool = True, sublinear_tf: bool = False, norm: bool = True
) -> ItemFeatures:
    """TF-IDF weighting: ``w_it = tf_it * idf_t``, then (``norm``) unit-length rows.

    Args:
        features: raw counts (tag applications) or 0/1 indicators (genres).
        smooth: see :func:`idf`.
        sublinear_tf: use ``1 + ln(tf)`` instead of ``tf`` (damps a tag applied
            50 times to one film).
        norm: divide each row by its Euclidean length, so that a dot product of
            two rows is their cosine similarity.

    Returns:
        A new ``ItemFeatures`` with the same names.
    """
    if not isinstance(features, ItemFeatures):
        raise TypeError(f"tfidf expects ItemFeatures, got {type(features).__name__}.")
    tf = sp.csr_matrix(features.matrix, dtype=np.float32, copy=True)
    if (tf.data < 0).any():
        raise ValueError("tfidf needs non-negative counts; got negative entries.")
    if sublinear_tf:
        tf.data = np.where(tf.data > 0, 1.0 + np.log(np.maximum(tf.data, 1e-12)), 0.0)
    w = sp.csr_matrix(tf @ sp.diags(idf(tf, smooth)))
    w.eliminate_zeros()
    return ItemFeatures(l2_normalize_rows(w) if norm else w.astype(np.float32), features.names)


def build_item_features(
    items: pd.DataFrame,
    n_items: int,
    tags: pd.DataFrame | None = None,
    *,
    genres: bool = True,
    years: bool = True,
    year_width: int = 10,
    min_tag_items: int = 2,
    weighting: str = "tfidf",
) -> ItemFeatures:
    """The book's default item profile: genres + year bucket (+ tags), TF-IDF weighted.

    Args:
        items: frame with ``item_idx``, ``genres`` and ``year``.
        n_items: vocabulary size including the padding row.
        tags: optional tag applications with ``item_idx`` and ``tag``; tags on
            items missing from ``items`` are ignored.
        genres, years: include these blocks.
        year_width: bucket width in years.
        min_tag_items: see :func:`tag_counts`.
        weighting: ``"tfidf"`` (sublinear tf, smoothed idf, unit rows) or
            ``"binary"`` (raw indicators and counts, unit rows).

    Returns:
        ``ItemFeatures`` with columns ``genre:*``, ``year:*`` and ``tag:*``.

    Raises:
        ValueError: if no block is selected or ``weighting`` is unknown.
    """
    if weighting not in ("tfidf", "binary"):
        raise ValueError(f"weighting must be 'tfidf' or 'binary', got {weighting!r}.")
    blocks = []
    if genres:
        blocks.append(genre_multi_hot(items, n_items))
    if years:
        blocks.append(year_buckets(items, n_items, year_width))
    if tags is not None:
        if "item_idx" not in tags.columns:
            if "item_id" not in tags.columns or "item_id" not in items.columns:
                raise KeyError("tags needs 'item_idx', or 'item_id' matching items['item_id'].")
            tags = tags.merge(items[["item_id", "item_idx"]], on="item_id", how="inner")
        tags = tags[tags["item_idx"].isin(items["item_idx"])]
        blocks.append(tag_counts(tags, n_items, min_tag_items))
    if not blocks:
        raise ValueError("select at least one block: genres=True, years=True or pass tags.")
    raw = hstack(*blocks)
    if weighting == "tfidf":
        return tfidf(raw, smooth=True, sublinear_tf=True, norm=True)
    return ItemFeatures(l2_normalize_rows(raw.matrix), raw.names)
