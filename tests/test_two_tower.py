"""TwoTower on small planted-factor data: shapes, learning, determinism, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_book.data import make_synthetic
from recsys_book.models.two_tower import TwoTower
from recsys_book.preprocessing import encode_ids

FAST = dict(embedding_dim=16, epochs=5, batch_size=128, learning_rate=0.02)


@pytest.fixture(scope="module")
def data():
    """One held-out interaction per user (random, seeded); the rest is training data."""
    frame, encoder = encode_ids(
        make_synthetic(n_users=150, n_items=200, n_interactions=6000, seed=1)
    )
    test = frame.groupby("user_idx").sample(1, random_state=0)
    train = frame.drop(test.index)
    return train, test, encoder.n_users, encoder.n_items


def hit_rate(model: TwoTower, test: pd.DataFrame, k: int = 10) -> float:
    rec = model.recommend(test["user_idx"].to_numpy(), k)
    return float((rec == test["item_idx"].to_numpy()[:, None]).any(axis=1).mean())


@pytest.fixture(scope="module")
def softmax_model(data):
    train, _, n_users, n_items = data
    return TwoTower(loss="softmax", seed=0, **FAST).fit(train, n_users, n_items)


def test_score_and_recommend_shapes(softmax_model, data):
    train, test, n_users, n_items = data
    users = test["user_idx"].to_numpy()[:7]
    s = softmax_model.score(users)
    assert s.shape == (7, n_items) and s.dtype == np.float32
    assert np.isneginf(s[:, 0]).all() and np.isfinite(s[:, 1:]).all()
    u = softmax_model.user_vectors(users)
    v = softmax_model.item_vectors()
    assert u.shape == (7, 16) and v.shape == (n_items, 16)
    np.testing.assert_allclose(s[:, 1:], (u @ v.T)[:, 1:], rtol=1e-4, atol=1e-5)
    rec = softmax_model.recommend(users, k=10)
    assert rec.shape == (7, 10) and rec.dtype == np.int64
    assert (rec >= 1).all()
    for row, user in zip(rec, users, strict=True):
        seen = set(train.loc[train["user_idx"] == user, "item_idx"])
        assert seen.isdisjoint(row.tolist())
        assert np.all(np.diff(s[users == user][0][row]) <= 0)  # best first
    assert softmax_model.score(np.array([], dtype=np.int64)).shape == (0, n_items)


def test_full_softmax_learns_planted_signal(softmax_model, data):
    _, test, _, n_items = data
    chance = 10 / (n_items - 1)
    assert hit_rate(softmax_model, test) > 5 * chance
    assert softmax_model.history_[-1] < softmax_model.history_[0]


def test_sampled_softmax_learns_and_logq_correction_helps(data):
    train, test, n_users, n_items = data
    common = dict(loss="sampled", n_negatives=16, proposal="popularity", seed=0, **FAST)
    corrected = TwoTower(logq_correction=True, **common).fit(train, n_users, n_items)
    plain = TwoTower(logq_correction=False, **common).fit(train, n_users, n_items)
    chance = 10 / (n_items - 1)
    assert hit_rate(corrected, test) > 5 * chance
    # without the correction, popular negatives are over-penalised: worse ranking
    assert hit_rate(corrected, test) > hit_rate(plain, test) + 0.03


def test_in_batch_and_uniform_sampled_with_mlp_towers_learn(data):
    train, test, n_users, n_items = data
    chance = 10 / (n_items - 1)
    in_batch = TwoTower(loss="in_batch", hidden_units=(16,), seed=0, **FAST)
    assert hit_rate(in_batch.fit(train, n_users, n_items), test) > 4 * chance
    uniform = TwoTower(loss="sampled", proposal="uniform", n_negatives=32, seed=0, **FAST)
    assert hit_rate(uniform.fit(train, n_users, n_items), test) > 4 * chance
    q = np.exp(uniform.item_log_q_)  # training frequency of each item, a distribution
    assert q[0] == 0.0 and q.sum() == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_model(data):
    train, _, n_users, n_items = data
    kwargs = dict(loss="sampled", n_negatives=8, embedding_dim=8, epochs=1, batch_size=256)
    a = TwoTower(seed=3, **kwargs).fit(train, n_users, n_items).score(np.array([1, 2]))
    b = TwoTower(seed=3, **kwargs).fit(train, n_users, n_items).score(np.array([1, 2]))
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a[:, 1:]).all() and np.ptp(a[:, 1:]) > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(loss="full"), ValueError, "loss='full' is not one of"),
        (dict(proposal="zipf"), ValueError, "proposal='zipf'"),
        (dict(optimizer="rmsprop"), ValueError, "optimizer='rmsprop'"),
        (dict(embedding_dim=0), ValueError, "embedding_dim must be a positive integer"),
        (dict(n_negatives=-1), ValueError, "n_negatives must be a positive integer"),
        (dict(learning_rate=0.0), ValueError, "learning_rate must be a finite number > 0"),
        (dict(l2=-1.0), ValueError, "l2 must be a finite number >= 0"),
        (dict(seed=-2), ValueError, "seed must be a non-negative integer"),
        (dict(hidden_units=8), TypeError, "hidden_units must be a sequence"),
        (dict(hidden_units=(8, 0)), ValueError, "hidden_units\\[\\] must be a positive integer"),
        (dict(logq_correction="yes"), TypeError, "logq_correction must be True or False"),
    ],
)
def test_bad_hyper_parameters_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        TwoTower(**kwargs)


def test_bad_input_raises(data, softmax_model):
    train, _, n_users, n_items = data
    with pytest.raises(RuntimeError, match="not fitted"):
        TwoTower().score(np.array([1]))
    with pytest.raises(RuntimeError, match="not fitted"):
        TwoTower().item_vectors()
    with pytest.raises(KeyError, match="item_idx"):
        TwoTower().fit(train.drop(columns="item_idx"))
    with pytest.raises(ValueError, match="is empty"):
        TwoTower().fit(train.iloc[:0])
    with pytest.raises(ValueError, match="in_batch' needs batch_size >= 2"):
        TwoTower(loss="in_batch", batch_size=1, epochs=1).fit(train, n_users, n_items)
    with pytest.raises(ValueError, match="user indices must lie in"):
        softmax_model.score(np.array([0]))
    with pytest.raises(ValueError, match="user indices must lie in"):
        softmax_model.user_vectors(np.array([n_users]))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        softmax_model.recommend(np.array([1]), k=0)
    assert "loss='softmax'" in repr(softmax_model)
