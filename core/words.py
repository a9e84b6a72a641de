"""What people type: whole numbers as they are written, and their own words quoted back when refused."""

from __future__ import annotations

import re

# ASCII digits only: int() also reads the digits of other scripts ('５', '٣'), which nobody means as a count here.
WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")
QUOTE_LIMIT = 40  # characters of a refused text quoted back: enough to recognise it, never a screenful


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` stripped, in single quotes; past `limit` characters cut short and its length said:
    'xxxx...' (5,000 characters)."""
    text = str(text).strip()
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[:limit]}...' ({len(text):,} characters)"


def whole_number(text: str) -> int:
    """A whole number as people type it: ASCII digits, an optional sign, spaces around. ValueError otherwise."""
    if not WHOLE_NUMBER.fullmatch(text):
        raise ValueError(f"not a whole number: {quoted(text)}")
    return int(text)
