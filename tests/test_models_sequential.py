"""Tests of the sequence models: transformer pieces, SASRec, GRU4Rec, BERT4Rec.

Small synthetic data (make_synthetic orders each user's items by a planted
phase, so the next item is predictable from the last); tiny models, few epochs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_book.data import make_synthetic
from recsys_book.evaluation import evaluate
from recsys_book.models.bert4rec import BERT4Rec
from recsys_book.models.gru4rec import GRU4Rec
from recsys_book.models.popularity import Popularity
from recsys_book.models.sasrec import SASRec
from recsys_book.models.sequential import (
    MultiHeadSelfAttention,
    SequentialRecommender,
    TransformerBlock,
    TransformerConfig,
    TransformerEncoder,
    attention_mask,
    bucket_widths,
    length_batches,
    ops,
    ordered,
    sparse_targets,
)
from recsys_book.preprocessing import encode_ids, leave_one_out_split

TINY = dict(max_len=12, embedding_dim=16, batch_size=64, learning_rate=0.01, seed=3)


@pytest.fixture(scope="module")
def split():
    frame, _ = encode_ids(make_synthetic(n_users=150, n_items=60, n_interactions=3000, seed=1))
    return leave_one_out_split(frame)


@pytest.fixture(scope="module")
def sasrec(split):
    return SASRec(n_layers=1, dropout=0.1, epochs=8, **TINY).fit(
        split.train, split.n_users, split.n_items, validation=split.validation
    )


def _val_ndcg(model, split) -> float:
    table = evaluate(model, split.train, split.validation, n_items=split.n_items, metrics=("NDCG",))
    return float(table["NDCG@10"].iloc[0])


# ----------------------------------------------------------------------------- pieces


def test_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(vocab_size=10, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="dropout"):
        TransformerConfig(vocab_size=10, dropout=1.0)
    with pytest.raises(ValueError, match="max_len"):
        TransformerConfig(vocab_size=10, max_len=0)


def test_attention_mask_is_causal_and_hides_padding():
    seqs = np.array([[0, 0, 5, 6], [1, 2, 3, 4]])
    causal = ops.convert_to_numpy(attention_mask(seqs, causal=True))
    assert causal.shape == (2, 1, 4, 4)
    expected = np.tril(np.ones((4, 4), bool)) & (seqs[0] != 0)[None, :]
    np.testing.assert_array_equal(causal[0, 0], expected)
    np.testing.assert_array_equal(causal[1, 0], np.tril(np.ones((4, 4), bool)))
    both = ops.convert_to_numpy(attention_mask(seqs, causal=False))
    np.testing.assert_array_equal(both[0, 0], np.tile(seqs[0] != 0, (4, 1)))


@pytest.fixture(scope="module")
def encoders():
    kw = dict(vocab_size=20, max_len=8, d_model=8, n_heads=2, n_layers=2, dropout=0.3, seed=0)
    causal = TransformerEncoder(TransformerConfig(causal=True, **kw))
    bidirectional = TransformerEncoder(TransformerConfig(causal=False, **kw))
    return causal, bidirectional


def test_encoder_shapes_and_attention_rows(encoders):
    enc = encoders[0]
    seqs = np.array([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    h, maps = enc(seqs, return_attention=True)
    assert tuple(h.shape) == (2, 6, 8)
    assert len(maps) == 2 and tuple(maps[0].shape) == (2, 2, 6, 6)
    a = ops.convert_to_numpy(maps[1])
    np.testing.assert_allclose(a[0, :, 2:, :].sum(-1), 1.0, rtol=1e-5)  # real queries
    assert np.all(a[0, :, 2:, :2] == 0)  # padding keys get no weight
    assert np.all(a[1][:, np.triu(np.ones((6, 6), bool), 1)] == 0)  # no weight on the future
    np.testing.assert_array_equal(ops.convert_to_numpy(h)[0, :2], 0.0)  # padding outputs


def test_causal_mask_really_is_causal(encoders):
    causal, bidirectional = encoders
    a = np.array([[0, 7, 3, 4, 5, 6]])
    b = a.copy()
    b[0, 4] = 9  # change a "future" item
    ha, hb = (ops.convert_to_numpy(causal(s, training=False)) for s in (a, b))
    np.testing.assert_allclose(ha[0, :4], hb[0, :4], atol=1e-6)  # earlier outputs unchanged
    assert np.abs(ha[0, 4:] - hb[0, 4:]).max() > 1e-4  # later ones do change
    ga, gb = (ops.convert_to_numpy(bidirectional(s, training=False)) for s in (a, b))
    assert np.abs(ga[0, :4] - gb[0, :4]).max() > 1e-4  # bidirectional: earlier ones change too


def test_left_padding_is_ignored(encoders):
    for enc in encoders:
        short = np.array([[3, 4, 5]])
        long = np.array([[0, 0, 0, 0, 3, 4, 5]])
        hs = ops.convert_to_numpy(enc(short, training=False))
        hl = ops.convert_to_numpy(enc(long, training=False))
        np.testing.assert_allclose(hs[0], hl[0, -3:], atol=1e-6)


# the four wirings: nanoGPT's pre-LN block or Kang & McAuley's, positions from either end
WIRINGS = [(b, p) for b in ("pre_ln", "sasrec") for p in ("from_end", "from_start")]


def _encoder(block, positions, causal=True, **extra):
    kw = dict(vocab_size=20, max_len=8, d_model=8, n_heads=2, n_layers=2, dropout=0.3, seed=0)
    return TransformerEncoder(
        TransformerConfig(causal=causal, block=block, positions=positions, **kw | extra)
    )


def test_config_rejects_unknown_block_and_positions_and_sizes_the_ffn():
    with pytest.raises(ValueError, match="block='post_ln' is unknown"):
        TransformerConfig(vocab_size=10, block="post_ln")
    with pytest.raises(ValueError, match="positions='middle' is unknown"):
        TransformerConfig(vocab_size=10, positions="middle")
    assert TransformerConfig(vocab_size=10, d_model=16).ff_width == 64  # GPT: 4 d
    assert TransformerConfig(vocab_size=10, d_model=16, block="sasrec").ff_width == 16  # d
    assert TransformerConfig(vocab_size=10, d_model=16, block="sasrec", d_ff=40).ff_width == 40


@pytest.mark.parametrize(("block", "positions"), WIRINGS)
def test_every_wiring_is_causal_and_ignores_left_padding(block, positions):
    enc = _encoder(block, positions)
    a = np.array([[0, 7, 3, 4, 5, 6]])
    b = a.copy()
    b[0, 4] = 9  # change a "future" item
    ha, hb = (ops.convert_to_numpy(enc(s, training=False)) for s in (a, b))
    np.testing.assert_allclose(ha[0, :4], hb[0, :4], atol=1e-6)
    assert np.abs(ha[0, 4:] - hb[0, 4:]).max() > 1e-4
    long = np.array([[0, 0, 0, 7, 3, 4, 5, 6]])
    hl = ops.convert_to_numpy(enc(long, training=False))
    np.testing.assert_allclose(ha[0, 1:], hl[0, -5:], atol=1e-6)
    np.testing.assert_array_equal(ha[0, 0], 0.0)  # padding output


def test_positions_from_start_make_a_prefix_state_independent_of_what_follows():
    # causal + from_start: item t's state depends on items 1..t only, so a prefix
    # read alone gives the same states; from_end shifts every position instead.
    seq = np.array([[7, 3, 4, 5, 6]])
    for block in ("pre_ln", "sasrec"):
        start, end = _encoder(block, "from_start"), _encoder(block, "from_end")
        for enc, same in ((start, True), (end, False)):
            full = ops.convert_to_numpy(enc(seq, training=False))[0, :2]
            prefix = ops.convert_to_numpy(enc(seq[:, :2], training=False))[0]
            assert np.allclose(full, prefix, atol=1e-6) == same, (block, same)


def test_attention_takes_queries_from_one_input_and_keys_values_from_the_other():
    config = TransformerConfig(vocab_size=10, d_model=8, n_heads=2, n_layers=1, dropout=0.0)
    attn = MultiHeadSelfAttention(config)
    rng = np.random.default_rng(0)
    x, q_in = rng.normal(size=(2, 1, 5, 8)).astype("float32")
    mask = attention_mask(np.array([[0, 1, 2, 3, 4]]), causal=True)
    attn(x, mask)  # build, then sharpen the tiny initial weights so queries matter
    attn.qkv.kernel.assign(rng.normal(size=(8, 24)).astype("float32"))
    attn.proj.kernel.assign(rng.normal(size=(8, 8)).astype("float32"))
    y = ops.convert_to_numpy(attn(x, mask, queries=q_in))
    kernel, bias = (ops.convert_to_numpy(w) for w in attn.qkv.weights)
    q = np.split(q_in[0] @ kernel + bias, 3, axis=-1)[0]  # queries from q_in ...
    _, k, v = np.split(x[0] @ kernel + bias, 3, axis=-1)  # ... keys and values from x
    heads = []
    for h in range(2):
        cols = slice(4 * h, 4 * h + 4)
        scores = q[:, cols] @ k[:, cols].T / 2.0
        allowed = ops.convert_to_numpy(mask)[0, 0]
        w = np.where(allowed, np.exp(scores - scores.max(-1, keepdims=True)), 0.0)
        w[allowed.any(-1)] /= w[allowed.any(-1)].sum(-1, keepdims=True)
        heads.append(w @ v[:, cols])
    proj_kernel, proj_bias = (ops.convert_to_numpy(w) for w in attn.proj.weights)
    expected = np.concatenate(heads, -1) @ proj_kernel + proj_bias
    np.testing.assert_allclose(y[0, 1:], expected[1:], atol=1e-5)  # real positions
    assert np.abs(y - ops.convert_to_numpy(attn(x, mask))).max() > 0.1  # not self-attention


def test_sasrec_block_normalises_queries_and_renormalises_the_stream():
    config = TransformerConfig(vocab_size=10, d_model=8, n_layers=1, dropout=0.0, block="sasrec")
    block = TransformerBlock(config)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 4, 8)).astype("float32") * 3.0
    mask = attention_mask(np.array([[1, 2, 3, 4]]), causal=True)
    y = ops.convert_to_numpy(block(x, mask))
    # by hand: q = LN1(x); s = LN2(q + Attn(q; x)); y = s + W2 relu(W1 s)
    q = block.ln_1(x)
    s = ops.convert_to_numpy(block.ln_2(q + block.attn(x, mask, queries=q)))
    w1, b1, w2, b2 = (ops.convert_to_numpy(w) for w in (*block.fc.weights, *block.fc_proj.weights))
    assert w1.shape == (8, 8)  # d_ff = d
    np.testing.assert_allclose(y, s + np.maximum(s @ w1 + b1, 0.0) @ w2 + b2, atol=1e-5)
    pre_ln = TransformerBlock(dataclasses.replace(config, block="pre_ln", d_ff=8))
    pre_ln(x, mask)
    assert pre_ln.count_params() == block.count_params()  # same layers, other wiring
    pre_ln.set_weights(block.get_weights())
    assert np.abs(ops.convert_to_numpy(pre_ln(x, mask)) - y).max() > 1e-2


def test_sasrec_passes_block_ffn_and_positions_and_trains(split):
    model = SASRec(n_layers=1, epochs=2, block="sasrec", positions="from_start", d_ff=24, **TINY)
    config = model._config(10)
    assert (config.block, config.positions, config.ff_width) == ("sasrec", "from_start", 24)
    assert "block='sasrec', d_ff=24, positions='from_start'" in repr(model)
    model.fit(split.train, split.n_users, split.n_items)
    assert np.isfinite(model.history_[-1]["loss"])
    with pytest.raises(ValueError, match="block"):
        SASRec(block="postln", **TINY)


def test_scaled_embeddings_equal_a_table_times_sqrt_d():
    kw = dict(vocab_size=20, max_len=8, d_model=16, n_layers=1, dropout=0.0, seed=0)
    scaled = TransformerEncoder(TransformerConfig(scale_embeddings=True, **kw))
    plain = TransformerEncoder(TransformerConfig(**kw))
    seqs = np.array([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    scaled(seqs), plain(seqs)  # build
    plain.set_weights(scaled.get_weights())
    h_plain = ops.convert_to_numpy(plain(seqs))
    h_scaled = ops.convert_to_numpy(scaled(seqs))
    assert np.abs(h_plain - h_scaled).max() > 1e-3  # the scale changes the outputs ...
    table = ops.convert_to_numpy(scaled.item_embedding.embeddings)
    plain.item_embedding.embeddings.assign(table * 4.0)  # ... exactly as E * sqrt(16) would
    np.testing.assert_allclose(ops.convert_to_numpy(plain(seqs)), h_scaled, atol=1e-5)


def test_bert4rec_passes_scaled_embeddings_to_its_encoder():
    model = BERT4Rec(scale_embeddings=True, **TINY)
    assert model._config(10).scale_embeddings and "scale_embeddings=True" in repr(model)
    assert not BERT4Rec(**TINY)._config(10).scale_embeddings


def test_sasrec_with_scaled_embeddings_trains(split):
    model = SASRec(n_layers=1, epochs=2, scale_embeddings=True, **TINY)
    assert "scale_embeddings=True" in repr(model)
    assert model._config(10).scale_embeddings
    model.fit(split.train, split.n_users, split.n_items)
    assert np.isfinite(model.history_[-1]["loss"])


def test_length_batches_cover_rows_once_within_limits():
    lengths = np.random.default_rng(0).integers(1, 30, size=500)
    batches = length_batches(lengths, 64, np.random.default_rng(1), max_positions=400)
    assert np.array_equal(np.sort(np.concatenate([b for b, _ in batches])), np.arange(500))
    assert all(len(b) <= 64 and len(b) * w <= 400 and lengths[b].max() == w for b, w in batches)
    assert sum(len(b) * w for b, w in batches) < 1.1 * lengths.sum()  # little padding left
    again = length_batches(lengths, 64, np.random.default_rng(1), max_positions=400)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(batches, again, strict=True))


def test_bucketed_widths_hold_every_row_with_little_padding():
    widths = bucket_widths(29)
    assert widths[:9].tolist() == [1, 2, 3, 4, 5, 6, 8, 10, 13] and widths[-1] == 29
    lengths = np.random.default_rng(0).integers(1, 30, size=500)
    batches = length_batches(lengths, 64, np.random.default_rng(1), widths=widths)
    assert all(w in widths and (lengths[b] <= w).all() for b, w in batches)
    assert sum(len(b) * w for b, w in batches) < 1.25 * lengths.sum()


# ----------------------------------------------------------------------------- SASRec


def test_sasrec_scores_and_learns_beyond_popularity(sasrec, split):
    s = sasrec.score(np.array([1, 2, 3]))
    assert s.shape == (3, split.n_items) and s.dtype == np.float32
    assert np.all(np.isneginf(s[:, 0])) and np.isfinite(s[:, 1:]).all()
    pop = Popularity().fit(split.train, split.n_users, split.n_items)
    assert _val_ndcg(sasrec, split) > 1.5 * _val_ndcg(pop, split)
    assert sasrec.history_[-1]["loss"] < sasrec.history_[0]["loss"]
    assert 1 <= sasrec.best_epoch_ <= 8 and "val_NDCG@10" in sasrec.history_[0]


def test_sasrec_recommend_excludes_seen(sasrec, split):
    users = np.arange(1, 21)
    recs = sasrec.recommend(users, k=5)
    assert recs.shape == (20, 5)
    seen = sasrec.seen_[users].toarray() > 0
    assert not seen[np.arange(20)[:, None], recs].any()
    assert (recs > 0).all()


def test_score_matches_score_histories_and_padding_width(sasrec):
    users = np.array([4, 5, 6])
    hist = sasrec.sequences_[users]
    np.testing.assert_allclose(sasrec.score(users), sasrec.score_histories(hist), rtol=1e-5)
    longer = np.concatenate([np.ones((3, 20), hist.dtype), hist], axis=1)  # only max_len read
    np.testing.assert_allclose(sasrec.score_histories(longer), sasrec.score(users), rtol=1e-5)
    short = hist[:, -5:]
    padded = np.concatenate([np.zeros((3, 7), hist.dtype), short], axis=1)
    np.testing.assert_allclose(
        sasrec.score_histories(short), sasrec.score_histories(padded), rtol=1e-5, atol=1e-6
    )


def test_scores_do_not_depend_on_the_order_or_batching_of_histories(sasrec):
    hist = sasrec.sequences_[:40].copy()
    hist[3] = 0  # an empty history too
    assert len({int((row != 0).sum()) for row in hist}) > 3  # lengths differ
    together = sasrec.score_histories(hist)
    perm = np.random.default_rng(0).permutation(len(hist))
    np.testing.assert_allclose(sasrec.score_histories(hist[perm], batch_size=7), together[perm],
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    one_by_one = np.concatenate([sasrec.score_histories(hist[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, together[:5], rtol=1e-5, atol=1e-6)


def test_scorer_uses_the_given_histories(sasrec, split):
    train_val = pd.concat([split.train, split.validation])
    score = sasrec.scorer(train_val)
    users = np.array([1, 2])
    expected = sasrec.score_histories(sasrec.build_histories(train_val)[users])
    np.testing.assert_array_equal(score(users), expected)
    assert not np.array_equal(score(users), sasrec.score(users))  # the validation item counts


def test_attention_weights_over_a_history(sasrec):
    hist = sasrec.sequences_[[7, 8]]
    maps = sasrec.attention_weights(hist)
    assert len(maps) == 1 and maps[0].shape == (2, 1, sasrec.max_len, sasrec.max_len)
    last_row = maps[0][:, 0, -1, :]
    np.testing.assert_allclose(last_row.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(maps[0][0, 0], 1) == 0)


@pytest.mark.parametrize("loss", ["bce", "sampled"])
def test_sasrec_other_losses_train(split, loss):
    m = SASRec(n_layers=1, epochs=2, loss=loss, n_negatives=16, **TINY)
    m.fit(split.train, split.n_users, split.n_items)
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]
    assert np.isfinite(m.score(np.array([1, 2]))[:, 1:]).all()


def test_position_column_orders_like_timestamps(sasrec, split):
    by_position = split.train.drop(columns="timestamp").assign(
        position=split.train.groupby("user_idx")["timestamp"].rank(method="first").astype("int64")
    )
    np.testing.assert_array_equal(sasrec.build_histories(by_position), sasrec.sequences_)
    shuffled = split.train.sample(frac=1.0, random_state=0)  # row order does not matter
    np.testing.assert_array_equal(sasrec.build_histories(shuffled), sasrec.sequences_)


# ----------------------------------------------------------------------------- GRU4Rec, BERT4Rec


def test_gru4rec_learns_and_ignores_padding(split):
    m = GRU4Rec(epochs=6, **TINY).fit(split.train, split.n_users, split.n_items)
    assert m.score(np.array([1, 2])).shape == (2, split.n_items)
    pop = Popularity().fit(split.train, split.n_users, split.n_items)
    assert _val_ndcg(m, split) > _val_ndcg(pop, split)
    h = np.array([[0, 0, 0, 0, 3, 4, 5]])
    np.testing.assert_allclose(m.hidden_states(h)[0, -3:], m.hidden_states(h[:, -3:])[0], atol=1e-6)


def test_bert4rec_masks_and_scores(split):
    m = BERT4Rec(n_layers=1, epochs=4, **TINY).fit(split.train, split.n_users, split.n_items)
    assert m.mask_token_ == split.n_items
    s = m.score(np.array([1, 2, 3]))
    assert s.shape == (3, split.n_items) and np.isfinite(s[:, 1:]).all()  # [mask] not scored
    prepared = m._prepare_histories(m.sequences_[[1]])
    assert prepared.shape[1] == m.max_len and prepared[0, -1] == m.mask_token_
    inputs, targets = m._batch(m.sequences_[1:40], np.random.default_rng(0))
    masked = inputs == m.mask_token_
    assert masked.any(axis=1)[(m.sequences_[1:40] != 0).any(axis=1)].all()
    np.testing.assert_array_equal(targets[masked], m.sequences_[1:40][masked])
    assert (targets[~masked] == 0).all()
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]


# ----------------------------------------------------------------------------- errors


def test_cosine_schedule_decays_the_step_size_to_zero_over_the_planned_epochs(split):
    model = SASRec(n_layers=1, epochs=3, lr_schedule="cosine", **TINY)
    assert "lr_schedule='cosine'" in repr(model)
    model.fit(split.train, split.n_users, split.n_items)
    optimizer = model.network_.optimizer
    steps = int(ops.convert_to_numpy(optimizer.iterations))
    assert steps > 3 and steps % 3 == 0  # the same number of batches in every epoch
    schedule = model._learning_rate(np.full(100, 5), None)
    lr = TINY["learning_rate"]
    assert float(ops.convert_to_numpy(schedule(0))) == pytest.approx(lr)
    half = float(ops.convert_to_numpy(schedule(schedule.decay_steps // 2)))
    assert half == pytest.approx(lr / 2, rel=0.05)  # half-way down the cosine
    assert float(ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.0, abs=1e-9)
    constant = SASRec(n_layers=1, epochs=1, **TINY).fit(split.train, split.n_users, split.n_items)
    assert float(ops.convert_to_numpy(constant.network_.optimizer.learning_rate)) == (
        pytest.approx(lr)
    )
    assert "lr_schedule" not in repr(constant)


def test_bad_hyper_parameters_raise():
    with pytest.raises(ValueError, match="loss"):
        SASRec(loss="hinge")
    with pytest.raises(ValueError, match="proposal"):
        SASRec(proposal="zipf")
    with pytest.raises(ValueError, match="lr_schedule"):
        GRU4Rec(lr_schedule="linear")
    with pytest.raises(ValueError, match="divisible"):
        SASRec(embedding_dim=10, n_heads=3)
    with pytest.raises(ValueError, match="epochs"):
        GRU4Rec(epochs=0)
    with pytest.raises(ValueError, match="dropout"):
        GRU4Rec(dropout=1.5)
    with pytest.raises(ValueError, match="mask_prob"):
        BERT4Rec(mask_prob=1.0)


def test_fit_needs_an_order_column(split):
    with pytest.raises(KeyError, match="timestamp"):
        SASRec(**TINY).fit(split.train.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="patience"):
        SASRec(**TINY).fit(split.train, patience=2)
    with pytest.raises(KeyError, match="item_idx"):
        SASRec(**TINY).fit(split.train.drop(columns="item_idx"))


def test_fit_argument_errors(split):
    with pytest.raises(TypeError, match="numeric"):
        SASRec(**TINY).fit(split.train.assign(timestamp=split.train["timestamp"].astype(str)))
    with pytest.raises(ValueError, match="patience"):
        SASRec(**TINY).fit(split.train, validation=split.validation, patience=0)
    with pytest.raises(ValueError, match="max_validation_users"):
        SASRec(**TINY).fit(split.train, validation=split.validation, max_validation_users=0)
    with pytest.raises(KeyError, match="item_idx"):
        SASRec(**TINY).fit(split.train, validation=split.validation.drop(columns="item_idx"))


def test_time_budget_stops_after_the_epoch_that_exceeds_it(split):
    model = SASRec(n_layers=1, epochs=50, **TINY).fit(split.train, max_seconds=1e-9)
    assert len(model.history_) == 1  # the first epoch always runs; no second one starts
    with pytest.raises(ValueError, match="max_seconds"):
        SASRec(**TINY).fit(split.train, max_seconds=0)
    with pytest.raises(ValueError, match="max_seconds"):
        SASRec(**TINY).fit(split.train, max_seconds=float("inf"))


def test_scoring_errors(sasrec, split):
    with pytest.raises(RuntimeError, match="not fitted"):
        SASRec().score_histories(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        sasrec.score_histories(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="2-D"):
        sasrec.score_histories(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="0.."):
        sasrec.score_histories(np.array([[1, split.n_items]]))
    with pytest.raises(ValueError, match="user indices"):
        sasrec.score(np.array([split.n_users]))
    with pytest.raises(ValueError, match="vocabulary"):
        sasrec.build_histories(split.train.assign(item_idx=split.n_items))


# ----------------------------------------------------------------------------- negatives


def test_unique_negatives_give_the_loss_of_all_draws():
    from recsys_book import losses
    from recsys_book.models.sequential import unique_negatives

    rng = np.random.default_rng(0)
    n_items, m = 40, 200
    q = np.r_[0.0, rng.pareto(1.0, n_items - 1) + 0.01]
    q /= q.sum()
    draws = rng.choice(n_items, size=m, p=q)
    logits = rng.normal(size=(6, n_items)).astype(np.float32)
    targets = rng.integers(1, n_items, size=6)
    targets[0] = draws[0]  # an accidental hit, drawn several times
    pos = logits[np.arange(6), targets]

    def loss(neg_ids, log_q):
        return float(
            losses.sampled_softmax_loss(
                pos, logits[:, neg_ids], log_q, pos_ids=targets, neg_ids=neg_ids
            )  # fmt: skip
        )

    full = loss(draws, np.log(m * q[draws]).astype(np.float32))
    negatives, log_q = unique_negatives(draws, q, slots=45)
    assert len(negatives) == 45 and len(np.unique(negatives[negatives > 0])) < m / 5
    assert (negatives[len(np.unique(draws)) :] == 0).all()  # padding columns
    np.testing.assert_allclose(loss(negatives, log_q), full, rtol=1e-5)
    assert abs(loss(draws[:100], np.log(m * q[draws[:100]]).astype(np.float32)) - full) > 1e-3
    wide, _ = unique_negatives(draws, q, slots=3)  # more distinct items than slots
    assert len(wide) == len(np.unique(draws))


def test_negative_slots_hold_the_distinct_draws():
    from recsys_book.models.sequential import negative_slots

    rng = np.random.default_rng(1)
    q = np.r_[0.0, 1.0 / np.arange(1, 2000) ** 1.1]
    q /= q.sum()
    slots = negative_slots(q, 1024)
    distinct = [len(np.unique(rng.choice(len(q), 1024, p=q))) for _ in range(200)]
    assert max(distinct) <= slots < 1024  # skewed draws repeat: fewer columns than draws
    assert slots - np.mean(distinct) < 8 * np.std(distinct) + 10
    uniform = np.r_[0.0, np.full(9, 1 / 9)]
    assert negative_slots(uniform, 1024) == 9  # never more than the items q can draw
    assert negative_slots(uniform, 3) == 3  # never more than the draws


def test_validation_shortcut_matches_the_evaluator(sasrec, split):
    def reference(validation, users=None):
        table = evaluate(sasrec, split.train, validation, n_items=split.n_items, k=10,
                         metrics=("HR", "NDCG"), users=users)  # fmt: skip
        return float(table["HR@10"].iloc[0]), float(table["NDCG@10"].iloc[0])

    fast = sasrec._validate(split.train, split.validation, None)
    assert fast[0] > 0.05  # the check below compares something
    np.testing.assert_allclose(fast, reference(split.validation), rtol=1e-12)
    users = np.unique(split.validation["user_idx"])[::3]
    np.testing.assert_allclose(
        sasrec._validate(split.train, split.validation, users),
        reference(split.validation, users), rtol=1e-12,
    )  # fmt: skip
    # a validation item the user met in training is excluded, so never a hit
    seen = split.validation.copy()
    first = split.train.groupby("user_idx")["item_idx"].first()
    seen["item_idx"] = seen["user_idx"].map(first).fillna(seen["item_idx"]).astype(int)
    assert sasrec._validate(split.train, seen, None) == (0.0, 0.0)
    np.testing.assert_allclose(sasrec._validate(split.train, seen, None), reference(seen))
    # several items per user: the evaluator itself
    both = pd.concat([split.validation, split.test])
    np.testing.assert_allclose(sasrec._validate(split.train, both, None), reference(both))


def test_sparse_targets_keep_the_nonzero_entries_in_fixed_columns():
    targets = np.array([[0, 5, 0], [7, 0, 9]])
    positions, items = sparse_targets(targets, slots=5)
    assert positions.tolist() == [1, 3, 5, 0, 0] and items.tolist() == [5, 7, 9, 0, 0]
    positions, items = sparse_targets(targets, slots=2)  # more entries than slots: all kept
    assert positions.tolist() == [1, 3, 5] and items.tolist() == [5, 7, 9]


@pytest.mark.parametrize("loss", ["softmax", "sampled"])
def test_bert4rec_scores_only_the_masked_positions_with_the_same_loss(split, loss):
    model = BERT4Rec(n_layers=1, epochs=1, loss=loss, n_negatives=32, **TINY)
    model.fit(split.train, split.n_users, split.n_items)
    x, t = model._batch(model.sequences_[1:41], np.random.default_rng(0))
    sparse = model._targets(t, np.random.default_rng(1))
    dense = SequentialRecommender._targets(model, t, np.random.default_rng(1))
    positions, items = sparse if loss == "softmax" else sparse[0]
    assert (items != 0).sum() == (t != 0).sum() and len(items) < t.size
    assert (t.reshape(-1)[positions] == items).all()
    hidden = model.network_(x)
    a = model.network_.compute_loss(y=sparse, y_pred=hidden)
    b = model.network_.compute_loss(y=dense, y_pred=hidden)
    assert float(ops.convert_to_numpy(a)) == pytest.approx(float(ops.convert_to_numpy(b)), rel=1e-5)


@pytest.mark.parametrize("loss", ["softmax", "sampled", "bce"])
def test_position_weighting_sums_the_targets_over_the_mean_per_batch(split, loss):
    kw = dict(n_layers=1, epochs=1, loss=loss, n_negatives=32, max_positions=200, **TINY)
    model = SASRec(position_weighted=True, **kw).fit(split.train, split.n_users, split.n_items)
    assert "position_weighted=True" in repr(model)
    rows, _ = model._training_sequences(ordered(split.train))
    rows = rows[(rows != 0).sum(axis=1) >= 2]  # the rows fit trains on
    lengths = (rows != 0).sum(axis=1)
    n_batches = len(length_batches(lengths, 64, np.random.default_rng(0), 200))
    scale = model.network_.position_scale
    assert scale == pytest.approx(n_batches / (lengths - 1).sum())
    net = model.network_
    for width, n_rows in ((3, 40), (12, 10)):  # a short batch and a long one
        x, t = model._batch(rows[lengths >= width][:n_rows, -width:], np.random.default_rng(0))
        y = model._targets(t, np.random.default_rng(1))
        hidden = net(x)
        net.position_scale = None
        mean = float(ops.convert_to_numpy(net.compute_loss(y=y, y_pred=hidden)))
        net.position_scale = scale
        weighted = float(ops.convert_to_numpy(net.compute_loss(y=y, y_pred=hidden)))
        assert weighted == pytest.approx(mean * (t != 0).sum() * scale, rel=1e-5)
    plain = SASRec(**kw).fit(split.train, split.n_users, split.n_items)
    assert plain.network_.position_scale is None


def test_bert4rec_expects_as_many_masked_targets_as_it_draws(split):
    model = BERT4Rec(n_layers=1, epochs=1, mask_prob=0.3, position_weighted=True, **TINY)
    model.fit(split.train, split.n_users, split.n_items)
    rows = model.sequences_[(model.sequences_ != 0).sum(axis=1) >= 2]
    rng = np.random.default_rng(0)
    drawn = np.mean([(model._batch(rows, rng)[1] != 0).sum() for _ in range(200)])
    expected = model._targets_per_row((rows != 0).sum(axis=1)).sum()
    assert drawn == pytest.approx(expected, rel=0.01)
    assert np.isfinite(model.history_[-1]["loss"])
