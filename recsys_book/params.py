"""Counting parameters, and telling where they live.

A recommender's parameters sit in two very different places:

* **embedding tables**, one row per user, item or feature value: their size
  grows with the catalogue and the user base (``rows x dim``);
* **dense layers** (MLP towers, attention, output projections): their size
  depends only on the layer widths, not on how many users or items there are.

:func:`count_params` splits a Keras model (or a fitted recommender) into these
groups; :func:`embedding_params` and :func:`mlp_params` give the closed-form
counts used to extrapolate to sizes we cannot train here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

GROUPS = ("embedding", "dense", "other")


@dataclass(frozen=True)
class ParamCount:
    """Trainable parameters by group, plus the non-trainable total.

    Attributes:
        embedding: entries of embedding tables (``keras.layers.Embedding`` and
            any variable whose name contains ``"embedding"``).
        dense: kernels and biases of dense-type layers (``Dense``,
            ``EinsumDense`` inside attention, convolutions).
        other: every other trainable value (normalisation scales, custom
            weights; for NumPy recommenders: their fitted arrays).
        non_trainable: values held but not learned by gradient descent.
    """

    embedding: int
    dense: int
    other: int
    non_trainable: int = 0

    @property
    def total(self) -> int:
        """All trainable parameters."""
        return self.embedding + self.dense + self.other

    @property
    def embedding_share(self) -> float:
        """Fraction of trainable parameters that sit in embedding tables (0 if none)."""
        return self.embedding / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, int | float]:
        """``{"embedding", "dense", "other", "total", "embedding_share", "non_trainable"}``."""
        return {
            "embedding": self.embedding,
            "dense": self.dense,
            "other": self.other,
            "total": self.total,
            "embedding_share": round(self.embedding_share, 4),
            "non_trainable": self.non_trainable,
        }


def _keras_groups(model) -> ParamCount:
    import keras

    dense_types = (
        keras.layers.Dense,
        keras.layers.EinsumDense,
        keras.layers.Conv1D,
        keras.layers.Conv2D,
    )
    owner: dict[int, str] = {}
    # _flatten_layers walks nested layers; Keras 3 has no public recursive listing.
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Embedding):
            owner.update({id(v): "embedding" for v in layer.weights})
        elif isinstance(layer, dense_types):
            owner.update({id(v): "dense" for v in layer.weights})
    counts = dict.fromkeys(GROUPS, 0)
    for v in model.trainable_weights:
        group = owner.get(id(v)) or ("embedding" if "embedding" in v.path.lower() else "other")
        counts[group] += int(np.prod(v.shape))
    fixed = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    return ParamCount(counts["embedding"], counts["dense"], counts["other"], fixed)


def _array_size(value) -> int | None:
    if sp.issparse(value):
        return int(value.nnz)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.number):
        return int(value.size)
    return None


def count_params(obj) -> ParamCount:
    """Count the parameters of a Keras model or of a fitted recommender.

    Args:
        obj: a built ``keras.Model``/``keras.Layer``; or a fitted
            :class:`~recsys_book.models.base.Recommender`. A hybrid with a
            ``models`` list (``WeightedHybrid``) counts as the sum of its
            components; a recommender that holds a Keras model (in any
            attribute) is counted through it;
            otherwise its fitted NumPy/SciPy arrays (attributes ending in
            ``_``, except the ``seen_`` interaction matrix, which is data) are
            counted as ``other`` (sparse matrices by stored entries).

    Returns:
        A :class:`ParamCount`.

    Raises:
        TypeError: ``obj`` is neither.
        ValueError: the Keras model is not built yet, or the recommender is
            not fitted.
    """
    import keras

    if isinstance(obj, keras.Layer):
        if not obj.built:
            raise ValueError(
                f"{type(obj).__name__} is not built; call it on a batch (or fit it) first."
            )
        return _keras_groups(obj)
    from recsys_book.models.base import Recommender

    if not isinstance(obj, Recommender):
        raise TypeError(
            f"count_params expects a keras Model/Layer or a Recommender, got {type(obj).__name__}."
        )
    if not hasattr(obj, "seen_"):
        raise ValueError(f"{type(obj).__name__} is not fitted; call fit(train) first.")
    attrs = vars(obj)
    parts = attrs.get("models")
    if isinstance(parts, list | tuple) and parts and all(isinstance(m, Recommender) for m in parts):
        counts = [count_params(m) for m in parts]  # a hybrid: the sum of its components
        return ParamCount(*(sum(getattr(c, g) for c in counts) for g in (*GROUPS, "non_trainable")))
    nets = [v for v in attrs.values() if isinstance(v, keras.Layer) and v.built]
    if nets:
        return _keras_groups(nets[0])
    sizes = [_array_size(v) for k, v in attrs.items() if k.endswith("_") and k != "seen_"]
    return ParamCount(0, 0, sum(s for s in sizes if s is not None))


def embedding_params(rows: int | Sequence[int], dim: int) -> int:
    """Entries of embedding tables with ``rows`` rows each (or one per vocabulary) of width ``dim``.

    >>> embedding_params([944, 1683], 32)
    84064
    """
    rows = [rows] if isinstance(rows, int | np.integer) else list(rows)
    if not rows or any(int(r) < 0 for r in rows) or int(dim) < 1:
        raise ValueError(f"need non-negative row counts and dim >= 1, got rows={rows}, dim={dim}.")
    return int(sum(int(r) for r in rows) * int(dim))


def mlp_params(widths: Sequence[int], bias: bool = True) -> int:
    """Parameters of a stack of dense layers ``widths[0] -> widths[1] -> ... -> widths[-1]``.

    Each layer from ``a`` to ``b`` units has ``a*b`` weights (+ ``b`` biases).

    >>> mlp_params([64, 128, 32])
    12448
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths needs at least two positive sizes (input, output), got {widths}.")
    return int(
        sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=True))
    )
