"""Business concepts behind the features, and how to say a customer's values in words.

A package because the two halves are different jobs: ``definitions`` (the concepts and
which feature belongs to which) and ``phrases`` (one clause per feature, worded by
``clauses`` with the conventions of ``wording``). Every name is re-exported here, so
``from models.concepts import ...`` keeps working for every caller.
"""

from .definitions import (
    CONCEPTS,
    FEATURE_CONCEPT,
    OTHER,
    Concept,
    base_feature,
    concept_features,
    concept_of,
    missing_concepts,
    schema_features,
)
from .phrases import PHRASES, Phrase, concept_sentence, describe, join_phrases, phrase_of
from .wording import fmt_duration, fmt_money, fmt_number, fmt_percent, is_missing, plural

__all__ = [
    "CONCEPTS", "FEATURE_CONCEPT", "OTHER", "PHRASES", "Concept", "Phrase", "base_feature",
    "concept_features", "concept_of", "concept_sentence", "describe", "fmt_duration", "fmt_money",
    "fmt_number", "fmt_percent", "is_missing", "join_phrases", "missing_concepts", "phrase_of",
    "plural", "schema_features",
]
