"""recsys_book.losses against straightforward NumPy references (and autodiff where cheap)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from recsys_book import losses

RTOL = 1e-5
ATOL = 1e-5


def np_(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def np_logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def np_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def grad(fn, x: np.ndarray) -> np.ndarray:
    """d fn(x) / dx by the backend's autodiff (x float32)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.Variable(x.astype(np.float32))
        with tf.GradientTape() as tape:
            y = fn(t)
        return tape.gradient(y, t).numpy().astype(np.float64)
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x.astype(np.float32)), dtype=np.float64)
    if backend == "torch":
        import torch

        t = torch.tensor(x.astype(np.float32), requires_grad=True)
        fn(t).backward()
        return t.grad.numpy().astype(np.float64)
    pytest.skip(f"no gradient helper for backend {backend!r}")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- softmax over all items


def test_softmax_ce_matches_numpy_and_ignores_padding(rng):
    logits = rng.normal(size=(6, 9)).astype(np.float32) * 3
    targets = np.array([3, 0, 8, 1, 0, 5])
    per_row = -(logits[np.arange(6), targets] - np_logsumexp(logits.astype(np.float64)))
    keep = targets != 0
    got = np_(losses.softmax_cross_entropy(logits, targets, reduction="none"))
    np.testing.assert_allclose(got, np.where(keep, per_row, 0.0), rtol=RTOL, atol=ATOL)
    got_mean = float(np_(losses.softmax_cross_entropy(logits, targets)))
    assert got_mean == pytest.approx(per_row[keep].mean(), rel=RTOL)
    got_sum = float(np_(losses.softmax_cross_entropy(logits, targets, reduction="sum")))
    assert got_sum == pytest.approx(per_row[keep].sum(), rel=RTOL)
    got_all = float(np_(losses.softmax_cross_entropy(logits, targets, padding_index=None)))
    assert got_all == pytest.approx(per_row.mean(), rel=RTOL)


def test_softmax_ce_sequence_shape_and_all_padding(rng):
    logits = rng.normal(size=(2, 4, 7)).astype(np.float32)
    targets = np.array([[0, 0, 2, 6], [1, 2, 3, 4]])
    ref = -(
        np.take_along_axis(logits, targets[..., None], -1)[..., 0]
        - np_logsumexp(logits.astype(np.float64))
    )
    got = float(np_(losses.softmax_cross_entropy(logits, targets)))
    assert got == pytest.approx(ref[targets != 0].mean(), rel=RTOL)
    zero = float(np_(losses.softmax_cross_entropy(logits, np.zeros((2, 4), int))))
    assert zero == 0.0  # all padding: nothing to learn, not NaN


def test_softmax_ce_gradient_is_p_minus_onehot(rng):
    logits = rng.normal(size=(5, 8)).astype(np.float32)
    targets = np.array([1, 7, 2, 2, 4])
    g = grad(lambda z: losses.softmax_cross_entropy(z, targets, reduction="sum"), logits)
    p = np.exp(logits - np_logsumexp(logits.astype(np.float64))[:, None])
    np.testing.assert_allclose(g, p - np.eye(8)[targets], rtol=RTOL, atol=ATOL)


def test_softmax_ce_fused_target_logits_equal_unfused(rng):
    logits = rng.normal(size=(2, 4, 7)).astype(np.float32) * 2
    targets = np.array([[0, 3, 2, 6], [1, 2, 0, 4]])
    target_logits = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
    for reduction in ("none", "sum", "mean"):
        plain = np_(losses.softmax_cross_entropy(logits, targets, reduction=reduction))
        fused = np_(
            losses.softmax_cross_entropy(
                logits, targets, reduction=reduction, target_logits=target_logits
            )
        )
        np.testing.assert_allclose(fused, plain, rtol=RTOL, atol=ATOL)
    # the gradient reaches the target logit through target_logits, not the gather
    g = grad(
        lambda z: losses.softmax_cross_entropy(
            z, targets, reduction="sum", target_logits=ops.sum(
                ops.multiply(z, ops.convert_to_tensor(np.eye(7, dtype="float32")[targets])), axis=-1
            ),
        ),
        logits,
    )  # fmt: skip
    p = np.exp(logits - np_logsumexp(logits.astype(np.float64))[..., None])
    expected = (p - np.eye(7)[targets]) * (targets != 0)[..., None]
    np.testing.assert_allclose(g, expected, rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match="target_logits must have the shape"):
        losses.softmax_cross_entropy(logits, targets, target_logits=target_logits[:, :2])


def test_softmax_ce_rejects_bad_shapes_and_reduction(rng):
    logits = rng.normal(size=(3, 5))
    with pytest.raises(ValueError, match="targets must have the shape"):
        losses.softmax_cross_entropy(logits, np.array([1, 2]))
    with pytest.raises(ValueError, match="reduction='avg'"):
        losses.softmax_cross_entropy(logits, np.array([1, 2, 3]), reduction="avg")


# ---------------------------------------------------------------- sampled softmax


def np_sampled_softmax(pos, neg, neg_log_q, pos_log_q=None, pos_ids=None, neg_ids=None):
    neg = neg - neg_log_q
    if pos_log_q is not None:
        pos = pos - pos_log_q
    if pos_ids is not None:
        neg = np.where(pos_ids[:, None] == np.broadcast_to(neg_ids, neg.shape), -np.inf, neg)
    cand = np.concatenate([pos[:, None], neg], axis=1)
    return np_logsumexp(cand) - pos


def test_sampled_softmax_matches_numpy_with_and_without_correction(rng):
    b, m = 7, 5
    pos = rng.normal(size=b)
    neg = rng.normal(size=(b, m))
    log_q = np.log(m * rng.dirichlet(np.ones(20))[rng.integers(1, 20, size=m)])
    pos_log_q = rng.normal(size=b) - 3
    ref = np_sampled_softmax(pos, neg, log_q)
    got = np_(losses.sampled_softmax_loss(pos, neg, log_q, reduction="none"))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    ref_tf = np_sampled_softmax(pos, neg, log_q, pos_log_q=pos_log_q)
    got_tf = np_(
        losses.sampled_softmax_loss(pos, neg, log_q, pos_log_q=pos_log_q, reduction="none")
    )
    np.testing.assert_allclose(got_tf, ref_tf, rtol=RTOL, atol=ATOL)
    ref_off = np_sampled_softmax(pos, neg, np.zeros(m))
    got_off = float(np_(losses.sampled_softmax_loss(pos, neg, log_q, logq_correction=False)))
    assert got_off == pytest.approx(ref_off.mean(), rel=RTOL)
    assert not np.allclose(ref_off, ref)  # the correction changes the loss


def test_sampled_softmax_removes_accidental_hits(rng):
    pos_ids = np.array([3, 4, 9])
    neg_ids = np.array([4, 3, 3, 7])  # shared negatives; row 0 and 1 contain a hit
    pos = rng.normal(size=3)
    neg = rng.normal(size=(3, 4))
    log_q = np.log(np.full(4, 0.5))
    ref = np_sampled_softmax(pos, neg, log_q, pos_ids=pos_ids, neg_ids=neg_ids)
    got = np_(
        losses.sampled_softmax_loss(
            pos, neg, log_q, pos_ids=pos_ids, neg_ids=neg_ids, reduction="none"
        )
    )
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    unmasked = np_(losses.sampled_softmax_loss(pos, neg, log_q, reduction="none"))
    assert got[2] == pytest.approx(unmasked[2], rel=RTOL)  # no hit in row 2
    assert got[0] < unmasked[0] and got[1] < unmasked[1]


def test_sampled_softmax_tends_to_full_softmax_with_many_samples(rng):
    n, m = 50, 200_000
    z = rng.normal(size=n) * 2
    q = rng.dirichlet(np.ones(n) * 2)
    y = 7
    samples = rng.choice(n, size=m, p=q)
    samples = samples[samples != y]
    est = float(
        np_(
            losses.sampled_softmax_loss(
                np.array([z[y]]), z[samples][None, :], np.log(m * q[samples])
            )
        )
    )
    full = -(z[y] - np_logsumexp(z))
    assert est == pytest.approx(full, abs=0.02)
    uncorrected = float(
        np_(
            losses.sampled_softmax_loss(
                np.array([z[y]]), z[samples][None, :], logq_correction=False
            )
        )
    )
    assert abs(uncorrected - full) > 1.0


def test_sampled_softmax_gradient_wrt_negatives(rng):
    pos = rng.normal(size=4).astype(np.float32)
    neg = rng.normal(size=(4, 3)).astype(np.float32)
    log_q = np.log(np.array([0.2, 0.5, 1.5]))
    g = grad(lambda t: losses.sampled_softmax_loss(pos, t, log_q, reduction="sum"), neg)
    cand = np.concatenate([pos[:, None], neg - log_q], axis=1).astype(np.float64)
    p = np.exp(cand - np_logsumexp(cand)[:, None])
    np.testing.assert_allclose(g, p[:, 1:], rtol=RTOL, atol=ATOL)


def test_sampled_softmax_mask_and_errors(rng):
    pos = rng.normal(size=(2, 3))
    neg = rng.normal(size=(2, 3, 4))
    mask = np.array([[1, 1, 0], [0, 1, 1]])
    per = np_(losses.sampled_softmax_loss(pos, neg, logq_correction=False, reduction="none"))
    got = float(np_(losses.sampled_softmax_loss(pos, neg, logq_correction=False, mask=mask)))
    assert got == pytest.approx(per[mask == 1].mean(), rel=RTOL)
    with pytest.raises(ValueError, match="needs neg_log_q"):
        losses.sampled_softmax_loss(pos, neg)
    with pytest.raises(ValueError, match="plus one axis of negatives"):
        losses.sampled_softmax_loss(pos, neg[0], logq_correction=False)
    with pytest.raises(ValueError, match="both pos_ids and neg_ids"):
        losses.sampled_softmax_loss(pos, neg, logq_correction=False, pos_ids=np.ones((2, 3)))


# ---------------------------------------------------------------- in-batch softmax


def np_in_batch(u, v, log_q=None, ids=None, tau=1.0):
    z = u @ v.T / tau
    if log_q is not None:
        z = z - log_q[None, :]
    if ids is not None:
        dup = (ids[:, None] == ids[None, :]) & ~np.eye(len(ids), dtype=bool)
        z = np.where(dup, -np.inf, z)
    return np_logsumexp(z) - np.diag(z)


def test_in_batch_softmax_matches_numpy(rng):
    u = rng.normal(size=(6, 4))
    v = rng.normal(size=(6, 4))
    log_q = np.log(rng.dirichlet(np.ones(6)))
    ids = np.array([5, 2, 5, 9, 1, 2])
    for kwargs in ({}, {"log_q": log_q}, {"log_q": log_q, "ids": ids}, {"tau": 0.5}):
        ref = np_in_batch(u, v, **kwargs)
        got = np_(
            losses.in_batch_softmax_loss(
                u,
                v,
                kwargs.get("log_q"),
                item_ids=kwargs.get("ids"),
                temperature=kwargs.get("tau", 1.0),
                reduction="none",
            )
        )
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=str(kwargs.keys()))


def test_in_batch_softmax_gradient_wrt_user_embeddings(rng):
    u = rng.normal(size=(5, 3)).astype(np.float32)
    v = rng.normal(size=(5, 3)).astype(np.float32)
    log_q = np.log(rng.dirichlet(np.ones(5)))
    g = grad(lambda t: losses.in_batch_softmax_loss(t, v, log_q, reduction="sum"), u)
    z = u.astype(np.float64) @ v.T - log_q[None, :]
    p = np.exp(z - np_logsumexp(z)[:, None])
    np.testing.assert_allclose(g, (p - np.eye(5)) @ v, rtol=1e-4, atol=1e-5)


def test_in_batch_softmax_errors(rng):
    u = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="same \\(B, d\\) shape"):
        losses.in_batch_softmax_loss(u, rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        losses.in_batch_softmax_loss(u[0], u[0])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        losses.in_batch_softmax_loss(u, u, temperature=0.0)


# ---------------------------------------------------------------- BPR and BCE


def test_bpr_matches_numpy_and_its_gradient(rng):
    pos = rng.normal(size=8) * 3
    neg = rng.normal(size=8) * 3
    ref = -np.log(1.0 / (1.0 + np.exp(-(pos - neg))))
    got = np_(losses.bpr_loss(pos, neg, reduction="none"))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    g = grad(lambda t: losses.bpr_loss(t, neg, reduction="sum"), pos.astype(np.float32))
    sig = 1.0 / (1.0 + np.exp(-(pos.astype(np.float32) - neg)))
    np.testing.assert_allclose(g, -(1.0 - sig), rtol=1e-4, atol=ATOL)


def test_bpr_several_negatives_with_mask(rng):
    pos = rng.normal(size=(3,))
    neg = rng.normal(size=(3, 4))
    mask = np.array([1, 0, 1])
    pairs = np_softplus(neg - pos[:, None])
    got = float(np_(losses.bpr_loss(pos, neg, mask=mask)))
    assert got == pytest.approx(pairs[mask == 1].mean(), rel=RTOL)
    with pytest.raises(ValueError, match="neg_scores must have the shape"):
        losses.bpr_loss(pos, rng.normal(size=(4, 3)))


def test_bce_with_negatives_matches_numpy(rng):
    pos = rng.normal(size=(2, 5)) * 2
    neg = rng.normal(size=(2, 5, 3)) * 2
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    ref = -np.log(sig(pos)) - np.log(1.0 - sig(neg)).sum(-1)
    got = np_(losses.bce_with_negatives(pos, neg, reduction="none"))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    one = np_(losses.bce_with_negatives(pos, neg[..., 0], reduction="none"))
    np.testing.assert_allclose(one, -np.log(sig(pos)) - np.log(1 - sig(neg[..., 0])), rtol=RTOL)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    got_mean = float(np_(losses.bce_with_negatives(pos, neg, mask=mask)))
    assert got_mean == pytest.approx(ref[mask == 1].mean(), rel=RTOL)
    g = grad(lambda t: losses.bce_with_negatives(t, neg, reduction="sum"), pos.astype(np.float32))
    np.testing.assert_allclose(g, sig(pos.astype(np.float32)) - 1.0, rtol=1e-4, atol=ATOL)
    with pytest.raises(ValueError, match="neg_logits must have the shape"):
        losses.bce_with_negatives(pos, rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="reduction"):
        losses.bce_with_negatives(pos, neg, reduction="max")


def test_losses_are_stable_for_extreme_logits():
    pos = np.array([80.0, -80.0])
    neg = np.array([[-80.0, 80.0], [80.0, -80.0]])
    for value in (
        losses.bpr_loss(pos, neg),
        losses.bce_with_negatives(pos, neg),
        losses.sampled_softmax_loss(pos, neg, logq_correction=False),
        losses.softmax_cross_entropy(neg, np.array([1, 0]), padding_index=None),
    ):
        assert np.isfinite(np_(value))
