"""Tests of recsys_book.scaling: parameter and FLOP counts, user subsets, the sweep
runner, power-law fits and bootstrap intervals (small synthetic data, tiny models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_book.data import make_synthetic
from recsys_book.models.popularity import Popularity
from recsys_book.models.sasrec import SASRec, SASRecNetwork
from recsys_book.models.sequential import TransformerConfig
from recsys_book.params import count_params
from recsys_book.preprocessing import encode_ids, leave_one_out_split
from recsys_book.scaling import (
    bootstrap_ci,
    fit_power_law,
    run_sweep,
    sasrec_params,
    subsample_users,
    training_flops,
)


@pytest.fixture(scope="module")
def split():
    frame, _ = encode_ids(make_synthetic(n_users=80, n_items=40, n_interactions=1600, seed=2))
    return leave_one_out_split(frame)


# ----------------------------------------------------------------------------- counting


@pytest.mark.parametrize(("d", "layers", "d_ff"), [(8, 1, None), (16, 3, None), (12, 2, 20)])
def test_sasrec_params_match_keras(d, layers, d_ff):
    config = TransformerConfig(vocab_size=57, max_len=9, d_model=d, n_layers=layers, d_ff=d_ff)
    net = SASRecNetwork(config)
    net(np.array([[0, 3, 4, 5]], dtype="int32"))  # builds the weights
    by_hand = sasrec_params(57, d, layers, 9, d_ff=d_ff)
    assert by_hand == count_params(net)
    assert by_hand.total == net.count_params()
    assert by_hand.embedding == (57 + 9) * d


def test_sasrec_params_formula_for_default_ffn():
    d, layers = 64, 2
    counted = sasrec_params(1683, d, layers, 50)
    assert counted.dense == layers * (12 * d * d + 9 * d)
    assert counted.other == (2 * layers + 1) * 2 * d


def test_training_flops_is_six_n_d_plus_attention():
    d, layers, v, w, positions = 32, 2, 1000, 10, 500
    n_blocks = layers * 12 * d * d
    expected = 6 * positions * (n_blocks + layers * 2 * w * d + d * v)
    assert training_flops(v, d, layers, positions, w) == pytest.approx(expected)
    sampled = training_flops(v, d, layers, positions, w, scored_items=100)
    assert sampled < training_flops(v, d, layers, positions, w)
    assert training_flops(v, d, layers, 2 * positions, w) == pytest.approx(2 * expected)


@pytest.mark.parametrize(
    "bad", [dict(n_items=0), dict(embedding_dim=-1), dict(n_layers=1.5), dict(max_len=True)]
)
def test_sasrec_params_rejects_bad_sizes(bad):
    args = dict(n_items=10, embedding_dim=8, n_layers=1, max_len=5) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        sasrec_params(**args)


def test_training_flops_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positions"):
        training_flops(10, 8, 1, 0, 5)
    with pytest.raises(ValueError, match="scored_items"):
        training_flops(10, 8, 1, 4, 5, scored_items=0)


# ----------------------------------------------------------------------------- data axis


def test_subsample_users_is_nested_and_keeps_whole_histories(split):
    train = split.train
    quarter, half = subsample_users(train, 0.25, seed=1), subsample_users(train, 0.5, seed=1)
    q_users, h_users = set(quarter["user_idx"]), set(half["user_idx"])
    n = train["user_idx"].nunique()
    assert len(q_users) == round(0.25 * n) and len(h_users) == round(0.5 * n)
    assert q_users <= h_users
    assert len(quarter) == train["user_idx"].isin(q_users).sum()  # whole histories kept
    assert subsample_users(train, 1.0).equals(train)
    assert set(subsample_users(train, 0.25, seed=2)["user_idx"]) != q_users


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.1, "half", True])
def test_subsample_users_rejects_bad_fraction(split, bad):
    with pytest.raises(ValueError, match="fraction"):
        subsample_users(split.train, bad)


def test_subsample_users_checks_the_frame():
    with pytest.raises(KeyError, match="user_idx"):
        subsample_users(pd.DataFrame({"item_idx": [1]}), 0.5)


# ----------------------------------------------------------------------------- sweep


def test_run_sweep_measures_each_point(split):
    def make(**kw):
        return SASRec(max_len=8, n_layers=1, epochs=2, batch_size=64, learning_rate=0.01, **kw)

    points = [{"embedding_dim": 8}, {"embedding_dim": 8, "fraction": 0.5, "patience": 1}]
    table, per_user = run_sweep(
        make, points, split.train, split.validation, split.test,
        n_users=split.n_users, n_items=split.n_items, per_user=True,
    )  # fmt: skip
    assert len(table) == 2
    assert table["parameters"].tolist() == [sasrec_params(split.n_items, 8, 1, 8).total] * 2
    assert (table["non_embedding_params"] + table["embedding_params"] == table["parameters"]).all()
    n = split.train["user_idx"].nunique()
    assert table["train_users"].tolist() == [n, round(0.5 * n)]
    assert table.loc[1, "train_positions"] < table.loc[0, "train_positions"]
    assert table["fraction"].tolist() == [1.0, 0.5]
    assert table.loc[0, "epochs"] == 2 and table["best_epoch"].between(1, 2).all()
    assert table.loc[1, "epochs"] <= 2 and "patience" in table.columns
    assert (table["fit_seconds"] > table["first_epoch_seconds"]).all()
    assert (table["epoch_seconds"] > 0).all()
    assert table["HR@10"].between(0, 1).all() and (table["HR@10_se"] > 0).all()
    # a random guess over the real items has log loss log(n_items - 1); a trained model is near it
    assert (table["log_loss"] > 0).all()
    assert (table["log_loss"] < 2 * np.log(split.n_items - 1)).all()
    # per-user rows: every test user once per point, their mean is the table's value
    assert len(per_user) == 2 * split.test["user_idx"].nunique()
    means = per_user.groupby("point")["NDCG@10"].mean().to_numpy()
    np.testing.assert_allclose(means, table["NDCG@10"].to_numpy())


def test_run_sweep_rejects_bad_input(split):
    args = (split.train, split.validation, split.test)
    sizes = dict(n_users=split.n_users, n_items=split.n_items)
    with pytest.raises(ValueError, match="points is empty"):
        run_sweep(SASRec, [], *args, **sizes)
    with pytest.raises(ValueError, match="points\\[0\\]"):
        run_sweep(SASRec, [3], *args, **sizes)
    with pytest.raises(TypeError, match="SequentialRecommender"):
        run_sweep(lambda **kw: Popularity(), [{}], *args, **sizes)
    with pytest.raises(ValueError, match="fraction"):
        run_sweep(SASRec, [{"fraction": 2.0}], *args, **sizes)


# ----------------------------------------------------------------------------- statistics


def test_fit_power_law_recovers_exponent_and_its_noise():
    x = np.array([1e3, 1e4, 1e5, 1e6])
    exact = fit_power_law(x, 5.0 * x**-0.3)
    assert exact.exponent == pytest.approx(-0.3)
    assert exact.prefactor == pytest.approx(5.0)
    assert exact.r2 == pytest.approx(1.0) and exact.exponent_se == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(exact.predict([1e2]), 5.0 * 1e2**-0.3)
    noisy = fit_power_law(x, 5.0 * x**-0.3 * np.exp([0.05, -0.05, 0.04, -0.03]))
    low, high = noisy.interval(0.95)
    assert low < -0.3 < high and noisy.exponent_se > 0
    two = fit_power_law([1, 2], [1, 4])
    assert two.exponent == pytest.approx(2.0) and np.isnan(two.interval()[0])


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [([1, 2, 3], [1, 2], "same length"), ([1], [1], "two points"),
     ([1, 0, 2], [1, 2, 3], "> 0"), ([1, 2], [1, np.nan], "finite"),
     ([2, 2, 2], [1, 2, 3], "equal")],
)  # fmt: skip
def test_fit_power_law_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y)


def test_power_law_interval_rejects_bad_level():
    with pytest.raises(ValueError, match="level"):
        fit_power_law([1, 2, 3], [1, 2, 4]).interval(1.5)


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_more_users():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.1, 0.3, 100), rng.normal(0.1, 0.3, 10_000)
    lo_s, hi_s = bootstrap_ci(small, seed=1)
    lo_l, hi_l = bootstrap_ci(large, seed=1)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < 0.2 * (hi_s - lo_s)  # width ~ 1/sqrt(n): 10x narrower
    se = small.std(ddof=1) / np.sqrt(small.size)
    assert hi_s - lo_s == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_ci(small, seed=1) == (lo_s, hi_s)  # seeded


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(values=[1.0]), "two"), (dict(values=[1.0, np.inf]), "finite"),
     (dict(values=[1.0, 2.0], n_boot=0), "n_boot"), (dict(values=[1.0, 2.0], level=0), "level")],
)  # fmt: skip
def test_bootstrap_ci_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(**kwargs)
