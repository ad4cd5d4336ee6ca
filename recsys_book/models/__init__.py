"""Recommenders, one file per model family, all behind :class:`~recsys_book.models.base.Recommender`.

Every class is importable from here (``from recsys_book.models import EASE``); the
module that holds it is imported on first use, so that importing the package does
not import Keras until a Keras model is asked for.
"""

from __future__ import annotations

import importlib

from recsys_book.models.base import Recommender, check_interactions, interaction_matrix

_WHERE = {
    "Popularity": "popularity",
    "ItemKNN": "neighborhood",
    "UserKNN": "neighborhood",
    "EASE": "ease",
    "BiasedMF": "mf",
    "MultiTask": "multitask",
    "BPR": "bpr",
    "TwoTower": "two_tower",
    "ContentBased": "content",
    "WeightedHybrid": "hybrid",
    "FeatureMF": "hybrid",
    "GRU4Rec": "gru4rec",
    "SASRec": "sasrec",
    "BERT4Rec": "bert4rec",
    "TextContent": "text_items",
    "TextIDHybrid": "text_items",
}

__all__ = ["Recommender", "check_interactions", "interaction_matrix", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        module = importlib.import_module(f"recsys_book.models.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'recsys_book.models' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
