"""How a person's own words are quoted back in a message that refuses them."""

from __future__ import annotations

QUOTE_LIMIT = 40  # characters of a refused text quoted back: enough to recognise it, never a screenful


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` stripped, in single quotes; past `limit` characters cut short and its length said:
    'xxxx...' (5,000 characters)."""
    text = str(text).strip()
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[:limit]}...' ({len(text):,} characters)"
