"""Relevance for :meth:`BotWireMemory.query`: plain word overlap, no embeddings.

A stored memory's score is the share of the query's words it contains (0.0–1.0). Words are
lower-cased runs of letters/digits; a short list of English stop words is ignored and a
trailing plural ``s`` is folded (``drinks`` matches ``drink``). Cheap, deterministic and
dependency-free — meant for the small memories one agent keeps, not for semantic search.
"""

from __future__ import annotations

import re

__all__ = ["overlap_score", "words"]

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    """
    a an and are as at be but by can could did do does for from had has have he her his how
    i if in into is it its just me my no not of on or our she so than that the their them
    then there these they this to too us was we were what when where which who why will
    with would you your
    """.split()  # noqa: SIM905 (a readable word list)
)


def _fold(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> set[str]:
    """The set of normalized, non-stop words in ``text``."""
    return {_fold(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def overlap_score(query_words: set[str], text: str) -> float:
    """Share of ``query_words`` that occur in ``text`` (0.0 when the query has no words)."""
    if not query_words:
        return 0.0
    return len(query_words & words(text)) / len(query_words)
