"""Two-tower retrieval model: a user tower, an item tower, and their inner product.

A user ``u`` and an item ``j`` are mapped by two separate networks ("towers")
to vectors in the same space, and the score is their inner product,

    z(u, j) = f(u) . g(j),      f(u) = MLP(P[u]),  g(j) = MLP(Q[j]),

where ``P`` and ``Q`` are embedding tables (the MLPs are optional; without
them this is matrix factorisation). The softmax over the catalogue,
``p(j | u) = exp z(u, j) / sum_k exp z(u, k)``, is the probability model of
chapter 4, and the ``loss`` option chooses how its cross-entropy is computed:

* ``"softmax"``: exactly, over all ``n_items`` items (cost ``O(n_items d)`` per row);
* ``"sampled"``: over the positive and ``n_negatives`` items drawn per batch
  from a ``proposal`` (uniform or popularity), with or without the logQ
  correction (:func:`recsys_book.losses.sampled_softmax_loss`);
* ``"in_batch"``: against the other positives of the mini-batch, with the
  logQ correction for their popularity (:func:`recsys_book.losses.in_batch_softmax_loss`).

Because scoring is one matrix product, the item vectors can be indexed for
approximate nearest-neighbour search, which is why this architecture does the
candidate retrieval of most industrial recommenders.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_book import losses
from recsys_book.models.base import Recommender, check_nonnegative, check_positive_int
from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops

LOSSES = ("softmax", "sampled", "in_batch")
PROPOSALS = ("uniform", "popularity")
OPTIMIZERS = ("adam", "sgd")


def _tower(n: int, dim: int, hidden_units: tuple[int, ...], seed: int, name: str):
    """``Sequential``: Embedding(n, dim) followed by ReLU layers and a linear projection to ``dim``."""
    layers = [
        keras.layers.Embedding(
            n,
            dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            name=f"{name}_embedding",
        )
    ]
    for k, units in enumerate(hidden_units):
        layers.append(
            keras.layers.Dense(
                units,
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 10 + k),
                name=f"{name}_hidden_{k}",
            )
        )
    if hidden_units:
        layers.append(
            keras.layers.Dense(
                dim,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 9),
                name=f"{name}_output",
            )
        )
    return keras.Sequential(layers, name=name)


class TwoTowerNetwork(keras.Model):
    """Keras model: ``(batch, 2)`` int ``[user, item]`` -> tower outputs for the loss.

    ``call`` returns ``(user_vectors (B, d), item_vectors (B, d), candidate_vectors
    (C, d), candidate_ids (C,))`` where the candidates are every item
    (``"softmax"``), ``n_negatives`` sampled items (``"sampled"``, drawn with a
    Keras ``SeedGenerator`` so the model is deterministic and backend-portable) or
    the batch's own items (``"in_batch"``). ``compute_loss`` turns them into the
    chosen loss plus ``l2`` times the mean of ``||f(u)||^2 + ||g(i)||^2`` over the batch.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int,
        hidden_units: tuple[int, ...],
        loss: str,
        n_negatives: int,
        proposal_log_q: np.ndarray,
        item_log_q: np.ndarray,
        logq_correction: bool,
        l2: float,
        seed: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_items = n_items
        self.loss_name = loss
        self.n_negatives = n_negatives
        self.logq_correction = logq_correction
        self.l2 = l2
        self.uniform_proposal = bool(np.allclose(proposal_log_q[1:], proposal_log_q[1]))
        self.user_tower = _tower(n_users, embedding_dim, hidden_units, seed, "user_tower")
        self.item_tower = _tower(n_items, embedding_dim, hidden_units, seed + 1, "item_tower")
        self.seed_generator = keras.random.SeedGenerator(seed + 2)
        # log q_j of the negative proposal and of the in-batch item frequency (constants).
        self.proposal_log_q = self._constant("proposal_log_q", proposal_log_q)
        self.item_log_q = self._constant("item_log_q", item_log_q)
        padding = np.zeros(n_items, np.float32)
        padding[0] = losses.MASK_LOGIT
        self.padding_logit = self._constant("padding_logit", padding)

    def _constant(self, name: str, value: np.ndarray):
        var = self.add_weight(
            shape=value.shape, initializer="zeros", trainable=False, name=name, dtype="float32"
        )
        var.assign(value.astype(np.float32))
        return var

    def item_vectors(self):
        """``(n_items, d)`` item-tower output for every item (row 0 is padding)."""
        return self.item_tower(ops.arange(self.n_items, dtype="int32"))

    def _sample_negatives(self):
        m = self.n_negatives
        if self.uniform_proposal:
            return keras.random.randint((m,), 1, self.n_items, seed=self.seed_generator)
        logits = ops.expand_dims(self.proposal_log_q, 0)
        return ops.squeeze(keras.random.categorical(logits, m, seed=self.seed_generator), 0)

    def call(self, pairs, training=False):
        pairs = ops.cast(pairs, "int32")
        users, items = pairs[:, 0], pairs[:, 1]
        u = self.user_tower(users)
        v = self.item_tower(items)
        if self.loss_name == "softmax":
            ids = ops.arange(self.n_items, dtype="int32")
            candidates = self.item_tower(ids)
        elif self.loss_name == "sampled":
            ids = ops.cast(self._sample_negatives(), "int32")
            candidates = self.item_tower(ids)
        else:
            ids, candidates = items, v
        return u, v, candidates, ids

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        u, v, candidates, ids = y_pred
        items = ops.cast(x[:, 1], "int32")
        if self.loss_name == "softmax":
            logits = ops.matmul(u, ops.transpose(candidates)) + self.padding_logit
            data_loss = losses.softmax_cross_entropy(logits, items)
        elif self.loss_name == "sampled":
            pos = ops.sum(u * v, axis=-1)
            neg = ops.matmul(u, ops.transpose(candidates))
            neg_log_q = float(np.log(self.n_negatives)) + ops.take(self.proposal_log_q, ids)
            data_loss = losses.sampled_softmax_loss(
                pos,
                neg,
                neg_log_q,
                logq_correction=self.logq_correction,
                pos_ids=items,
                neg_ids=ids,
            )
        else:
            log_q = ops.take(self.item_log_q, items) if self.logq_correction else None
            data_loss = losses.in_batch_softmax_loss(u, v, log_q, item_ids=items)
        penalty = ops.mean(ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))
        return data_loss + self.l2 * penalty


class TwoTower(Recommender):
    """Two-tower recommender trained with a softmax over the catalogue (exact or sampled).

    Every row of ``train`` is one positive (user, item) event; repeated pairs
    count as often as they occur. The in-batch item frequency ``q_j`` (used by
    ``"in_batch"`` and by the ``"popularity"`` proposal) is the share of
    training rows with item ``j``.

    Args:
        embedding_dim: dimension ``d`` of the user and item vectors.
        loss: ``"softmax"`` (exact, all items), ``"sampled"`` (``n_negatives``
            shared negatives per batch) or ``"in_batch"``.
        n_negatives: negatives per batch for ``loss="sampled"``.
        proposal: ``"uniform"`` or ``"popularity"`` (``q_j`` proportional to the
            item's training count): where ``"sampled"`` draws negatives from.
        logq_correction: subtract ``log(m q_j)`` from sampled logits (``"sampled"``)
            or ``log q_j`` from in-batch logits (``"in_batch"``); ignored by ``"softmax"``.
        hidden_units: widths of optional ReLU layers on top of each embedding
            (``()``: plain embeddings, i.e. matrix factorisation).
        epochs: passes over the training rows.
        batch_size: rows per gradient step.
        learning_rate: optimiser step size ``> 0``.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient descent).
        l2: weight ``>= 0`` of the mean squared norm of the batch's tower outputs.
        seed: seeds initial weights, shuffling and negative sampling (same seed,
            same model on CPU).
        jit_compile: passed to ``keras.Model.compile``.

    The attributes below are set by ``fit``.

    Attributes:
        network_: the trained :class:`TwoTowerNetwork`.
        item_log_q_: ``(n_items,)`` log training frequency of each item (``-inf`` if unseen).
        history_: mean training loss per epoch (list of floats).
        fit_seconds_: wall time of ``fit``.

    Raises:
        ValueError: a hyper-parameter out of range, or an unknown ``loss``,
            ``proposal`` or ``optimizer``.
    """

    def __init__(
        self,
        embedding_dim: int = 64,
        loss: str = "softmax",
        n_negatives: int = 256,
        proposal: str = "popularity",
        logq_correction: bool = True,
        hidden_units: Sequence[int] = (),
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 0.002,
        optimizer: str = "adam",
        l2: float = 0.0,
        seed: int = 42,
        jit_compile: bool | str = "auto",
    ):
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        for name, value, options in (
            ("loss", loss, LOSSES),
            ("proposal", proposal, PROPOSALS),
            ("optimizer", optimizer, OPTIMIZERS),
        ):
            if value not in options:
                raise ValueError(f"{name}={value!r} is not one of {options}.")
        self.loss = loss
        self.proposal = proposal
        self.optimizer = optimizer
        self.n_negatives = check_positive_int("n_negatives", n_negatives)
        if not isinstance(logq_correction, bool | np.bool_):
            raise TypeError(f"logq_correction must be True or False, got {logq_correction!r}.")
        self.logq_correction = bool(logq_correction)
        if isinstance(hidden_units, str | bytes) or not isinstance(hidden_units, Sequence):
            raise TypeError(f"hidden_units must be a sequence of ints, got {hidden_units!r}.")
        self.hidden_units = tuple(check_positive_int("hidden_units[]", h) for h in hidden_units)
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.learning_rate = check_nonnegative("learning_rate", learning_rate, strict=True)
        self.l2 = check_nonnegative("l2", l2)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        self.seed = int(seed)
        self.jit_compile = jit_compile

    def _fit(self, train: pd.DataFrame) -> None:
        if self.n_items < 3:
            raise ValueError("TwoTower needs at least two real items to rank.")
        if self.loss == "in_batch" and self.batch_size < 2:
            raise ValueError(
                "loss='in_batch' needs batch_size >= 2 (the other rows are the negatives)."
            )
        start = time.perf_counter()
        pairs = train[["user_idx", "item_idx"]].to_numpy(np.int32)
        counts = np.bincount(pairs[:, 1], minlength=self.n_items).astype(np.float64)
        with np.errstate(divide="ignore"):
            self.item_log_q_ = np.log(counts / counts.sum()).astype(np.float32)
        if self.proposal == "uniform":
            proposal_log_q = np.full(self.n_items, -np.log(self.n_items - 1), np.float32)
        else:
            proposal_log_q = self.item_log_q_.copy()
        proposal_log_q[0] = losses.MASK_LOGIT  # never propose the padding item
        proposal_log_q = np.maximum(proposal_log_q, losses.MASK_LOGIT)  # unseen items: never
        self.network_ = TwoTowerNetwork(
            self.n_users,
            self.n_items,
            self.embedding_dim,
            self.hidden_units,
            self.loss,
            self.n_negatives,
            proposal_log_q,
            np.maximum(self.item_log_q_, losses.MASK_LOGIT),
            self.logq_correction,
            self.l2,
            self.seed,
        )
        opt = (
            keras.optimizers.Adam(self.learning_rate)
            if self.optimizer == "adam"
            else keras.optimizers.SGD(self.learning_rate)
        )
        self.network_.compile(optimizer=opt, jit_compile=self.jit_compile)
        rng = np.random.default_rng(self.seed)
        self.history_ = []
        for _ in range(self.epochs):  # loop over epochs; each epoch is batched
            h = self.network_.fit(
                pairs[rng.permutation(len(pairs))],
                batch_size=self.batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
            )
            self.history_.append(float(h.history["loss"][-1]))
        self.fit_seconds_ = time.perf_counter() - start

    def user_vectors(self, users) -> np.ndarray:
        """``(batch, d) float32`` user-tower outputs of the user indices ``users``."""
        users = self._check_users(users)
        return ops.convert_to_numpy(self.network_.user_tower(users.astype(np.int32)))

    def item_vectors(self) -> np.ndarray:
        """``(n_items, d) float32`` item-tower outputs of every item (row 0 is padding)."""
        if not hasattr(self, "network_"):
            raise RuntimeError("TwoTower is not fitted yet; call fit(train) first.")
        return ops.convert_to_numpy(self.network_.item_vectors())

    def _score(self, users: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """``(batch, n_items) float32`` inner products ``f(u) . g(j)``, in chunks of users."""
        items = self.network_.item_vectors()
        out = []
        for start in range(0, len(users), chunk):  # loop over chunks of users, not users
            u = self.network_.user_tower(users[start : start + chunk].astype(np.int32))
            out.append(ops.convert_to_numpy(ops.matmul(u, ops.transpose(items))))
        if not out:
            return np.zeros((0, self.n_items), np.float32)
        return np.concatenate(out, axis=0)

    def __repr__(self) -> str:
        extra = ""
        if self.loss == "sampled":
            extra = (
                f", n_negatives={self.n_negatives}, proposal={self.proposal!r}, "
                f"logq_correction={self.logq_correction}"
            )
        elif self.loss == "in_batch":
            extra = f", logq_correction={self.logq_correction}"
        return (
            f"TwoTower(embedding_dim={self.embedding_dim}, loss={self.loss!r}{extra}, "
            f"epochs={self.epochs}, learning_rate={self.learning_rate})"
        )
