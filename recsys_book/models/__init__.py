"""Recommenders, one file per model family, all behind :class:`~recsys_book.models.base.Recommender`."""

from recsys_book.models.base import Recommender, check_interactions, interaction_matrix

__all__ = ["Recommender", "check_interactions", "interaction_matrix"]
