"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal transformer reads a user's last ``max_len`` items; the hidden state at
position ``t`` scores the item at ``t + 1`` by its inner product with the item
embeddings, the same table the input uses:

    h_1..h_W = Transformer_causal(E[s_1] + P_1, ..., E[s_W] + P_W),   z_t(j) = h_t . E[j].

Every position is a training example (predict the next item from the prefix),
so one sequence of length ``n`` gives ``n - 1`` examples in one pass. Kang &
McAuley's SASRec multiplies the input embeddings ``E[s_t]`` by ``sqrt(d)``
(``scale_embeddings=True``; off by default so the book's earlier chapters keep
their numbers). On Amazon Beauty that makes learning several times faster: the
item signal, not the positional one, dominates the input from the first step.
``position_weighted=True`` (every training target weighs the same, however the
length-sorted batches fall) closed the rest of the gap to the published Beauty
numbers (chapter 3f; also off by default).
The loss:

* ``"softmax"`` (default): cross-entropy over the whole catalogue. This is what
  makes SASRec strong: Klenitskiy & Vasilev (RecSys 2023) showed that SASRec
  trained so ("SASRec+") beats BERT4Rec, which had looked better only because
  it used this loss while SASRec used the next one.
* ``"bce"``: the original paper's binary cross-entropy of the true next item
  against one uniformly sampled negative per position.
* ``"sampled"``: softmax over the true item and ``n_negatives`` sampled ones,
  logQ-corrected -- the cheap approximation of ``"softmax"`` for large catalogues.
"""

from __future__ import annotations

import numpy as np

from recsys_book.models.base import check_positive_int
from recsys_book.models.sequential import (
    NextItemNetwork,
    SequentialRecommender,
    TransformerConfig,
    TransformerEncoder,
    ops,
)

__all__ = ["SASRec", "SASRecNetwork"]


class SASRecNetwork(NextItemNetwork):
    """Keras model: ``(B, W)`` sequences -> ``(B, W, d)`` causal transformer states."""

    def __init__(self, config: TransformerConfig, loss: str = "softmax", **kwargs):
        super().__init__(config.vocab_size, loss, **kwargs)
        self.encoder = TransformerEncoder(config, name="encoder")

    def call(self, sequences, training=False):
        return self.encoder(sequences, training=training)

    def output_embeddings(self):
        return self.encoder.item_embedding.embeddings


class SASRec(SequentialRecommender):
    """Causal transformer over each user's last ``max_len`` items, tied item embeddings.

    Args:
        max_len: most recent items read (50 in the papers' Beauty setting).
        embedding_dim: ``d``, width of embeddings and hidden states.
        n_heads: attention heads (``embedding_dim`` must be divisible by it).
        n_layers: transformer blocks.
        dropout: dropout rate of embeddings, attention and residual branches.
        scale_embeddings: multiply input item embeddings by ``sqrt(embedding_dim)``,
            as Kang & McAuley's SASRec does (see
            :class:`~recsys_book.models.sequential.TransformerConfig`).
        block: ``"pre_ln"`` (default, nanoGPT's block) or ``"sasrec"`` (Kang &
            McAuley's wiring: normalised queries, un-normalised keys and values, a
            ReLU feed-forward layer ``d`` wide); see
            :class:`~recsys_book.models.sequential.TransformerBlock`.
        d_ff: feed-forward width (``None``: ``4 d`` for ``"pre_ln"``, ``d`` for ``"sasrec"``).
        positions: ``"from_end"`` (default) or ``"from_start"``; see
            :class:`~recsys_book.models.sequential.TransformerEncoder`.
        loss: ``"softmax"`` (full cross-entropy, default), ``"bce"`` (one sampled
            negative per position, the original SASRec) or ``"sampled"``
            (``n_negatives`` per batch with logQ correction).
        n_negatives, proposal: the negatives of ``"sampled"``.
        epochs, batch_size, max_positions, learning_rate, lr_schedule, position_weighted: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.
        seed, jit_compile, verbose: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.

    The attributes below are set by ``fit``.

    Attributes:
        network_: the trained :class:`SASRecNetwork`.
        sequences_: ``(n_users, max_len)`` each user's training history.
        history_: one dict per epoch (loss, seconds, validation metrics if any).
        best_epoch_: the epoch whose weights were kept (with validation), else ``None``.
        fit_seconds_: wall time of ``fit``.

    Raises:
        ValueError: a hyper-parameter out of range or an unknown ``loss``/``proposal``.
    """

    def __init__(
        self,
        max_len: int = 50,
        embedding_dim: int = 64,
        n_heads: int = 1,
        n_layers: int = 2,
        dropout: float = 0.2,
        scale_embeddings: bool = False,
        block: str = "pre_ln",
        d_ff: int | None = None,
        positions: str = "from_end",
        loss: str = "softmax",
        n_negatives: int = 256,
        proposal: str = "popularity",
        epochs: int = 20,
        batch_size: int = 128,
        max_positions: int | None = None,
        learning_rate: float = 0.001,
        lr_schedule: str = "constant",
        position_weighted: bool = False,
        seed: int = 42,
        jit_compile: bool | str = False,
        verbose: bool = False,
    ):
        super().__init__(
            max_len=max_len, embedding_dim=embedding_dim, loss=loss, n_negatives=n_negatives,
            proposal=proposal, epochs=epochs, batch_size=batch_size,
            max_positions=max_positions, learning_rate=learning_rate, seed=seed,
            jit_compile=jit_compile, verbose=verbose, lr_schedule=lr_schedule,
            position_weighted=position_weighted,
        )  # fmt: skip
        self.n_heads = check_positive_int("n_heads", n_heads)
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.dropout = dropout
        self.scale_embeddings = bool(scale_embeddings)
        self.block = block
        self.d_ff = d_ff
        self.positions = positions
        self._config(n_items=3)  # validates heads, dropout, ... before any training

    def _config(self, n_items: int) -> TransformerConfig:
        return TransformerConfig(
            vocab_size=n_items, max_len=self.max_len, d_model=self.embedding_dim,
            n_heads=self.n_heads, n_layers=self.n_layers, dropout=self.dropout, causal=True,
            scale_embeddings=self.scale_embeddings, block=self.block, d_ff=self.d_ff,
            positions=self.positions, seed=self.seed,
        )  # fmt: skip

    def _network(self) -> SASRecNetwork:
        return SASRecNetwork(self._config(self.n_items), self.loss)

    def attention_weights(self, histories) -> list[np.ndarray]:
        """Per-layer attention maps over ``histories``: ``n_layers`` arrays ``(B, n_heads, L, L)``.

        Entry ``[b, h, i, j]`` is how much position ``i`` of history ``b`` draws on
        position ``j`` in head ``h`` (rows of real positions sum to 1; causal, so
        zero for ``j > i``; padding keys get 0). Columns are those of
        ``histories`` after keeping the last ``max_len``; the last row is what
        scores the next item.

        Raises:
            RuntimeError: not fitted. ValueError: bad histories (see ``score_histories``).
        """
        h = self._check_histories(histories)
        _, maps = self.network_.encoder(h, training=False, return_attention=True)
        return [ops.convert_to_numpy(m).astype(np.float32) for m in maps]

    def __repr__(self) -> str:
        return (
            f"SASRec({self._config_repr()}, n_heads={self.n_heads}, n_layers={self.n_layers}, "
            f"dropout={self.dropout}"
            + (", scale_embeddings=True" if self.scale_embeddings else "")
            + (f", block={self.block!r}" if self.block != "pre_ln" else "")
            + (f", d_ff={self.d_ff}" if self.d_ff is not None else "")
            + (f", positions={self.positions!r}" if self.positions != "from_end" else "")
            + ")"
        )
