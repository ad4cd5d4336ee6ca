"""GRU4Rec: a recurrent network over the behaviour sequence (Hidasi et al., ICLR 2016).

A gated recurrent unit (GRU) reads a user's items one at a time and carries a
state vector that summarises the prefix; the state after item ``t`` scores the
item at ``t + 1``:

    h_t = GRU(h_{t-1}, E[s_t]),        z_t(j) = h_t . E[j].

Unlike attention, the state is a fixed-size bottleneck that must compress the
whole prefix, and the computation is sequential in ``t``. Here the output layer
shares the item embedding ``E`` (as in the strong re-implementations of
Klenitskiy & Vasilev 2023), so GRU4Rec and SASRec differ only in the encoder,
and the model is trained with full softmax cross-entropy at every position, the
next-item set-up of SASRec rather than the session-parallel mini-batches of the
original paper.
"""

from __future__ import annotations

import numpy as np

from recsys_book.models.base import check_nonnegative
from recsys_book.models.sequential import NextItemNetwork, SequentialRecommender, keras, ops

__all__ = ["GRU4Rec", "GRU4RecNetwork"]


class GRU4RecNetwork(NextItemNetwork):
    """Keras model: ``(B, W)`` left-padded sequences -> ``(B, W, d)`` GRU states.

    Padding is masked: the GRU skips it, so its state before the first real item
    is the zero initial state however much padding precedes it.
    """

    def __init__(self, n_items: int, dim: int, dropout: float, loss: str, seed: int, **kwargs):
        super().__init__(n_items, loss, **kwargs)
        self.item_embedding = keras.layers.Embedding(
            n_items, dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=seed),
            name="item_embedding",
        )  # fmt: skip
        self.dropout = keras.layers.Dropout(dropout, seed=seed + 1)
        self.gru = keras.layers.GRU(
            dim, return_sequences=True, seed=seed + 2, name="gru",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 3),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 4),
        )  # fmt: skip
        self.out_dropout = keras.layers.Dropout(dropout, seed=seed + 5)

    def call(self, sequences, training=False):
        sequences = ops.cast(sequences, "int32")
        mask = ops.not_equal(sequences, 0)
        x = self.dropout(self.item_embedding(sequences), training=training)
        h = self.gru(x, mask=mask, training=training)
        keep = ops.cast(mask, h.dtype)[:, :, None]
        return self.out_dropout(h, training=training) * keep

    def output_embeddings(self):
        return self.item_embedding.embeddings


class GRU4Rec(SequentialRecommender):
    """GRU over each user's last ``max_len`` items, tied item embeddings.

    Args:
        max_len: most recent items read.
        embedding_dim: ``d``, width of the item embeddings and of the GRU state.
        dropout: dropout rate on the embeddings and the GRU outputs.
        loss: ``"softmax"`` (full cross-entropy, default), ``"sampled"`` or ``"bce"``.
        n_negatives, proposal, epochs, batch_size: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.
        max_positions, learning_rate, lr_schedule: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.
        position_weighted, seed, jit_compile, verbose: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.

    After ``fit``, the attributes are those of :class:`~recsys_book.models.sasrec.SASRec`.

    Raises:
        ValueError: a hyper-parameter out of range or an unknown ``loss``/``proposal``.
    """

    def __init__(
        self,
        max_len: int = 50,
        embedding_dim: int = 64,
        dropout: float = 0.2,
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
        dropout = check_nonnegative("dropout", dropout)
        if dropout >= 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}.")
        self.dropout = dropout

    def _network(self) -> GRU4RecNetwork:
        return GRU4RecNetwork(self.n_items, self.embedding_dim, self.dropout, self.loss, self.seed)

    def hidden_states(self, histories) -> np.ndarray:
        """``(B, L, d) float32`` GRU states after each position of ``histories``."""
        h = self._check_histories(histories)
        return ops.convert_to_numpy(self.network_(h, training=False)).astype(np.float32)

    def __repr__(self) -> str:
        return f"GRU4Rec({self._config_repr()}, dropout={self.dropout})"
