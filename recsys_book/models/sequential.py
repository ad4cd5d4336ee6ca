"""Sequence models of behaviour: the transformer block and the shared recommender.

A *behaviour sequence* is one user's items in the order they were consumed,
``s = (s_1, ..., s_n)``. A sequential recommender reads a prefix and scores the
next item with the inner product of a hidden state and each item's embedding,

    z_t(j) = h_t . e_j,        p(s_{t+1} = j | s_1..s_t) = softmax_j z_t(j),

so the catalogue's embedding table is both the input layer and the output
layer ("tied" embeddings). Models differ in how they compute ``h_t``:
self-attention over the prefix (:class:`~recsys_book.models.sasrec.SASRec`),
a recurrent network (:class:`~recsys_book.models.gru4rec.GRU4Rec`), or
attention over the whole sequence with some items masked
(:class:`~recsys_book.models.bert4rec.BERT4Rec`).

This module holds what they share:

* :class:`TransformerConfig`, :class:`MultiHeadSelfAttention`,
  :class:`TransformerBlock` and :class:`TransformerEncoder`: a transformer in
  the style of nanoGPT's ``model.py`` -- scaled dot-product attention with a
  causal (or bidirectional) mask and a padding mask, learned positional
  embeddings, pre-LayerNorm blocks (or Kang & McAuley's SASRec wiring) -- in
  ``keras.ops``/``keras.layers`` only;
* :func:`attention_mask`, the boolean mask written out so it can be tested;
* :class:`NextItemNetwork`, the Keras model whose ``compute_loss`` implements
  the three losses of :mod:`recsys_book.losses` a sequence model is trained with
  (full softmax, sampled softmax with logQ correction, BCE with one negative);
* :class:`SequentialRecommender`, the :class:`~recsys_book.models.base.Recommender`
  that keeps each user's training history, trains on batches of similar length,
  optionally picks the epoch on a validation item, and scores histories.

Layout of a sequence: a ``(batch, width) int`` array of item indices,
**left-padded** with 0 and the most recent item in the last column (as
:func:`recsys_book.preprocessing.build_sequences` makes them). By default
positions are counted as if every sequence were left-padded to ``max_len``
(``positions="from_start"`` counts from each first item instead): column ``c`` of a
width-``W`` array has position ``max_len - W + c``, so dropping all-padding
columns on the left changes nothing, and training batches can be trimmed to
their longest sequence.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys_book import losses
from recsys_book.models.base import (
    Recommender,
    check_interactions,
    check_nonnegative,
    check_positive_int,
)
from recsys_book.preprocessing import build_sequences, shifted_sequences
from recsys_book.reports import epoch_line
from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops

__all__ = [
    "LOSSES",
    "MultiHeadSelfAttention",
    "NextItemNetwork",
    "SequentialRecommender",
    "TransformerBlock",
    "TransformerConfig",
    "TransformerEncoder",
    "at_targets",
    "attention_mask",
    "bucket_widths",
    "length_batches",
    "negative_slots",
    "ordered",
    "sparse_targets",
    "unique_negatives",
]

#: Training losses of a next-item model (see :class:`NextItemNetwork`).
LOSSES = ("softmax", "sampled", "bce")
PROPOSALS = ("uniform", "popularity")
LR_SCHEDULES = ("constant", "cosine")
#: Transformer block wirings (see :class:`TransformerBlock`).
BLOCKS = ("pre_ln", "sasrec")
#: Where positional embeddings are counted from (see :class:`TransformerEncoder`).
POSITIONS = ("from_end", "from_start")
ORDER_COLUMNS = ("timestamp", "position")


# --------------------------------------------------------------------------- transformer


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a :class:`TransformerEncoder` (the nanoGPT ``GPTConfig`` of the book).

    Args:
        vocab_size: rows of the item embedding table: ``n_items`` (padding
            included), plus one for BERT4Rec's ``[mask]`` token.
        max_len: longest sequence; one learned positional embedding per position.
        d_model: width ``d`` of embeddings and hidden states.
        n_heads: attention heads; ``d_model`` must be divisible by it.
        n_layers: transformer blocks.
        d_ff: width of the feed-forward layer of each block (``None``: ``4 d`` for
            the ``"pre_ln"`` block, ``d`` for the ``"sasrec"`` block, as each
            original has it).
        dropout: dropout rate on embeddings, attention weights and residual branches.
        causal: position ``t`` attends only to positions ``<= t`` (SASRec); ``False``
            lets every position attend to the whole sequence (BERT4Rec).
        init_std: standard deviation of the normal initial weights.
        scale_embeddings: multiply the item embeddings by ``sqrt(d_model)`` where
            they enter the encoder (not in the output layer), as the original
            Transformer and SASRec do; with ``init_std = 0.02`` the items then
            outweigh the positional embeddings eightfold at ``d = 64``.
        block: ``"pre_ln"`` (default; nanoGPT's pre-LayerNorm block) or ``"sasrec"``
            (Kang & McAuley's wiring, as in their code); see :class:`TransformerBlock`.
        positions: ``"from_end"`` (default): the last column is always position
            ``max_len - 1``; ``"from_start"``: each sequence's first real item is
            position 0, as in right-padded implementations. See
            :class:`TransformerEncoder`.
        seed: seeds initial weights and dropout.

    Raises:
        ValueError: a size out of range, ``d_model`` not divisible by ``n_heads``,
            or an unknown ``block`` or ``positions``.
    """

    vocab_size: int
    max_len: int = 50
    d_model: int = 64
    n_heads: int = 1
    n_layers: int = 2
    d_ff: int | None = None
    dropout: float = 0.2
    causal: bool = True
    init_std: float = 0.02
    scale_embeddings: bool = False
    block: str = "pre_ln"
    positions: str = "from_end"
    seed: int = 42

    def __post_init__(self) -> None:
        for name, allowed in (("block", BLOCKS), ("positions", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is unknown; choose one of {allowed}."
                )
        for name in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers"):
            check_positive_int(name, getattr(self, name))
        if self.d_ff is not None:
            check_positive_int("d_ff", self.d_ff)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; each "
                "head gets d_model / n_heads dimensions."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}.")
        check_nonnegative("init_std", self.init_std, strict=True)

    @property
    def ff_width(self) -> int:
        if self.d_ff is not None:
            return self.d_ff
        return self.d_model if self.block == "sasrec" else 4 * self.d_model


def _normal(std: float, seed: int):
    return keras.initializers.RandomNormal(stddev=std, seed=seed)


def attention_mask(sequences, causal: bool = True):
    """Which keys each query may attend to: ``(batch, 1, W, W) bool``.

    Entry ``[b, 0, i, j]`` is True when position ``i`` of sequence ``b`` may use
    position ``j``: ``j`` is not padding and, if ``causal``, ``j <= i``. Rows of
    padding queries may be all False; their outputs are discarded.

    Args:
        sequences: ``(batch, W)`` int item indices, 0 = padding.
        causal: add the lower-triangular (no peeking ahead) constraint.
    """
    batch, width = ops.shape(sequences)[0], ops.shape(sequences)[1]
    keys = ops.not_equal(sequences, 0)[:, None, None, :]  # (B, 1, 1, W)
    if not causal:
        return ops.broadcast_to(keys, (batch, 1, width, width))
    pos = ops.arange(width)
    lower = ops.greater_equal(pos[:, None], pos[None, :])  # (W, W): key j <= query i
    return ops.logical_and(keys, lower[None, None, :, :])


class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention with ``n_heads`` heads.

    For queries ``Q``, keys ``K`` and values ``V`` (linear maps of the input),
    each head computes ``softmax(Q K^T / sqrt(d_head) + M) V``, where ``M`` is 0
    where :func:`attention_mask` allows and a very negative number elsewhere.
    Scores and softmax are computed in float32 (safe under mixed precision).
    A padding query, which may attend to nothing, gets all-zero weights.

    Call: ``x (B, W, d)``, ``mask (B, 1, W, W) bool`` -> ``(B, W, d)``, and also
    the attention weights ``(B, n_heads, W, W) float32`` with ``return_weights``.
    ``queries (B, W, d)``, if given, supplies the queries while ``x`` supplies
    keys and values (the ``"sasrec"`` block); by default all three come from ``x``.
    """

    def __init__(self, config: TransformerConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        d, std, seed = config.d_model, config.init_std, config.seed
        self.qkv = keras.layers.Dense(3 * d, kernel_initializer=_normal(std, seed), name="qkv")
        # nanoGPT: residual projections start smaller, by 1/sqrt(2 * n_layers)
        self.proj = keras.layers.Dense(
            d, kernel_initializer=_normal(std / math.sqrt(2 * config.n_layers), seed + 1),
            name="proj",
        )  # fmt: skip
        self.attn_dropout = keras.layers.Dropout(config.dropout, seed=seed + 2)
        self.resid_dropout = keras.layers.Dropout(config.dropout, seed=seed + 3)

    def call(self, x, mask, training=False, return_weights=False, queries=None):
        h = self.config.n_heads
        d_head = self.config.d_model // h
        batch, width = ops.shape(x)[0], ops.shape(x)[1]

        def split_heads(t):  # (B, W, d) -> (B, h, W, d_head)
            return ops.transpose(ops.reshape(t, (batch, width, h, d_head)), (0, 2, 1, 3))

        q, k, v = (split_heads(t) for t in ops.split(self.qkv(x), 3, axis=-1))
        if queries is not None:  # one more (B, W, d) x (d, 3d) product; small beside the items
            q = split_heads(ops.split(self.qkv(queries), 3, axis=-1)[0])
        scores = ops.matmul(
            ops.cast(q, "float32"), ops.transpose(ops.cast(k, "float32"), (0, 1, 3, 2))
        )
        scores = ops.where(mask, scores / math.sqrt(d_head), losses.MASK_LOGIT)
        # (B, h, W, W) float32; rows with no allowed key (padding queries) become all 0
        weights = ops.where(mask, ops.softmax(scores, axis=-1), 0.0)
        y = ops.matmul(self.attn_dropout(ops.cast(weights, v.dtype), training=training), v)
        y = ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (batch, width, self.config.d_model))
        y = self.resid_dropout(self.proj(y), training=training)
        return (y, weights) if return_weights else y


class TransformerBlock(keras.layers.Layer):
    """One transformer block, wired as ``config.block`` says.

    * ``"pre_ln"`` (nanoGPT, GPT-2): ``x + Attn(LN(x))``, then ``x + FFN(LN(x))``,
      with ``FFN = Dense(d_ff, gelu) -> Dense(d) -> Dropout``. The residual
      stream itself is never normalised.
    * ``"sasrec"`` (Kang & McAuley's code): the queries are normalised, keys and
      values are not, and the residual starts from the normalised queries:
      ``q = LN(x); x = LN(q + Attn(q; x, x))``, then ``x + FFN(x)`` with
      ``FFN = Dense(d_ff, relu) -> Dropout -> Dense(d) -> Dropout`` and ``d_ff =
      d``. Every block so renormalises the stream it passes on.

    Both have the same layers and so the same parameters for the same ``d_ff``.
    Call as :class:`MultiHeadSelfAttention`.
    """

    def __init__(self, config: TransformerConfig, **kwargs):
        super().__init__(**kwargs)
        seed = config.seed
        self.sasrec = config.block == "sasrec"
        self.ln_1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_1")
        self.attn = MultiHeadSelfAttention(config, name="attn")
        self.ln_2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_2")
        self.fc = keras.layers.Dense(
            config.ff_width, activation="relu" if self.sasrec else "gelu",
            kernel_initializer=_normal(config.init_std, seed + 4), name="fc",
        )  # fmt: skip
        self.fc_proj = keras.layers.Dense(
            config.d_model,
            kernel_initializer=_normal(config.init_std / math.sqrt(2 * config.n_layers), seed + 5),
            name="fc_proj",
        )
        self.ff_dropout = keras.layers.Dropout(config.dropout, seed=seed + 6)
        if self.sasrec:  # only here, so the pre-LN block's state stays as it was
            self.fc_dropout = keras.layers.Dropout(config.dropout, seed=seed + 7)

    def call(self, x, mask, training=False, return_weights=False):
        if self.sasrec:
            q = self.ln_1(x)
            a, weights = self.attn(x, mask, training=training, return_weights=True, queries=q)
            x = self.ln_2(q + a)
            hidden = self.fc_dropout(self.fc(x), training=training)
            x = x + self.ff_dropout(self.fc_proj(hidden), training=training)
        else:
            a, weights = self.attn(self.ln_1(x), mask, training=training, return_weights=True)
            x = x + a
            x = x + self.ff_dropout(self.fc_proj(self.fc(self.ln_2(x))), training=training)
        return (x, weights) if return_weights else x


class TransformerEncoder(keras.layers.Layer):
    """Item sequences to hidden states: embeddings + positions -> blocks -> LayerNorm.

    Call: ``sequences (B, W) int`` with ``W <= max_len``, left-padded with 0 ->
    ``(B, W, d)`` hidden states (zero at padding positions); with
    ``return_attention=True`` also a list of ``n_layers`` attention weight arrays
    ``(B, n_heads, W, W)``. With ``positions="from_end"`` column ``c`` gets
    positional embedding ``max_len - W + c`` (so the most recent item is always
    position ``max_len - 1``); with ``"from_start"`` each sequence's first real
    item gets position 0, the next 1, and so on (the last item's position then
    tells the model how long the history is).

    Attributes:
        item_embedding: the ``(vocab_size, d)`` table, shared with the output layer.
    """

    def __init__(self, config: TransformerConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        std, seed = config.init_std, config.seed
        self.item_embedding = keras.layers.Embedding(
            config.vocab_size, config.d_model, embeddings_initializer=_normal(std, seed + 7),
            name="item_embedding",
        )  # fmt: skip
        self.position_embedding = keras.layers.Embedding(
            config.max_len, config.d_model, embeddings_initializer=_normal(std, seed + 8),
            name="position_embedding",
        )  # fmt: skip
        self.dropout = keras.layers.Dropout(config.dropout, seed=seed + 9)
        self.blocks = [
            TransformerBlock(
                dataclasses.replace(config, seed=seed + 100 * (i + 1)),
                name=f"block_{i}",
            )
            for i in range(config.n_layers)
        ]
        self.ln_f = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")

    def call(self, sequences, training=False, return_attention=False):
        sequences = ops.cast(sequences, "int32")
        width = ops.shape(sequences)[1]
        real = ops.cast(ops.not_equal(sequences, 0), "int32")  # (B, W)
        x = self.item_embedding(sequences)
        if self.config.scale_embeddings:
            x = x * math.sqrt(self.config.d_model)
        if self.config.positions == "from_start":
            positions = ops.maximum(ops.cumsum(real, axis=1) - 1, 0)  # (B, W)
            x = x + self.position_embedding(positions)
        else:
            positions = ops.arange(self.config.max_len - width, self.config.max_len, dtype="int32")
            x = x + self.position_embedding(positions)[None, :, :]
        keep = ops.cast(real, x.dtype)[:, :, None]  # (B, W, 1)
        x = self.dropout(x, training=training) * keep
        mask = attention_mask(sequences, self.config.causal)
        maps = []
        for block in self.blocks:
            x, weights = block(x, mask, training=training, return_weights=True)
            x = x * keep
            maps.append(weights)
        x = self.ln_f(x) * keep
        return (x, maps) if return_attention else x


# --------------------------------------------------------------------------- losses


class NextItemNetwork(keras.Model):
    """Base Keras model: ``(B, W)`` item sequences -> ``(B, W, d)`` hidden states.

    Subclasses define ``call`` and :meth:`output_embeddings`; this class turns
    hidden states ``h`` and targets into the loss, always in float32. ``y`` of
    ``train_on_batch(x, y)`` depends on ``loss``:

    * ``"softmax"``: ``targets (B, W)``; logits ``h E^T`` over every item
      (:func:`recsys_book.losses.softmax_cross_entropy`; padding column excluded).
    * ``"bce"``: ``(B, W, 2)``: target and one sampled negative per position
      (:func:`recsys_book.losses.bce_with_negatives`).
    * ``"sampled"``: ``(targets (B, W), negatives (k,), log_q (k,))``: ``k``
      distinct negatives shared by the batch, ``log_q = log(m q_s / c_s)`` for an
      item drawn ``c_s`` times in ``m`` draws (:func:`unique_negatives`)
      (:func:`recsys_book.losses.sampled_softmax_loss`, logQ-corrected, accidental
      hits removed).

    Targets equal to 0 (padding, or unmasked positions for BERT4Rec) carry no loss.
    For ``"softmax"`` and ``"sampled"`` the targets ``(B, W)`` may instead come as a
    pair ``(positions (K,), targets (K,))`` of flat indices into ``B x W`` and their
    items: only those ``K`` hidden states are scored (BERT4Rec, whose loss lives at
    the masked fifth of the positions, so the catalogue-wide logits shrink fivefold).
    """

    def __init__(self, n_items: int, loss: str = "softmax", **kwargs):
        super().__init__(**kwargs)
        self.n_items = int(n_items)
        self.loss_name = loss
        padding = np.zeros(self.n_items, np.float32)
        padding[0] = losses.MASK_LOGIT
        self.padding_logit = padding  # added to full-catalogue logits: never predict padding
        #: None: a batch's loss is the mean over its targets; a float ``c``: ``c`` times
        #: their sum (``SequentialRecommender(position_weighted=True)`` sets it)
        self.position_scale: float | None = None

    def output_embeddings(self):  # pragma: no cover - abstract
        """``(n_items, d)`` output item embeddings (row 0 is padding)."""
        raise NotImplementedError

    def logits(self, hidden):
        """``(..., n_items) float32`` scores ``h . e_j`` of every item, padding at MASK_LOGIT."""
        e = ops.cast(self.output_embeddings(), "float32")
        padding = ops.convert_to_tensor(self.padding_logit)  # a NumPy array: make it a tensor
        return ops.matmul(ops.cast(hidden, "float32"), ops.transpose(e)) + padding

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self._loss(y, y_pred, "mean" if self.position_scale is None else "sum")
        return loss if self.position_scale is None else loss * self.position_scale

    def _loss(self, y, y_pred, reduction: str):
        if self.loss_name == "softmax":
            # (losses.softmax_cross_entropy(..., target_logits=h . e_y) is about 15 % cheaper
            # on a CPU, but rounds differently: the chapters' numbers were made with this one)
            h, targets = at_targets(y_pred, y)
            return losses.softmax_cross_entropy(self.logits(h), targets, reduction=reduction)
        h = ops.cast(y_pred, "float32")
        e = ops.cast(self.output_embeddings(), "float32")
        if self.loss_name == "bce":
            targets, negatives = y[..., 0], y[..., 1]
            pos = ops.sum(h * ops.take(e, targets, axis=0), axis=-1)
            neg = ops.sum(h * ops.take(e, negatives, axis=0), axis=-1)
            return losses.bce_with_negatives(
                pos, neg, mask=ops.not_equal(targets, 0), reduction=reduction
            )
        targets, negatives, log_q = y
        h, targets = at_targets(h, targets)
        pos = ops.sum(h * ops.take(e, targets, axis=0), axis=-1)
        neg = ops.matmul(h, ops.transpose(ops.take(e, negatives, axis=0)))  # (B, W, m)
        return losses.sampled_softmax_loss(
            pos, neg, log_q, pos_ids=targets, neg_ids=negatives,
            mask=ops.not_equal(targets, 0), reduction=reduction,
        )  # fmt: skip

    def score_last(self, sequences):
        """``(B, n_items) float32`` logits of the next item after each sequence's last column."""
        return self.logits(self(sequences, training=False)[:, -1, :])


def at_targets(hidden, targets):
    """``hidden (B, W, d)`` and ``targets (B, W)``, or, for targets given as a pair
    ``(positions (K,), items (K,))``, the ``(K, d)`` hidden states at those flat
    positions and their ``(K,)`` items (see :func:`sparse_targets`)."""
    if not isinstance(targets, tuple | list):
        return hidden, targets
    positions, items = targets
    flat = ops.reshape(hidden, (-1, ops.shape(hidden)[-1]))
    return ops.take(flat, ops.cast(positions, "int32"), axis=0), items


def sparse_targets(targets: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero entries of ``targets (B, W)`` as ``(positions, items)``, in ``K`` columns.

    ``positions`` are flat indices into ``B x W``; the columns past the non-zero
    entries hold position 0 with item 0 (padding: no loss). ``K = max(slots,
    non-zero entries)``, so a fixed ``slots`` gives XLA one shape per batch width.
    """
    flat = np.asarray(targets).reshape(-1)
    nonzero = np.flatnonzero(flat)
    k = max(int(slots), len(nonzero))
    positions, items = np.zeros(k, np.int32), np.zeros(k, np.int32)
    positions[: len(nonzero)], items[: len(nonzero)] = nonzero, flat[nonzero]
    return positions, items


# --------------------------------------------------------------------------- batching


def bucket_widths(max_width: int) -> np.ndarray:
    """Allowed batch widths ``2, 3, 4, 5, 6, 8, 10, 13, ...`` (steps of about a third) up to
    ``max_width``: few enough shapes for XLA to compile once each, with at most about
    a quarter of each batch left as padding."""
    widths = [1, 2]
    while widths[-1] < max_width:
        widths.append(widths[-1] + max(1, widths[-1] // 3))
    return np.unique(np.minimum(widths, max_width))


def length_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    max_positions: int | None = None,
    widths: np.ndarray | None = None,
) -> list[tuple[np.ndarray, int]]:
    """Rows grouped into batches of sequences of similar length, in random order.

    Rows are sorted by length (ties in random order) and cut into consecutive
    batches of at most ``batch_size`` rows, fewer where ``rows x width`` would
    exceed ``max_positions``; a batch's width is its longest length, or (with
    ``widths``) the smallest allowed width that holds it. Trimmed to that width,
    the batches carry little padding: on Amazon Beauty (median length 6,
    ``max_len`` 50) an epoch does several times less work than with fixed-width
    batches. Then the batches are shuffled.

    Args:
        lengths: ``(n,)`` positive lengths.
        batch_size: most rows per batch.
        rng: NumPy generator (the same seed gives the same batches).
        max_positions: most ``rows x width`` per batch (bounds the memory of the
            ``positions x n_items`` softmax logits); ``None``: no bound.
        widths: sorted allowed widths, the largest ``>= max(lengths)``
            (e.g. :func:`bucket_widths`); ``None``: any width.

    Returns:
        ``(row indices, width)`` pairs; the indices hold ``0..n-1`` once in all.
    """
    lengths = np.asarray(lengths)
    padded = lengths if widths is None else np.asarray(widths)[np.searchsorted(widths, lengths)]
    order = np.lexsort((rng.random(len(lengths)), lengths))
    sorted_width = padded[order]  # non-decreasing
    batches, start = [], 0
    while start < len(order):  # loop over batches, not rows
        size = min(batch_size, len(order) - start)
        if max_positions is not None:  # rows x width grows with the rows: keep the prefix
            rows = np.arange(1, size + 1)
            size = max(1, int((rows * sorted_width[start : start + size] <= max_positions).sum()))
        batches.append((order[start : start + size], int(sorted_width[start + size - 1])))
        start += size
    return [batches[i] for i in rng.permutation(len(batches))]


# --------------------------------------------------------------------------- negatives


def negative_slots(q: np.ndarray, m: int) -> int:
    """Columns that hold the distinct items of ``m`` draws from ``q``, almost always.

    Item ``i`` is drawn at least once with probability ``p_i = 1 - (1 - q_i)^m``,
    so ``U = sum_i p_i`` distinct items are expected, with variance at most
    ``sum_i p_i (1 - p_i)`` (the indicators are negatively correlated). The
    slots are ``U`` plus six such standard deviations, capped at ``m`` and at
    the number of items ``q`` can draw. On Amazon Beauty, 16,384 draws in
    proportion to popularity hit about 10,100 distinct items: 38 % fewer columns.
    """
    q = np.asarray(q, dtype=np.float64)
    p = -np.expm1(m * np.log1p(-np.minimum(q, 1.0 - 1e-12)))
    bound = float(p.sum() + 6.0 * math.sqrt(float(np.sum(p * (1.0 - p)))))
    return int(min(m, np.count_nonzero(q), math.ceil(bound)))


def unique_negatives(draws: np.ndarray, q: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sampled negatives and their logQ corrections, in a fixed number of columns.

    ``m`` draws from ``q`` enter the logQ-corrected sampled softmax as
    ``sum_draws exp(z_s) / (m q_s)``; an item drawn ``c`` times contributes
    ``c exp(z_s) / (m q_s)``, so one column with ``log_q = log(m q_s / c)`` gives
    the same loss and gradient with fewer logits. Unused columns hold item 0
    with ``log_q = 1e9``: their ``exp(z - log_q)`` is exactly 0. If a batch has
    more distinct items than ``slots`` (rare by construction), it keeps them all
    and that batch alone has a wider shape.

    Returns:
        ``(negatives (k,) int32, log_q (k,) float32)`` with ``k = max(slots, distinct)``.
    """
    items, counts = np.unique(draws, return_counts=True)
    k = max(int(slots), len(items))
    negatives = np.zeros(k, np.int32)
    log_q = np.full(k, -losses.MASK_LOGIT, np.float32)
    negatives[: len(items)] = items
    log_q[: len(items)] = np.log(len(draws) * q[items] / counts)
    return negatives, log_q


# --------------------------------------------------------------------------- recommender


def ordered(frame: pd.DataFrame, name: str = "train") -> pd.DataFrame:
    """``user_idx, item_idx, timestamp`` of ``frame``; ``timestamp`` is copied from
    ``position`` when the frame has no timestamps (Amazon Beauty).

    Raises:
        KeyError: neither a ``timestamp`` nor a ``position`` column.
    """
    check_interactions(frame, name)
    for col in ORDER_COLUMNS:
        if col in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                raise TypeError(f"{name}[{col!r}] must be numeric, got dtype {frame[col].dtype}.")
            return pd.DataFrame(
                {
                    "user_idx": frame["user_idx"].to_numpy(np.int64),
                    "item_idx": frame["item_idx"].to_numpy(np.int64),
                    "timestamp": frame[col].to_numpy(np.int64),
                }
            )
    raise KeyError(
        f"{name} has neither a 'timestamp' nor a 'position' column, so the order of each "
        "user's interactions is unknown; a sequence model needs one of them."
    )


class SequentialRecommender(Recommender):
    """Base of the sequence recommenders: histories, batching, training loop, scoring.

    ``fit(train)`` orders each user's training interactions by ``timestamp``
    (or ``position``), keeps the most recent ``max_len`` as the user's history
    (``sequences_``), and trains the network on every prefix. ``score(users)``
    scores the next item after each user's history; :meth:`score_histories`
    does the same for any histories, e.g. training history plus validation item
    at test time (:meth:`scorer` wraps that for the evaluator).

    Subclasses set ``_network()`` and may override ``_training_sequences``,
    ``_batch`` and ``_prepare_histories`` (BERT4Rec appends its mask token).
    The arguments below are common to all the sequence recommenders.

    Args:
        max_len: most recent items a model reads.
        embedding_dim: width ``d`` of item embeddings and hidden states.
        loss: ``"softmax"`` (full cross-entropy over all items), ``"sampled"``
            (``n_negatives`` shared negatives per batch, logQ-corrected) or
            ``"bce"`` (one uniform negative per position).
        n_negatives: draws of negatives per batch for ``"sampled"`` (an item drawn
            several times fills one column, count-corrected: :func:`unique_negatives`).
        proposal: ``"uniform"`` or ``"popularity"`` (training counts) for ``"sampled"``.
        epochs: passes over the training sequences.
        batch_size: sequences per gradient step.
        max_positions: most (sequences x positions) per step; longer sequences
            come in smaller batches so memory stays bounded (``None``: no bound).
        learning_rate: Adam step size (the initial one under ``lr_schedule="cosine"``).
        lr_schedule: ``"constant"`` (default) or ``"cosine"``: the step size falls
            from ``learning_rate`` to 0 along half a cosine over the ``epochs``
            planned, per gradient step (Loshchilov & Hutter's SGDR without
            restarts). Early stopping or ``max_seconds`` may end the fit before it
            reaches 0; set ``epochs`` to the epochs a run can afford.
        position_weighted: ``False`` (default): a batch's loss is the mean over its
            targets, so every batch counts the same; batches hold sequences of
            similar length, so a target in a batch of short histories weighs more
            (on Beauty up to about eight times) than one in a batch of long ones.
            ``True``: the sum over the batch's targets divided by the mean number
            of targets per batch, so every target counts the same, as when
            batches mix lengths at random (the reference implementations).
        seed: seeds weights, dropout, batching and negatives.
        jit_compile: passed to ``keras.Model.compile``. With ``True`` (XLA), batch
            widths are rounded up to :func:`bucket_widths` and short batches padded
            with empty rows, so XLA compiles about a dozen shapes once each; worth it
            for long runs (about a quarter less CPU time per epoch on Beauty), not
            for a notebook's few epochs.
        verbose: print one line per epoch.
    """

    def __init__(
        self,
        *,
        max_len: int,
        embedding_dim: int,
        loss: str,
        n_negatives: int,
        proposal: str,
        epochs: int,
        batch_size: int,
        max_positions: int | None,
        learning_rate: float,
        seed: int,
        jit_compile: bool | str,
        verbose: bool,
        lr_schedule: str = "constant",
        position_weighted: bool = False,
    ):
        self.max_len = check_positive_int("max_len", max_len)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        if loss not in LOSSES:
            raise ValueError(f"loss={loss!r} is not one of {LOSSES}.")
        if proposal not in PROPOSALS:
            raise ValueError(f"proposal={proposal!r} is not one of {PROPOSALS}.")
        self.loss = loss
        self.proposal = proposal
        self.n_negatives = check_positive_int("n_negatives", n_negatives)
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.max_positions = (
            None if max_positions is None else check_positive_int("max_positions", max_positions)
        )
        self.learning_rate = check_nonnegative("learning_rate", learning_rate, strict=True)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={lr_schedule!r} is not one of {LR_SCHEDULES}.")
        self.lr_schedule = lr_schedule
        self.position_weighted = bool(position_weighted)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        self.seed = int(seed)
        self.jit_compile = jit_compile
        self.verbose = bool(verbose)

    # ----------------------------------------------------------------- hooks
    def _network(self) -> NextItemNetwork:  # pragma: no cover - abstract
        raise NotImplementedError

    def _training_sequences(self, frame: pd.DataFrame) -> tuple[np.ndarray, int]:
        """Training rows and the fewest items a row needs: next-item models read
        ``max_len + 1`` items (``max_len`` inputs and their successors)."""
        return build_sequences(frame, self.max_len + 1, self.n_users), 2

    def _batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of a batch of trimmed rows: each item predicts the next."""
        return shifted_sequences(rows)

    def _prepare_histories(self, histories: np.ndarray) -> np.ndarray:
        """What the network reads to score the item after ``histories`` (identity here)."""
        return histories

    def _targets_per_row(self, lengths: np.ndarray) -> np.ndarray:
        """Expected training targets of rows of these lengths: every item but the first."""
        return lengths - 1.0

    # ----------------------------------------------------------------- fit
    def fit(
        self,
        train: pd.DataFrame,
        n_users: int | None = None,
        n_items: int | None = None,
        *,
        validation: pd.DataFrame | None = None,
        patience: int | None = None,
        max_validation_users: int | None = None,
        max_seconds: float | None = None,
    ):
        """Train on the ordered interactions of ``train``; returns ``self``.

        Args:
            train: encoded interactions with ``user_idx``, ``item_idx`` and a
                ``timestamp`` or ``position`` column giving their order.
            n_users, n_items: vocabulary sizes (pass the encoder's or split's).
            validation: optional held-out next items (e.g. ``split.validation``);
                after every epoch, full-ranking HR@10 and NDCG@10 of the item
                after each training history are measured, and the weights of the
                epoch with the best NDCG@10 are kept (``best_epoch_``).
            patience: stop after this many epochs without a better validation
                NDCG@10 (``None``: train all ``epochs``).
            max_validation_users: validate on a fixed random sample of this many
                users (faster on large data); ``None``: all.
            max_seconds: a time budget: no new epoch starts once this many
                seconds of wall time (training and validation) have passed, so
                the fit ends at most one epoch beyond it (``None``: no budget).

        Raises:
            KeyError: ``train`` has no ``timestamp``/``position`` column, or
                ``train``/``validation`` lack ``user_idx``/``item_idx``.
            ValueError: empty frames, indices out of range, ``patience`` without
                ``validation``.
        """
        ordered(train)  # fail early with the message about order
        if validation is not None:
            check_interactions(validation, "validation")
        elif patience is not None:
            raise ValueError("patience needs a validation frame to watch; pass validation=...")
        if patience is not None:
            check_positive_int("patience", patience)
        if max_validation_users is not None:
            check_positive_int("max_validation_users", max_validation_users)
        if max_seconds is not None:
            check_nonnegative("max_seconds", max_seconds, strict=True)
        self._validation = (validation, patience, max_validation_users)
        self._max_seconds = max_seconds
        try:
            return super().fit(train, n_users, n_items)
        finally:
            del self._validation, self._max_seconds

    def _fit(self, train: pd.DataFrame) -> None:
        if self.n_items < 3:
            raise ValueError(f"{type(self).__name__} needs at least two real items to rank.")
        start = time.perf_counter()
        frame = ordered(train)
        self.sequences_ = build_sequences(frame, self.max_len, self.n_users)
        rows, min_len = self._training_sequences(frame)
        lengths = (rows != 0).sum(axis=1)
        keep = lengths >= min_len
        rows, lengths = rows[keep], lengths[keep]
        if len(rows) == 0:
            raise ValueError(
                f"no user has {min_len} or more training interactions; a sequence model "
                "needs histories to learn from."
            )
        counts = np.bincount(frame["item_idx"].to_numpy(), minlength=self.n_items).astype(float)
        counts[0] = 0.0
        self._proposal_q = (
            counts / counts.sum()
            if self.proposal == "popularity"
            else np.r_[0.0, np.full(self.n_items - 1, 1.0 / (self.n_items - 1))]
        )
        self._negative_slots = negative_slots(self._proposal_q, self.n_negatives)
        validation, patience, max_val_users = self._validation
        val_users = None
        if validation is not None and max_val_users is not None:
            users = np.unique(validation["user_idx"].to_numpy())
            if len(users) > max_val_users:
                pick = np.random.default_rng(self.seed + 1).choice(users, max_val_users, False)
                val_users = np.sort(pick)
        widths, full_rows = None, {}
        if self.jit_compile is True:  # XLA compiles each shape: few widths, fixed rows
            widths = bucket_widths(rows.shape[1])
            cap = self.max_positions or self.batch_size * rows.shape[1]
            full_rows = {int(w): max(1, min(self.batch_size, cap // w)) for w in widths}
        keras.utils.set_random_seed(self.seed)
        self.network_ = self._network()
        if self.position_weighted:  # 1 / (mean targets per batch): the same every epoch
            n_targets = float(self._targets_per_row(lengths).sum())
            self.network_.position_scale = self._steps_per_epoch(lengths, widths) / n_targets
        self.network_.compile(
            optimizer=keras.optimizers.Adam(self._learning_rate(lengths, widths)),
            jit_compile=self.jit_compile,
        )
        rng = np.random.default_rng(self.seed)
        self.history_, best, best_weights, waited = [], -np.inf, None, 0
        self.best_epoch_ = None
        for epoch in range(1, self.epochs + 1):  # loop over epochs, then over batches
            t0 = time.perf_counter()
            total, n = 0.0, 0
            for idx, width in length_batches(
                lengths, self.batch_size, rng, self.max_positions, widths
            ):
                batch = rows[idx, -width:]
                if widths is not None and len(idx) < full_rows[width]:  # one shape per width
                    batch = np.pad(batch, ((0, full_rows[width] - len(idx)), (0, 0)))
                x, t = self._batch(batch, rng)
                loss = self.network_.train_on_batch(
                    x.astype(np.int32), self._targets(t.astype(np.int32), rng)
                )
                total, n = total + float(np.asarray(loss).reshape(-1)[0]), n + 1
            record = {"epoch": epoch, "loss": total / n, "seconds": time.perf_counter() - t0}
            if validation is not None:
                record["val_HR@10"], record["val_NDCG@10"] = self._validate(
                    train, validation, val_users
                )
                if record["val_NDCG@10"] > best:
                    best, waited, self.best_epoch_ = record["val_NDCG@10"], 0, epoch
                    best_weights = self.network_.get_weights()
                else:
                    waited += 1
            self.history_.append(record)
            if self.verbose:
                print(epoch_line(record), flush=True)
            if patience is not None and waited >= patience:
                break
            if self._max_seconds is not None and time.perf_counter() - start >= self._max_seconds:
                break
        if best_weights is not None:
            self.network_.set_weights(best_weights)
        self.fit_seconds_ = time.perf_counter() - start

    def _learning_rate(self, lengths: np.ndarray, widths: np.ndarray | None):
        """Adam's step size: the float, or a cosine decay to 0 over every planned step."""
        if self.lr_schedule == "constant":
            return self.learning_rate
        steps = self._steps_per_epoch(lengths, widths)
        return keras.optimizers.schedules.CosineDecay(self.learning_rate, self.epochs * steps)

    def _steps_per_epoch(self, lengths: np.ndarray, widths: np.ndarray | None) -> int:
        """Batches in an epoch: they depend on the lengths only, not on the shuffle."""
        return len(length_batches(lengths, self.batch_size, np.random.default_rng(0),
                                  self.max_positions, widths))  # fmt: skip

    def _validate(
        self, train: pd.DataFrame, validation: pd.DataFrame, users: np.ndarray | None
    ) -> tuple[float, float]:
        """Full-ranking HR@10 and NDCG@10 of the validation items after the training histories.

        The protocol of :func:`recsys_book.evaluation.evaluate` (all items ranked,
        training items excluded, ties pessimistic). When every user has one
        validation item, as under leave-one-out, it is computed directly: the
        item's rank is the number of other candidates scoring at least as high,
        and histories are scored in batches of similar length. On Amazon Beauty
        this takes a fraction of the evaluator's time, once per epoch.
        """
        from recsys_book.evaluation import _rows, evaluate  # evaluation imports models.base

        frame = validation[["user_idx", "item_idx"]]
        if users is not None:
            frame = frame[frame["user_idx"].isin(users)]
        if frame["user_idx"].duplicated().any():  # several items per user: the evaluator
            table = evaluate(
                self, train, validation, n_items=self.n_items, k=10,
                metrics=("HR", "NDCG"), users=users,
            )  # fmt: skip
            return float(table["HR@10"].iloc[0]), float(table["NDCG@10"].iloc[0])
        val_users = frame["user_idx"].to_numpy(np.int64)
        targets = frame["item_idx"].to_numpy(np.int64)
        histories = self.sequences_[val_users]
        order = np.argsort((histories != 0).sum(axis=1), kind="stable")
        hr = ndcg = 0.0
        for start in range(0, len(order), 2048):  # loop over batches of similar length
            rows = order[start : start + 2048]
            scores = self.score_histories(histories[rows])  # column 0 is -inf
            scores[_rows(self.seen_, val_users[rows])] = -np.inf
            target = scores[np.arange(len(rows)), targets[rows]]
            rank = (scores >= target[:, None]).sum(axis=1) - 1  # others at least as high
            hit = np.isfinite(target) & (rank < 10)  # an excluded target never counts
            hr += float(hit.sum())
            ndcg += float((hit / np.log2(rank + 2.0)).sum())
        return hr / len(order), ndcg / len(order)

    def _targets(self, targets: np.ndarray, rng: np.random.Generator):
        """The ``y`` of :class:`NextItemNetwork` for the chosen loss (negatives drawn here)."""
        if self.loss == "softmax":
            return targets
        if self.loss == "bce":
            negatives = rng.integers(1, self.n_items, size=targets.shape, dtype=np.int32)
            return np.stack([targets, negatives], axis=-1)
        m = self.n_negatives
        draws = rng.choice(self.n_items, size=m, p=self._proposal_q)
        negatives, log_q = unique_negatives(draws, self._proposal_q, self._negative_slots)
        return targets, negatives, log_q

    # ----------------------------------------------------------------- score
    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit(train) first.")

    def build_histories(self, frame: pd.DataFrame) -> np.ndarray:
        """Every user's most recent ``max_len`` items in ``frame``: ``(n_users, max_len) int64``.

        E.g. ``build_histories(pd.concat([split.train, split.validation]))`` for
        test-time histories that include the validation item.

        Raises:
            RuntimeError: not fitted. KeyError: no order column. ValueError:
                indices beyond the fitted ``n_users``/``n_items``.
        """
        self._check_fitted()
        frame = ordered(frame, "frame")
        if frame["user_idx"].max() >= self.n_users or frame["item_idx"].max() >= self.n_items:
            raise ValueError(
                f"frame has indices beyond the fitted vocabulary (n_users={self.n_users}, "
                f"n_items={self.n_items}); encode it with the same encoder as train."
            )
        return build_sequences(frame, self.max_len, self.n_users)

    def _check_histories(self, histories) -> np.ndarray:
        self._check_fitted()
        h = np.asarray(histories)
        if h.ndim != 2 or not np.issubdtype(h.dtype, np.integer):
            raise ValueError(
                f"histories must be a 2-D integer array (batch, length) of item indices, "
                f"left-padded with 0; got shape {h.shape} and dtype {h.dtype}."
            )
        if h.size and (h.min() < 0 or h.max() >= self.n_items):
            raise ValueError(
                f"history items must lie in 0..{self.n_items - 1} (0 = padding); got min "
                f"{h.min()}, max {h.max()}."
            )
        return h[:, -self.max_len :].astype(np.int32)

    def score_histories(self, histories, batch_size: int = 1024) -> np.ndarray:
        """Next-item scores after each history: ``(batch, n_items) float32``, column 0 ``-inf``.

        Args:
            histories: ``(batch, L) int`` item indices, left-padded with 0, most
                recent last; only the last ``max_len`` columns are read. An empty
                (all-padding) history carries no information.
            batch_size: histories scored at once.

        Raises:
            RuntimeError: not fitted. ValueError: not a 2-D int array, or items
                outside ``0..n_items-1``.
        """
        h = self._prepare_histories(self._check_histories(histories))
        batch_size = check_positive_int("batch_size", batch_size)
        out = np.empty((len(h), self.n_items), np.float32)
        # Batches of histories of similar length, each trimmed to its longest: on
        # Amazon Beauty (median 4 items of 50 columns) this does several times less work.
        width = h.shape[1] - np.argmax(h != 0, axis=1)
        width[~(h != 0).any(axis=1)] = 1  # an empty history keeps its last column
        order = np.argsort(width, kind="stable")
        for start in range(0, len(h), batch_size):  # loop over batches of histories
            rows = order[start : start + batch_size]
            chunk = h[rows, -int(width[rows].max()) :]
            out[rows] = ops.convert_to_numpy(self.network_.score_last(chunk))
        out[:, 0] = -np.inf
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_histories(self.sequences_[users])

    def scorer(self, frame: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
        """A score function ``users -> (batch, n_items)`` reading histories from ``frame``.

        For the evaluator at test time: ``evaluate(model.scorer(train_val), train_val,
        split.test, n_items=split.n_items)`` with ``train_val`` the training and
        validation interactions together (the model is not retrained).
        """
        histories = self.build_histories(frame)

        def score(users: np.ndarray) -> np.ndarray:
            users = self._check_users(users)
            return self.score_histories(histories[users])

        return score

    def _config_repr(self) -> str:
        extra = ""
        if self.loss == "sampled":
            extra = f", n_negatives={self.n_negatives}, proposal={self.proposal!r}"
        return (
            f"max_len={self.max_len}, embedding_dim={self.embedding_dim}, loss={self.loss!r}"
            f"{extra}, epochs={self.epochs}, learning_rate={self.learning_rate}"
            + (f", lr_schedule={self.lr_schedule!r}" if self.lr_schedule != "constant" else "")
            + (", position_weighted=True" if self.position_weighted else "")
        )
