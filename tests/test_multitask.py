"""Shared-bottom / MMoE multi-task model: shapes, masking, gates, weights, learning, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_book import data, metrics, preprocessing
from recsys_book.models.base import interaction_matrix
from recsys_book.models.multitask import (
    MultiTask,
    MultiTaskNetwork,
    masked_bce,
    two_task_examples,
)
from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops

SMALL = dict(embedding_dim=8, expert_units=(16,), tower_units=(8,), batch_size=256, epochs=2)


@pytest.fixture(scope="module")
def synthetic():
    frame, enc = preprocessing.encode_ids(data.make_synthetic(100, 300, 3000, seed=3))
    split = preprocessing.random_split(frame, 0.2, seed=0, n_users=enc.n_users, n_items=enc.n_items)
    return frame, split, enc.n_users, enc.n_items


@pytest.fixture(scope="module")
def fitted(synthetic):
    frame, split, n_users, n_items = synthetic
    model = MultiTask("mmoe", n_experts=3, seed=5, **SMALL)
    return model.fit(split.train, n_users, n_items)


def _tower_weights(model, t):
    return [np.array(w) for w in model.network_.towers[t].get_weights()]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- examples and loss


def test_two_task_examples_labels_and_negatives(synthetic):
    frame, split, n_users, n_items = synthetic
    seen = interaction_matrix(frame, n_users, n_items)
    pairs, labels = two_task_examples(split.test, n_items, seen=seen, n_negatives=2, seed=1)
    n = len(split.test)
    assert pairs.shape == (3 * n, 2) and labels.shape == (3 * n, 2)
    assert (labels[:n, 0] == 1).all() and (labels[n:, 0] == 0).all()
    assert np.isnan(labels[n:, 1]).all() and not np.isnan(labels[:n, 1]).any()
    np.testing.assert_array_equal(labels[:n, 1], split.test["rating"].to_numpy() >= 4)
    # sampled negatives are never rated pairs (train or test)
    assert seen[pairs[n:, 0], pairs[n:, 1]].sum() == 0
    again = two_task_examples(split.test, n_items, seen=seen, n_negatives=2, seed=1)
    np.testing.assert_array_equal(pairs, again[0])


def test_two_task_examples_errors(synthetic):
    frame, split, _, n_items = synthetic
    with pytest.raises(KeyError, match="rating"):
        two_task_examples(split.test.drop(columns="rating"), n_items)
    with pytest.raises(KeyError, match="encode"):
        two_task_examples(pd.DataFrame({"rating": [4.0]}), n_items)
    with pytest.raises(ValueError, match="n_negatives"):
        two_task_examples(split.test, n_items, n_negatives=0)
    bad = split.test.assign(rating=np.nan)
    with pytest.raises(ValueError, match="NaN"):
        two_task_examples(bad, n_items)


def test_masked_bce_by_hand():
    logits = np.array([[0.0, 2.0], [1.0, np.log(3.0)], [-1.0, 5.0]])
    labels = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, np.nan]])
    total, per_task = masked_bce(logits, labels, (1.0, 0.5))
    a = (np.log(2) + np.log(1 + np.e) + np.log(1 + np.exp(-1))) / 3
    b = (np.log(1 + np.exp(-2.0)) + np.log(4.0)) / 2  # the NaN label does not count
    np.testing.assert_allclose(per_task, [a, b])
    assert total == pytest.approx(a + 0.5 * b)
    # the masked entry's logit does not matter
    other = logits.copy()
    other[2, 1] = -50.0
    assert masked_bce(other, labels, (1.0, 0.5))[0] == pytest.approx(total)
    assert np.isnan(masked_bce(logits[:, :1], np.full((3, 1), np.nan), (1.0,))[1][0])


# --------------------------------------------------------------------------- network


def test_network_loss_ignores_masked_labels_and_matches_numpy():
    net = MultiTaskNetwork(
        5,
        6,
        embedding_dim=4,
        n_tasks=2,
        n_experts=2,
        expert_units=(8,),
        tower_units=(),
        task_weights=(1.0, 2.0),
        seed=0,
    )
    pairs = np.array([[1, 1], [2, 3], [4, 5]], np.int32)
    logits = net(pairs)
    labels = np.array([[1, 1], [0, 0], [1, 0]], np.float32)
    mask = np.array([[1, 1], [1, 0], [1, 0]], np.float32)
    y = np.concatenate([labels, mask], axis=1)
    flipped = y.copy()
    flipped[1:, 1] = 1.0  # the masked "like" labels
    loss = float(ops.convert_to_numpy(net.compute_loss(pairs, y, logits)))
    assert float(ops.convert_to_numpy(net.compute_loss(pairs, flipped, logits))) == loss
    expected, _ = masked_bce(
        ops.convert_to_numpy(logits), np.where(mask > 0, labels, np.nan), (1, 2)
    )
    assert loss == pytest.approx(expected, rel=1e-5)


def test_masked_task_gets_no_gradient():
    # every "like" label masked: the like tower keeps its initial weights, the other trains
    net = MultiTaskNetwork(
        5,
        6,
        embedding_dim=4,
        n_tasks=2,
        n_experts=2,
        expert_units=(8,),
        tower_units=(4,),
        task_weights=(1.0, 1.0),
        seed=0,
    )
    net.compile(optimizer=keras.optimizers.Adam(0.05))
    pairs = np.array([[1, 1], [2, 2], [3, 4], [4, 5]], np.int32)
    y = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 0]], np.float32)
    net(pairs)
    like_before = [np.array(w) for w in net.towers[1].get_weights()]
    interact_before = [np.array(w) for w in net.towers[0].get_weights()]
    net.fit(pairs, y, epochs=3, batch_size=2, verbose=0)
    assert _same(like_before, [np.array(w) for w in net.towers[1].get_weights()])
    assert not _same(interact_before, [np.array(w) for w in net.towers[0].get_weights()])


# --------------------------------------------------------------------------- model


def test_predict_and_gate_shapes(fitted, synthetic):
    _, split, _, n_items = synthetic
    users = split.test["user_idx"].to_numpy()[:50]
    items = split.test["item_idx"].to_numpy()[:50]
    p = fitted.predict(users, items)
    assert p.shape == (50, 2) and p.dtype == np.float32
    assert ((p > 0) & (p < 1)).all()
    g = fitted.gate_weights(users, items)
    assert g.shape == (50, 2, 3)
    np.testing.assert_allclose(g.sum(-1), 1.0, atol=1e-5)
    assert (g >= 0).all()
    assert fitted.predict(users[:0], items[:0]).shape == (0, 2)
    s = fitted.score(users[:4])
    assert s.shape == (4, n_items) and np.isneginf(s[:, 0]).all()
    np.testing.assert_allclose(s[np.arange(4), items[:4]], p[:4, 0] * p[:4, 1], rtol=1e-5)


def test_shared_bottom_gate_is_one(synthetic):
    _, split, n_users, n_items = synthetic
    model = MultiTask("shared_bottom", seed=1, **{**SMALL, "epochs": 1})
    model.fit(split.train, n_users, n_items)
    g = model.gate_weights(np.array([1, 2]), np.array([3, 4]))
    assert g.shape == (2, 2, 1) and (g == 1).all()


@pytest.mark.parametrize("weights, frozen", [((1.0, 0.0), 1), ((0.0, 1.0), 0)])
def test_zero_task_weight_leaves_tower_untrained(synthetic, weights, frozen):
    _, split, n_users, n_items = synthetic
    model = MultiTask("mmoe", n_experts=2, task_weights=weights, seed=3, **{**SMALL, "epochs": 1})
    model.fit(split.train, n_users, n_items)
    initial = MultiTaskNetwork(
        n_users,
        n_items,
        embedding_dim=8,
        n_tasks=2,
        n_experts=2,
        expert_units=(16,),
        tower_units=(8,),
        task_weights=weights,
        seed=3,
    )  # the same seed gives the same initial weights
    initial(np.array([[1, 1]], np.int32))
    start = [[np.array(w) for w in initial.towers[t].get_weights()] for t in (0, 1)]
    assert _same(start[frozen], _tower_weights(model, frozen))  # weight 0: never updated
    assert not _same(start[1 - frozen], _tower_weights(model, 1 - frozen))  # the trained task


def test_learns_both_tasks_better_than_chance(synthetic):
    frame, split, n_users, n_items = synthetic
    model = MultiTask("mmoe", n_experts=2, seed=0, **{**SMALL, "epochs": 6})
    model.fit(split.train, n_users, n_items, validation=split.test)
    assert 1 <= model.log_.best_epoch <= 6
    seen = interaction_matrix(frame, n_users, n_items)
    pairs, labels = two_task_examples(split.test, n_items, seen=seen, seed=9)
    p = model.predict(pairs[:, 0], pairs[:, 1]).astype(np.float64)
    auc_a = metrics.auc(p[None, :, 0], (labels[:, 0] == 1)[None])[0]
    rated = ~np.isnan(labels[:, 1])
    auc_b = metrics.auc(p[None, rated, 1], (labels[rated, 1] == 1)[None])[0]
    assert auc_a > 0.7, auc_a
    assert auc_b > 0.6, auc_b


def test_features_are_used_and_validated(synthetic):
    _, split, n_users, n_items = synthetic
    item_f = np.random.default_rng(0).random((n_items, 3)).astype(np.float32)
    user_f = np.random.default_rng(1).random((n_users, 2)).astype(np.float32)
    one_epoch = {**SMALL, "epochs": 1}
    model = MultiTask(n_experts=2, item_features=item_f, user_features=user_f, **one_epoch)
    model.fit(split.train, n_users, n_items)
    np.testing.assert_array_equal(ops.convert_to_numpy(model.network_.item_table), item_f)
    assert model.predict(np.array([1]), np.array([2])).shape == (1, 2)
    with pytest.raises(ValueError, match="rows"):
        MultiTask(item_features=item_f[:-1], **SMALL).fit(split.train, n_users, n_items)
    with pytest.raises(ValueError, match="NaN"):
        MultiTask(user_features=np.full((n_users, 1), np.nan), **SMALL).fit(
            split.train, n_users, n_items
        )


def test_determinism_under_seed(fitted, synthetic):
    _, split, n_users, n_items = synthetic
    users, items = np.array([1, 2, 3]), np.array([4, 5, 6])
    again = MultiTask("mmoe", n_experts=3, seed=5, **SMALL).fit(split.train, n_users, n_items)
    np.testing.assert_array_equal(fitted.predict(users, items), again.predict(users, items))
    np.testing.assert_array_equal(fitted.log_.train_loss, again.log_.train_loss)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"architecture": "ple"}, "architecture"),
        ({"task_weights": (1.0,)}, "one weight per task"),
        ({"task_weights": (0.0, 0.0)}, "all 0"),
        ({"task_weights": (1.0, -1.0)}, "task_weights"),
        ({"n_experts": 1}, "n_experts >= 2"),
        ({"n_experts": 0}, "n_experts"),
        ({"expert_units": ()}, "at least one"),
        ({"tower_units": (8, 0)}, "tower_units"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"score_task": "click"}, "score_task"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiTask(**kwargs)


def test_bad_units_type():
    with pytest.raises(TypeError, match="expert_units"):
        MultiTask(expert_units=64)


def test_bad_predict_inputs(fitted, synthetic):
    _, _, n_users, n_items = synthetic
    with pytest.raises(RuntimeError, match="not fitted"):
        MultiTask().predict(np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="same length"):
        fitted.predict(np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="item indices"):
        fitted.predict(np.array([1]), np.array([n_items]))
    with pytest.raises(ValueError, match="user indices"):
        fitted.predict(np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="same length"):
        fitted.gate_weights(np.array([1]), np.array([1.5]))


def test_fit_errors(synthetic):
    _, split, n_users, n_items = synthetic
    with pytest.raises(KeyError, match="rating"):
        MultiTask(**SMALL).fit(split.train.drop(columns="rating"), n_users, n_items)
    with pytest.raises(KeyError, match="encode"):
        MultiTask(**SMALL).fit(split.train, n_users, n_items, validation=pd.DataFrame({"x": [1]}))
