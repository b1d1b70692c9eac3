"""String normalisation for search: FHIR string search ignores case and accents (R4 3.1.1.4.7)."""

from __future__ import annotations

import unicodedata

MAX_INDEXED = 255


def fold(value: str) -> str:
    """Case- and accent-folded form used for string search ("Ölçer" -> "olcer")."""
    if value.isascii():
        return value.lower()[:MAX_INDEXED]
    decomposed = unicodedata.normalize("NFKD", value)
    out = "".join(c for c in decomposed if not unicodedata.combining(c))
    return out.casefold()[:MAX_INDEXED]
