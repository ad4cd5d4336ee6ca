"""Training losses for recommenders, written with ``keras.ops`` only.

Every loss here runs unchanged on TensorFlow, JAX and PyTorch, inside
``model.fit`` or in a hand-written loop, and is computed in float32 (inputs of
lower precision are cast), so it is safe under mixed precision.

Notation (the book's chapter 4):

* a *logit* (score) :math:`z_{uj}` is the model's unnormalised preference of
  user (or history) :math:`u` for item :math:`j`; in a two-tower model it is the
  inner product :math:`z_{uj} = \\mathbf{u}^\\top \\mathbf{v}_j`;
* :math:`y` is the observed (positive) item, index 0 is padding;
* :math:`q_j` is the probability with which a sampler proposes item :math:`j`
  as a negative.

Losses and the data they fit:

========================================  ======================================
:func:`softmax_cross_entropy`             next item / one positive among all items
:func:`sampled_softmax_loss`              the same, with ``m`` sampled negatives
:func:`in_batch_softmax_loss`             the same, other positives as negatives
:func:`bpr_loss`                          pairwise ranking, implicit feedback
:func:`bce_with_negatives`                pointwise click / no click
========================================  ======================================

``reduction`` is ``"mean"`` (default: the mean over non-masked examples),
``"sum"`` or ``"none"`` (one value per example, 0 where masked).
"""

from __future__ import annotations

from typing import Any

from keras import ops

__all__ = [
    "MASK_LOGIT",
    "bce_with_negatives",
    "bpr_loss",
    "in_batch_softmax_loss",
    "sampled_softmax_loss",
    "softmax_cross_entropy",
]

#: Logit given to an excluded candidate (accidental hit): exp(MASK_LOGIT) == 0 in float32.
MASK_LOGIT = -1e9

_REDUCTIONS = ("mean", "sum", "none")

Tensor = Any  # a NumPy array or a backend tensor


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {_REDUCTIONS}.")


def _reduce(per_example: Tensor, weights: Tensor | None, reduction: str) -> Tensor:
    """Reduce ``per_example`` (any shape) over all axes, weighting by ``weights`` (0/1)."""
    if weights is not None:
        per_example = per_example * weights
    if reduction == "none":
        return per_example
    total = ops.sum(per_example)
    if reduction == "sum":
        return total
    count = ops.sum(weights) if weights is not None else ops.cast(ops.size(per_example), "float32")
    return total / ops.maximum(count, 1.0)


def _float(x: Tensor) -> Tensor:
    return ops.cast(ops.convert_to_tensor(x), "float32")


def _check_rank(name: str, x: Tensor, ndim: int | tuple[int, ...]) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if len(x.shape) not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(x.shape)}."
        )


def softmax_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    *,
    padding_index: int | None = 0,
    reduction: str = "mean",
    target_logits: Tensor | None = None,
) -> Tensor:
    """Softmax cross-entropy over the whole catalogue.

    The model :math:`p(j \\mid u) = e^{z_{uj}} / \\sum_{k} e^{z_{uk}}` and the loss

    .. math::  \\ell(u, y) = -\\log p(y \\mid u) = -z_{uy} + \\log \\sum_{k} e^{z_{uk}},

    whose gradient with respect to the logits is :math:`p(\\cdot \\mid u) - \\mathbf{e}_y`.

    Args:
        logits: ``(..., n_items)`` float scores of every item.
        targets: ``(...)`` int index of the observed item per row.
        padding_index: targets equal to it are ignored (weight 0, e.g. padded
            positions of a sequence); ``None`` ignores none.
        reduction: ``"mean"`` over non-padding targets, ``"sum"`` or ``"none"``.
        target_logits: optional ``(...)`` logits :math:`z_{uy}` of the targets,
            computed by the caller (e.g. ``h . e_y`` from the gathered target
            embedding). Then the loss is ``logsumexp(logits) - target_logits``, the
            same value without materialising ``log_softmax`` over the catalogue or
            gathering from it: about a third less work per training step for a
            54k-item softmax on a CPU. The caller must make them equal to the
            targets' entries of ``logits``.

    Returns:
        A float32 scalar, or ``(...)`` per-target losses for ``reduction="none"``.

    Raises:
        ValueError: if the shapes do not match or ``reduction`` is unknown.
    """
    _check_reduction(reduction)
    logits = _float(logits)
    targets = ops.cast(ops.convert_to_tensor(targets), "int32")
    if tuple(logits.shape[:-1]) != tuple(targets.shape):
        raise ValueError(
            f"targets must have the shape of logits without its last axis: logits "
            f"{tuple(logits.shape)}, targets {tuple(targets.shape)}."
        )
    if target_logits is None:
        log_p = ops.log_softmax(logits, axis=-1)
        log_p_target = ops.squeeze(
            ops.take_along_axis(log_p, ops.expand_dims(targets, -1), axis=-1), axis=-1
        )
    else:  # fused: no (..., n_items) log-probabilities are materialised or gathered from
        target_logits = _float(target_logits)
        if tuple(target_logits.shape) != tuple(targets.shape):
            raise ValueError(
                f"target_logits must have the shape of targets: target_logits "
                f"{tuple(target_logits.shape)}, targets {tuple(targets.shape)}."
            )
        log_p_target = target_logits - ops.logsumexp(logits, axis=-1)
    weights = None
    if padding_index is not None:
        weights = ops.cast(ops.not_equal(targets, padding_index), "float32")
    return _reduce(-log_p_target, weights, reduction)


def sampled_softmax_loss(
    pos_logits: Tensor,
    neg_logits: Tensor,
    neg_log_q: Tensor | None = None,
    *,
    pos_log_q: Tensor | None = None,
    logq_correction: bool = True,
    pos_ids: Tensor | None = None,
    neg_ids: Tensor | None = None,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Sampled softmax: the positive against ``m`` sampled negatives, optionally logQ-corrected.

    The candidates of a row are its positive :math:`y` and negatives
    :math:`s_1..s_m` drawn from a proposal :math:`q`. With the correction, each
    negative's logit becomes :math:`z'_{s} = z_{s} - \\log Q_s` (``neg_log_q``)
    and the positive's :math:`z'_y = z_y - \\log Q_y` (``pos_log_q``, or
    :math:`z'_y = z_y` when it is ``None``); the loss is the softmax
    cross-entropy over the candidates,

    .. math::  \\ell = -z'_y + \\log\\Big(e^{z'_y} + \\sum_{i=1}^{m} e^{z'_{s_i}}\\Big).

    With ``neg_log_q`` :math:`= \\log(m\\,q_s)`, ``pos_log_q=None`` and
    accidental hits removed, :math:`e^{z_y} + \\sum_i e^{z_{s_i}}/(m q_{s_i})` is
    an unbiased estimate of the full partition function, and the loss tends to
    :func:`softmax_cross_entropy` as :math:`m` grows (Bengio & Senécal 2008;
    Blanc & Rendle 2018). Passing ``pos_log_q`` as well is the convention of
    TensorFlow's ``sampled_softmax_loss`` (Jean et al. 2015). Without the
    correction, popular items (large :math:`q`) are pushed down too often and
    the model learns :math:`z_j \\approx \\log p(j \\mid u) - \\log q_j + c`.

    Args:
        pos_logits: ``(...)`` logit of each row's positive.
        neg_logits: ``(..., m)`` logits of the sampled negatives of each row (the
            negatives may be shared by all rows: ``z = U @ V_neg.T``).
        neg_log_q: ``(m,)`` or ``(..., m)`` log of the expected count of each
            sampled negative (``log(m q_s)``); required when ``logq_correction``.
        pos_log_q: ``(...)`` optional log expected count of the positive.
        logq_correction: subtract the log-probabilities; ``False`` ignores them.
        pos_ids, neg_ids: ``(...)`` and ``(m,)`` or ``(..., m)`` item indices; when
            both are given, a negative equal to its row's positive (an
            *accidental hit*) is removed (its logit set to :data:`MASK_LOGIT`).
        mask: ``(...)`` 0/1 weights of the rows (e.g. 0 for padding positions).
        reduction: ``"mean"`` over weighted rows, ``"sum"`` or ``"none"``.

    Returns:
        A float32 scalar, or ``(...)`` per-row losses for ``reduction="none"``.

    Raises:
        ValueError: on mismatched shapes, a missing ``neg_log_q`` or an unknown ``reduction``.
    """
    _check_reduction(reduction)
    pos = _float(pos_logits)
    neg = _float(neg_logits)
    if tuple(neg.shape[:-1]) != tuple(pos.shape):
        raise ValueError(
            f"neg_logits must be pos_logits' shape plus one axis of negatives: pos_logits "
            f"{tuple(pos.shape)}, neg_logits {tuple(neg.shape)}."
        )
    if logq_correction:
        if neg_log_q is None:
            raise ValueError(
                "logq_correction=True needs neg_log_q (log expected counts of the negatives); "
                "pass it, or set logq_correction=False."
            )
        neg = neg - _float(neg_log_q)
        if pos_log_q is not None:
            pos = pos - _float(pos_log_q)
    if (pos_ids is None) != (neg_ids is None):
        raise ValueError("accidental-hit removal needs both pos_ids and neg_ids (or neither).")
    if pos_ids is not None:
        hit = ops.equal(
            ops.expand_dims(ops.cast(ops.convert_to_tensor(pos_ids), "int32"), -1),
            ops.cast(ops.convert_to_tensor(neg_ids), "int32"),
        )
        neg = ops.where(hit, MASK_LOGIT, neg)
    candidates = ops.concatenate([ops.expand_dims(pos, -1), neg], axis=-1)
    per_row = ops.logsumexp(candidates, axis=-1) - pos
    return _reduce(per_row, None if mask is None else _float(mask), reduction)


def in_batch_softmax_loss(
    user_embeddings: Tensor,
    item_embeddings: Tensor,
    item_log_q: Tensor | None = None,
    *,
    item_ids: Tensor | None = None,
    temperature: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """In-batch softmax: each row's positive against the other rows' positives.

    With :math:`B` (user, item) pairs, the logits are the :math:`B \\times B`
    matrix :math:`Z = U V^\\top / \\tau`; row :math:`b`'s positive is the diagonal.
    The items of a batch are a sample from the item frequency :math:`q`, so
    popular items are over-represented as negatives; the logQ correction
    (Yi et al. 2019) subtracts :math:`\\log q_j` from column :math:`j`,

    .. math::  \\ell_b = -(Z_{bb} - \\log q_b) + \\log \\sum_{j=1}^{B} e^{Z_{bj} - \\log q_j}.

    Args:
        user_embeddings: ``(B, d)`` query-tower outputs.
        item_embeddings: ``(B, d)`` item-tower outputs of the positives.
        item_log_q: ``(B,)`` log sampling probability of each row's item; ``None``
            means no correction.
        item_ids: ``(B,)`` item indices; if given, off-diagonal entries with the
            same item as the row's positive (duplicates in the batch) are removed.
        temperature: :math:`\\tau > 0` dividing the logits.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(B,)``).

    Returns:
        A float32 scalar, or ``(B,)`` losses for ``reduction="none"``.

    Raises:
        ValueError: on mismatched shapes, a non-positive temperature or an unknown ``reduction``.
    """
    _check_reduction(reduction)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    u = _float(user_embeddings)
    v = _float(item_embeddings)
    _check_rank("user_embeddings", u, 2)
    if tuple(u.shape) != tuple(v.shape):
        raise ValueError(
            f"user_embeddings and item_embeddings must have the same (B, d) shape, got "
            f"{tuple(u.shape)} and {tuple(v.shape)}."
        )
    logits = ops.matmul(u, ops.transpose(v)) / temperature
    if item_log_q is not None:
        logits = logits - ops.expand_dims(_float(item_log_q), 0)
    batch = ops.shape(logits)[0]
    eye = ops.eye(batch, dtype="bool")
    if item_ids is not None:
        ids = ops.cast(ops.convert_to_tensor(item_ids), "int32")
        duplicate = ops.equal(ops.expand_dims(ids, 1), ops.expand_dims(ids, 0))
        logits = ops.where(ops.logical_and(duplicate, ops.logical_not(eye)), MASK_LOGIT, logits)
    pos = ops.sum(ops.where(eye, logits, 0.0), axis=-1)
    per_row = ops.logsumexp(logits, axis=-1) - pos
    return _reduce(per_row, None, reduction)


def bpr_loss(
    pos_scores: Tensor,
    neg_scores: Tensor,
    *,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Bayesian personalised ranking (Rendle et al. 2009).

    For a positive :math:`i` and a negative :math:`j` of the same user,

    .. math::  \\ell = -\\log \\sigma(z_{ui} - z_{uj}) = \\log\\big(1 + e^{-(z_{ui} - z_{uj})}\\big),

    computed as ``softplus(z_uj - z_ui)``; with several negatives per positive
    the pairs are averaged (``"mean"``) or summed (``"sum"``).

    Args:
        pos_scores: ``(...)`` scores of the positives.
        neg_scores: ``(...)`` one negative per positive, or ``(..., m)``.
        mask: ``(...)`` 0/1 weights of the positives.
        reduction: ``"mean"`` over weighted pairs, ``"sum"`` or ``"none"``
            (the shape of ``neg_scores``).

    Returns:
        A float32 scalar, or per-pair losses for ``reduction="none"``.

    Raises:
        ValueError: on mismatched shapes or an unknown ``reduction``.
    """
    _check_reduction(reduction)
    pos = _float(pos_scores)
    neg = _float(neg_scores)
    weights = None if mask is None else _float(mask)
    if tuple(neg.shape) != tuple(pos.shape):
        if tuple(neg.shape[:-1]) != tuple(pos.shape):
            raise ValueError(
                f"neg_scores must have the shape of pos_scores, or that shape plus one axis of "
                f"negatives: pos_scores {tuple(pos.shape)}, neg_scores {tuple(neg.shape)}."
            )
        pos = ops.expand_dims(pos, -1)
        if weights is not None:
            weights = ops.broadcast_to(ops.expand_dims(weights, -1), ops.shape(neg))
    per_pair = ops.softplus(neg - pos)
    return _reduce(per_pair, weights, reduction)


def bce_with_negatives(
    pos_logits: Tensor,
    neg_logits: Tensor,
    *,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy: positives labelled 1, sampled negatives labelled 0.

    With :math:`\\sigma` the logistic function, each positive and its
    negatives :math:`s_1..s_m` contribute

    .. math::  \\ell = -\\log \\sigma(z_{uy}) - \\sum_{i=1}^{m} \\log\\big(1 - \\sigma(z_{us_i})\\big)
               = \\operatorname{softplus}(-z_{uy}) + \\sum_{i=1}^{m} \\operatorname{softplus}(z_{us_i}),

    the loss of SASRec and of a logistic model of clicks.

    Args:
        pos_logits: ``(...)`` logits of the positives.
        neg_logits: ``(...)`` one negative per positive, or ``(..., m)``.
        mask: ``(...)`` 0/1 weights of the rows.
        reduction: ``"mean"`` over weighted rows, ``"sum"`` or ``"none"`` (``(...)``).

    Returns:
        A float32 scalar, or per-row losses for ``reduction="none"``.

    Raises:
        ValueError: on mismatched shapes or an unknown ``reduction``.
    """
    _check_reduction(reduction)
    pos = _float(pos_logits)
    neg = _float(neg_logits)
    if tuple(neg.shape) == tuple(pos.shape):
        neg_term = ops.softplus(neg)
    elif tuple(neg.shape[:-1]) == tuple(pos.shape):
        neg_term = ops.sum(ops.softplus(neg), axis=-1)
    else:
        raise ValueError(
            f"neg_logits must have the shape of pos_logits, or that shape plus one axis of "
            f"negatives: pos_logits {tuple(pos.shape)}, neg_logits {tuple(neg.shape)}."
        )
    per_row = ops.softplus(-pos) + neg_term
    return _reduce(per_row, None if mask is None else _float(mask), reduction)
