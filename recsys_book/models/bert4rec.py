"""BERT4Rec: bidirectional transformer trained to fill in masked items (Sun et al., CIKM 2019).

Instead of predicting each next item from its prefix (SASRec), BERT4Rec hides a
random share ``mask_prob`` of the items of a sequence behind a special
``[mask]`` token and predicts them from *both* sides, as BERT does for words
(the "cloze" task):

    input:  s_1  [mask]  s_3  s_4  [mask]       targets: s_2 at position 2, s_5 at 5.

Attention is therefore bidirectional (no causal mask). To recommend, the
``[mask]`` token is appended after the history and the model fills it in: the
hidden state at that last position scores every item against the (tied) item
embeddings. The ``[mask]`` token is item index ``n_items``, one row past the
catalogue, and is never recommended.

Only about ``mask_prob`` of the positions carry a loss per pass (against all of
them for SASRec), one reason BERT4Rec needs more epochs (Klenitskiy & Vasilev 2023).
Only those positions are scored against the catalogue
(:func:`~recsys_book.models.sequential.sparse_targets`): the same loss as scoring
every position and ignoring the unmasked ones, with about a fifth of the logits.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recsys_book.models.base import check_positive_int
from recsys_book.models.sequential import (
    NextItemNetwork,
    SequentialRecommender,
    TransformerConfig,
    TransformerEncoder,
    sparse_targets,
)
from recsys_book.preprocessing import build_sequences

__all__ = ["BERT4Rec", "BERT4RecNetwork"]


class BERT4RecNetwork(NextItemNetwork):
    """Keras model: ``(B, W)`` sequences with ``[mask]`` tokens -> ``(B, W, d)`` states.

    The embedding table has ``n_items + 1`` rows (the last is ``[mask]``); the
    output layer uses the first ``n_items``.
    """

    def __init__(self, config: TransformerConfig, loss: str = "softmax", **kwargs):
        super().__init__(config.vocab_size - 1, loss, **kwargs)
        self.encoder = TransformerEncoder(config, name="encoder")

    def call(self, sequences, training=False):
        return self.encoder(sequences, training=training)

    def output_embeddings(self):
        return self.encoder.item_embedding.embeddings[: self.n_items]


class BERT4Rec(SequentialRecommender):
    """Bidirectional transformer with masked-item training, tied item embeddings.

    Args:
        max_len: most recent items read (including the appended ``[mask]`` at
            prediction time).
        embedding_dim, n_heads, n_layers, dropout, scale_embeddings: as
            :class:`~recsys_book.models.sasrec.SASRec` (BERT itself does not scale
            its input embeddings, so ``scale_embeddings`` is off by default here too).
        mask_prob: share of the items of a training sequence replaced by ``[mask]``
            each time it is seen; a sequence that draws no mask gets its last item
            masked, so every sequence trains the recommendation case.
        loss: ``"softmax"`` (default, as the paper), ``"sampled"`` or ``"bce"``,
            computed at masked positions only.
        n_negatives, proposal, epochs, batch_size: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.
        max_positions, learning_rate, lr_schedule: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.
        position_weighted, seed, jit_compile, verbose: see
            :class:`~recsys_book.models.sequential.SequentialRecommender`.

    After ``fit``, the attributes are those of :class:`~recsys_book.models.sasrec.SASRec`,
    and ``mask_token_`` is the index of ``[mask]`` (= ``n_items``).

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
        mask_prob: float = 0.2,
        scale_embeddings: bool = False,
        loss: str = "softmax",
        n_negatives: int = 256,
        proposal: str = "popularity",
        epochs: int = 40,
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
        if (
            isinstance(mask_prob, bool)
            or not isinstance(mask_prob, int | float)
            or not 0 < mask_prob < 1
        ):
            raise ValueError(f"mask_prob must lie in (0, 1), got {mask_prob!r}.")
        self.mask_prob = float(mask_prob)
        self.dropout = dropout
        self.scale_embeddings = bool(scale_embeddings)
        self._config(n_items=3)  # validates heads, dropout, ... before any training

    def _config(self, n_items: int) -> TransformerConfig:
        return TransformerConfig(
            vocab_size=n_items + 1, max_len=self.max_len, d_model=self.embedding_dim,
            n_heads=self.n_heads, n_layers=self.n_layers, dropout=self.dropout, causal=False,
            scale_embeddings=self.scale_embeddings, seed=self.seed,
        )  # fmt: skip

    def _network(self) -> BERT4RecNetwork:
        self.mask_token_ = self.n_items
        return BERT4RecNetwork(self._config(self.n_items), self.loss)

    def _training_sequences(self, frame: pd.DataFrame) -> tuple[np.ndarray, int]:
        return build_sequences(frame, self.max_len, self.n_users), 2

    def _batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Mask a random ``mask_prob`` of each row's items; targets are the hidden items."""
        real = rows != 0
        masked = real & (rng.random(rows.shape) < self.mask_prob)
        none = ~masked.any(axis=1) & real[:, -1]  # left-padded: the last column is the latest
        masked[none, -1] = True
        inputs = np.where(masked, self.mask_token_, rows)
        targets = np.where(masked, rows, 0)
        return inputs, targets

    def _targets_per_row(self, lengths: np.ndarray) -> np.ndarray:
        """Expected masked items: ``mask_prob`` of each row, or its last one if none was."""
        return lengths * self.mask_prob + (1.0 - self.mask_prob) ** lengths

    def _targets(self, targets: np.ndarray, rng: np.random.Generator):
        """As the base class, with the masked positions only (``softmax``/``sampled``):
        the loss scores those hidden states instead of every position's."""
        y = super()._targets(targets, rng)
        if self.loss == "bce":
            return y
        rows, n = targets.shape[0], targets.size
        # masked: at most Binomial(n, mask_prob), plus one forced per row; 6 sd spare
        spread = 6.0 * math.sqrt(n * self.mask_prob * (1.0 - self.mask_prob))
        slots = min(n, math.ceil(n * self.mask_prob + spread) + rows)
        sparse = sparse_targets(targets, slots)
        return sparse if self.loss == "softmax" else (sparse, *y[1:])

    def _prepare_histories(self, histories: np.ndarray) -> np.ndarray:
        """Append ``[mask]`` after each history (keeping ``max_len`` columns): it is filled in."""
        mask = np.full((len(histories), 1), self.mask_token_, dtype=histories.dtype)
        return np.concatenate([histories, mask], axis=1)[:, -self.max_len :]

    def __repr__(self) -> str:
        return (
            f"BERT4Rec({self._config_repr()}, n_heads={self.n_heads}, n_layers={self.n_layers}, "
            f"dropout={self.dropout}, mask_prob={self.mask_prob}"
            + (", scale_embeddings=True" if self.scale_embeddings else "")
            + ")"
        )
