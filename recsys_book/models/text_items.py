"""Recommenders that read items: text embeddings from a language model, alone or with IDs.

An item's **text** (title, year, genres, tags) goes through a pretrained sentence
encoder (:mod:`recsys_book.text_encoder`), giving a unit vector ``t_i`` of size
384 for every item, including items nobody has interacted with yet. Two ways to
use it:

* :class:`TextContent`, no training: a user's profile is the mean of the text
  vectors of the items they interacted with, and an item's score is the cosine
  between profile and item,

      ``p_u = (1 / |I_u|) sum_{i in I_u} t_i``,       ``s(u, i) = cos(p_u, t_i)``.

* :class:`TextIDHybrid`, trained: an item's vector is its **ID embedding** plus a
  learned **projection of its text embedding**,

      v_i = m_i e_i + W t_i,        s(u, i) = u_u . v_i,

  where ``m_i = 1`` for items seen in training and 0 for cold items (whose ID
  embedding was never trained). Trained with a full softmax over the warm items
  (or BPR), the ID part fits what interactions say about known items, the text
  part what an item's description predicts, and only the latter reaches a cold
  item. With ``id_dropout = p``, each training step treats a random share ``p``
  of the warm items as cold (``m_i = 0``), so ``W`` must learn to rank from text
  alone (the idea of DropoutNet, Volkovs et al., 2017). ``use_ids=False`` gives
  a text-only two-tower model and ``use_text=False`` plain matrix factorisation:
  the three rows of the chapter's table from one class.

:func:`item_texts` writes the item texts; :func:`item_text_embeddings` encodes
them, remembering the result in memory for the rest of the run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_book.losses import MASK_LOGIT, bpr_loss, softmax_cross_entropy
from recsys_book.models.base import Recommender
from recsys_book.runtime import import_keras
from recsys_book.text_encoder import check_texts, load_minilm

keras = import_keras()
ops = keras.ops

__all__ = [
    "TEXT_FIELDS",
    "TextContent",
    "TextIDHybrid",
    "TextIDNet",
    "item_text_embeddings",
    "item_texts",
]

#: The parts of an item's text, in the order they are written.
TEXT_FIELDS = ("title", "year", "genres", "tags")


# --------------------------------------------------------------------------- item texts
def item_texts(
    items: pd.DataFrame,
    n_items: int,
    *,
    tags: pd.DataFrame | None = None,
    fields: Sequence[str] = TEXT_FIELDS,
    max_tags: int = 10,
) -> list[str]:
    """One short text per item index, e.g. ``"Toy Story (1995). Genres: Animation, Comedy."``.

    Args:
        items: frame with ``item_idx`` and the columns the ``fields`` need
            (``title``; ``year``, nullable; ``genres``, a list of str).
        n_items: vocabulary size including padding; the result has this length.
        tags: optional frame with ``item_idx`` and ``tag`` (one row per tag
            application, as ml-latest-small's); needed for the field ``"tags"``,
            which is skipped when ``tags`` is ``None``.
        fields: which of :data:`TEXT_FIELDS` to write.
        max_tags: at most this many tags per item, the most often applied first
            (ties in alphabetical order), lower-cased and de-duplicated.

    Returns:
        ``n_items`` strings; entry ``i`` describes item index ``i``. Entry 0
        (padding) and items absent from ``items`` are ``""``.

    Raises:
        KeyError: a column a field needs is missing.
        ValueError: an unknown field, a bad ``max_tags``, item indices outside
            ``1..n_items-1`` or duplicated.
    """
    unknown = [f for f in fields if f not in TEXT_FIELDS]
    if unknown or not fields:
        raise ValueError(f"fields must be a non-empty subset of {TEXT_FIELDS}, got {fields!r}.")
    if isinstance(max_tags, bool) or not isinstance(max_tags, int) or max_tags < 1:
        raise ValueError(f"max_tags must be a positive integer, got {max_tags!r}.")
    needed = ["item_idx", *[f for f in fields if f != "tags"]]
    missing = [c for c in needed if c not in items.columns]
    if missing:
        raise KeyError(
            f"items lacks the column(s) {missing}; map item_id to item_idx with the IdEncoder "
            "(items['item_idx'] = encoder.items_to_idx(items['item_id'])) or drop those fields."
        )
    idx = items["item_idx"].to_numpy()
    if len(idx) and (
        not np.issubdtype(idx.dtype, np.integer) or idx.min() < 1 or idx.max() >= n_items
    ):
        raise ValueError(f"items['item_idx'] must hold integers in 1..{n_items - 1}.")
    if pd.Series(idx).duplicated().any():
        raise ValueError("items['item_idx'] has duplicates; keep one row per item.")

    texts = [""] * n_items
    tag_lists: dict[int, list[str]] = {}
    if "tags" in fields and tags is not None:
        if not {"item_idx", "tag"} <= set(tags.columns):
            raise KeyError("tags must have the columns 'item_idx' and 'tag'.")
        t = tags[["item_idx", "tag"]].dropna().astype({"tag": str})
        t = t.assign(tag=t["tag"].str.strip().str.lower())
        counts = t[t["tag"] != ""].groupby(["item_idx", "tag"]).size().rename("n").reset_index()
        counts = counts.sort_values(["item_idx", "n", "tag"], ascending=[True, False, True])
        top = counts.groupby("item_idx").head(max_tags)
        tag_lists = top.groupby("item_idx")["tag"].agg(list).to_dict()

    for row in items.itertuples(index=False):  # one string per item: not a scoring path
        parts = []
        if "title" in fields:
            title = str(row.title).strip()
            year = getattr(row, "year", None) if "year" in fields else None
            parts.append(
                title + (f" ({int(year)})" if year is not None and not pd.isna(year) else "")
            )
        elif "year" in fields and not pd.isna(row.year):
            parts.append(f"Released in {int(row.year)}")
        if "genres" in fields and len(row.genres):
            parts.append("Genres: " + ", ".join(row.genres))
        if int(row.item_idx) in tag_lists:
            parts.append("Tags: " + ", ".join(tag_lists[int(row.item_idx)]))
        texts[int(row.item_idx)] = ". ".join(p for p in parts if p) + ("." if parts else "")
    return texts


_EMBEDDING_CACHE: dict[tuple[int, str], np.ndarray] = {}


def item_text_embeddings(texts: Sequence[str], encoder=None, batch_size: int = 64) -> np.ndarray:
    """Encode item texts: ``(len(texts), dim) float32`` unit rows; empty texts give zero rows.

    Args:
        texts: one text per item index (see :func:`item_texts`); ``""`` for the
            padding row and items without content.
        encoder: a :class:`~recsys_book.text_encoder.TextEncoder`; default
            :func:`~recsys_book.text_encoder.load_minilm`.
        batch_size: texts per forward pass.

    Returns:
        The embeddings. They are remembered in memory (keyed by the encoder and
        the texts) for the rest of the process, never written to disk; callers
        get a copy.
    """
    if encoder is None:
        encoder = load_minilm()
    texts = check_texts(texts)
    key = (id(encoder), hashlib.sha256("\x00".join(texts).encode()).hexdigest())
    if key not in _EMBEDDING_CACHE:
        has_text = np.array([bool(t.strip()) for t in texts], dtype=bool)
        out = np.zeros((len(texts), encoder.dim), np.float32)
        if has_text.any():
            chosen = [t for t, keep in zip(texts, has_text, strict=True) if keep]
            out[has_text] = encoder.encode(chosen, batch_size=batch_size)
        _EMBEDDING_CACHE[key] = out
    return _EMBEDDING_CACHE[key].copy()


def _check_embeddings(item_embeddings) -> np.ndarray:
    e = np.asarray(item_embeddings)
    if e.ndim != 2 or not np.issubdtype(e.dtype, np.number) or e.shape[1] < 1:
        raise TypeError(
            "item_embeddings must be a 2-D numeric array of shape (n_items, dim), row i for "
            f"item index i; got shape {getattr(e, 'shape', None)} and dtype {e.dtype}."
        )
    if not np.isfinite(e).all():
        raise ValueError("item_embeddings contains NaN or infinite values.")
    return e.astype(np.float32)


def _check_rows(e: np.ndarray, n_items: int) -> None:
    if e.shape[0] != n_items:
        raise ValueError(
            f"item_embeddings has {e.shape[0]} rows but n_items={n_items}; build one row per "
            "item index, padding row 0 included (item_texts(items, n_items))."
        )


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


# --------------------------------------------------------------------------- text-only profile
class TextContent(Recommender):
    """Cosine between a user's mean text embedding and every item's: no training, cold-ready.

    Args:
        item_embeddings: ``(n_items, dim)`` text embeddings, row ``i`` for item
            index ``i`` (see :func:`item_text_embeddings`); items without text
            have zero rows and score 0.

    The attributes below are set by ``fit``.

    Attributes:
        profiles_: ``(n_users, dim) float32`` unit-length user profiles (zero for
            users without training interactions).

    Raises:
        TypeError / ValueError: embeddings that are not a finite 2-D array;
            ``fit`` with an ``n_items`` other than their number of rows.
    """

    def __init__(self, item_embeddings) -> None:
        self.item_embeddings = _check_embeddings(item_embeddings)

    def _fit(self, train: pd.DataFrame) -> None:
        _check_rows(self.item_embeddings, self.n_items)
        self.items_ = _unit_rows(self.item_embeddings)
        x = self.seen_.copy()
        x.data[:] = 1.0
        counts = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)[:, None]
        self.profiles_ = _unit_rows(np.asarray(x @ self.items_) / counts).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items)``: ``cos(p_u, t_i)``, in ``[-1, 1]``."""
        return self.profiles_[users] @ self.items_.T

    def __repr__(self) -> str:
        return f"TextContent(dim={self.item_embeddings.shape[1]})"


# --------------------------------------------------------------------------- text + ID hybrid
class TextIDNet(keras.Model):
    """Keras network of :class:`TextIDHybrid`: item vectors ``v_i = m_i e_i + W t_i``.

    Inputs: ``{"user": (batch,)}`` int -> ``(batch, n_items)`` logits ``u . v_i``,
    cold items (``warm == 0``) masked to :data:`~recsys_book.losses.MASK_LOGIT`;
    or ``{"user", "pos", "neg": (batch,)}`` -> ``(batch, 2)`` scores of the
    positive and the negative (BPR).
    """

    def __init__(
        self,
        n_users: int,
        text: np.ndarray,
        warm: np.ndarray,
        *,
        dim: int,
        use_ids: bool,
        use_text: bool,
        id_dropout: float,
        l2: float,
        seed: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        n_items = text.shape[0]
        self.use_ids, self.use_text, self.id_dropout = use_ids, use_text, id_dropout
        reg = keras.regularizers.L2(l2) if l2 else None
        normal = keras.initializers.RandomNormal

        def table(name: str, rows: int, offset: int):
            layer = keras.layers.Embedding(
                rows,
                dim,
                embeddings_initializer=normal(stddev=0.05, seed=seed + offset),
                embeddings_regularizer=reg,
                name=name,
            )
            layer.build((None,))
            return layer

        self.user_embedding = table("user_embedding", n_users, 0)
        self.item_embedding = table("item_embedding", n_items, 1) if use_ids else None
        self.text_projection = None
        if use_text:
            self.text_projection = keras.layers.Dense(
                dim,
                use_bias=False,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2),
                kernel_regularizer=reg,
                name="text_projection",
            )
            self.text_projection.build((None, text.shape[1]))
        self.text = self.add_weight(
            shape=text.shape, initializer="zeros", trainable=False, name="item_text"
        )
        self.text.assign(text)
        self.warm = self.add_weight(
            shape=(n_items,), initializer="zeros", trainable=False, name="warm"
        )
        self.warm.assign(warm.astype("float32"))
        self.seed_generator = keras.random.SeedGenerator(seed + 3)

    def item_vectors(self, training: bool = False):
        """``(n_items, dim)`` item vectors; with ``training`` and ``id_dropout``, IDs dropped at random."""
        parts = []
        if self.use_text:
            parts.append(self.text_projection(self.text))
        if self.use_ids:
            m = self.warm
            if training and self.id_dropout > 0:
                keep = keras.random.uniform(ops.shape(m), seed=self.seed_generator)
                m = m * ops.cast(keep >= self.id_dropout, m.dtype)
            parts.append(m[:, None] * self.item_embedding.embeddings)
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def call(self, inputs, training=False):
        u = self.user_embedding(inputs["user"])
        v = self.item_vectors(training=training)
        if "neg" in inputs:
            pos = ops.sum(u * ops.take(v, inputs["pos"], axis=0), axis=-1)
            neg = ops.sum(u * ops.take(v, inputs["neg"], axis=0), axis=-1)
            return ops.stack([pos, neg], axis=-1)
        logits = ops.matmul(u, ops.transpose(v))
        return ops.where(self.warm[None, :] > 0, logits, MASK_LOGIT)


def _softmax_loss(y_true, y_pred):
    return softmax_cross_entropy(y_pred, y_true, padding_index=None, reduction="none")


def _bpr_loss(y_true, y_pred):
    return bpr_loss(y_pred[:, 0], y_pred[:, 1], reduction="none")


class TextIDHybrid(Recommender):
    """Matrix factorisation whose item vectors add a projection of the item's text embedding.

    Args:
        item_embeddings: ``(n_items, text_dim)`` frozen text embeddings, row ``i``
            for item index ``i`` (ignored, but still checked, when ``use_text=False``).
        dim: size ``d`` of the user, ID and projected text vectors.
        use_ids: add a trained ID embedding ``e_i`` for items seen in training.
        use_text: add the projection ``W t_i`` (``W``: ``text_dim x d``, trained).
        id_dropout: probability, per training step and item, of dropping the ID
            part, in ``[0, 1)``; needs both parts.
        loss: ``"softmax"`` (full cross-entropy over the warm items) or ``"bpr"``
            (one uniform warm negative per positive, fresh each epoch).
        epochs, batch_size, learning_rate: Adam schedule.
        l2: L2 penalty on the user, ID and projection weights (per step).
        seed: seeds initialisation, shuffling, negatives and ID dropout.

    The attributes below are set by ``fit``.

    Attributes:
        network_: the trained :class:`TextIDNet`.
        user_factors_: ``(n_users, d)`` float32.
        item_factors_: ``(n_items, d)`` float32, cold items from their text only
            (zero when ``use_text=False``).
        warm_items_: ``(n_items,)`` bool, items with training interactions.
        history_: training loss per epoch.
        fit_seconds_: wall time of ``fit``.

    Raises:
        ValueError: a hyper-parameter out of range, neither part used, or
            ``id_dropout`` without both parts.
    """

    def __init__(
        self,
        item_embeddings,
        dim: int = 64,
        *,
        use_ids: bool = True,
        use_text: bool = True,
        id_dropout: float = 0.0,
        loss: str = "softmax",
        epochs: int = 10,
        batch_size: int = 512,
        learning_rate: float = 5e-3,
        l2: float = 1e-4,
        seed: int = 42,
    ) -> None:
        self.item_embeddings = _check_embeddings(item_embeddings)
        for name, value in (
            ("dim", dim),
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("seed", seed),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | np.integer)
                or value < (0 if name == "seed" else 1)
            ):
                raise ValueError(
                    f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} integer, got {value!r}."
                )
        if not (use_ids or use_text):
            raise ValueError("use_ids and use_text are both False: the items would have no vector.")
        if not (isinstance(id_dropout, int | float) and 0.0 <= id_dropout < 1.0):
            raise ValueError(f"id_dropout must be a probability in [0, 1), got {id_dropout!r}.")
        if id_dropout > 0 and not (use_ids and use_text):
            raise ValueError(
                "id_dropout drops the ID part so the text part learns alone; it needs "
                "use_ids=True and use_text=True."
            )
        if loss not in ("softmax", "bpr"):
            raise ValueError(f"loss must be 'softmax' or 'bpr', got {loss!r}.")
        if not (isinstance(learning_rate, int | float) and learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}.")
        if not (isinstance(l2, int | float) and l2 >= 0):
            raise ValueError(f"l2 must be >= 0, got {l2!r}.")
        self.dim, self.use_ids, self.use_text = int(dim), bool(use_ids), bool(use_text)
        self.id_dropout, self.loss = float(id_dropout), loss
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.l2, self.seed = float(learning_rate), float(l2), int(seed)

    def _fit(self, train: pd.DataFrame) -> None:
        _check_rows(self.item_embeddings, self.n_items)
        start = time.perf_counter()
        self.warm_items_ = np.asarray(self.seen_.sum(axis=0)).ravel() > 0
        self.network_ = TextIDNet(
            self.n_users,
            self.item_embeddings,
            self.warm_items_,
            dim=self.dim,
            use_ids=self.use_ids,
            use_text=self.use_text,
            id_dropout=self.id_dropout,
            l2=self.l2,
            seed=self.seed,
        )
        self.network_.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=_softmax_loss if self.loss == "softmax" else _bpr_loss,
        )
        coo = self.seen_.tocoo()  # one row per (user, item) pair, duplicates merged
        users, items = coo.row.astype(np.int32), coo.col.astype(np.int32)
        warm_ids = np.flatnonzero(self.warm_items_).astype(np.int32)
        rng = np.random.default_rng(self.seed)
        self.history_ = []
        for _ in range(self.epochs):  # epochs; each one is batched inside fit
            order = rng.permutation(len(users))
            if self.loss == "softmax":
                x, y = {"user": users[order]}, items[order]
            else:
                neg = warm_ids[rng.integers(0, len(warm_ids), len(order))]
                x = {"user": users[order], "pos": items[order], "neg": neg}
                y = np.zeros(len(order), np.float32)
            h = self.network_.fit(
                x, y, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0
            )
            self.history_.append(float(h.history["loss"][-1]))
        self.user_factors_ = np.asarray(
            ops.convert_to_numpy(self.network_.user_embedding.embeddings), np.float32
        )
        self.item_factors_ = np.asarray(
            ops.convert_to_numpy(self.network_.item_vectors(training=False)), np.float32
        )
        self.fit_seconds_ = time.perf_counter() - start

    def _score(self, users: np.ndarray) -> np.ndarray:
        """``(batch, n_items)``: ``u_u . v_i``; cold items scored from their text (0 without it)."""
        return self.user_factors_[users] @ self.item_factors_.T

    def __repr__(self) -> str:
        parts = "+".join(p for p, on in (("ID", self.use_ids), ("text", self.use_text)) if on)
        return (
            f"TextIDHybrid({parts}, dim={self.dim}, id_dropout={self.id_dropout}, "
            f"loss={self.loss!r}, epochs={self.epochs})"
        )
