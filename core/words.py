"""What people type: whole numbers as they are written, one of fixed words in any case, and their own words quoted
back when refused."""

from __future__ import annotations

import re
from collections.abc import Sequence

# ASCII digits only: int() also reads the digits of other scripts ('５', '٣'), which nobody means as a count here.
WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")
QUOTE_LIMIT = 40  # characters of a refused text quoted back: enough to recognise it, never a screenful
# What a terminal acts on instead of showing, or what breaks a line: C0 controls (ESC, the Up arrow's first byte, among
# them), DEL, C1 controls (0x9b starts a sequence as ESC [ does), the line and paragraph separators, and the marks that
# reorder the text after them (bidirectional embeddings, overrides and isolates); and lone surrogates, which Python
# makes of bytes that are not UTF-8 (in argv) and which no output encodes.
_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSHOWN_IN_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: str, lines: bool = False) -> str:
    """`text` as it can be shown in a line: each character of _UNSHOWN written as Python's repr writes it ('\\x1b',
    '\\n', '\\u202e'); everything else, accents and every script, as it is. For every echo of what someone typed (a
    path named on the command line too). With `lines`, a line break is kept: for whole output, made of lines."""
    return (_UNSHOWN_IN_LINES if lines else _UNSHOWN).sub(lambda found: repr(found[0])[1:-1], text)


def file_text(text: str) -> str:
    """Text from a person's file (a MIDI track's name, instrument name, lyric or marker) as it can be shown anywhere (a
    terminal, a Discord message, an export): its bytes read as UTF-8, as most programs write them, when they are valid
    UTF-8 (mido reads a text event's bytes as latin-1, one character a byte, which garbles 'Viol\u00edn'), else as
    latin-1; spaces around dropped (after decoding: 0xa0 ends UTF-8's 'à'); then `visible`, so that no control
    character or escape sequence in a file reaches a terminal raw."""
    try:
        text = text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):  # already decoded, or latin-1 that is not UTF-8: as it is
        pass
    return visible(text.strip())


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` stripped, in single quotes, shown `visible`; past `limit` characters cut short and its length said:
    'xxxx...' (5,000 characters)."""
    text = str(text).strip()
    if len(text) <= limit:
        return f"'{visible(text)}'"
    return f"'{visible(text[:limit])}...' ({len(text):,} characters)"


def whole_number(text: str) -> int:
    """A whole number as people type it: ASCII digits, an optional sign, spaces around. ValueError otherwise."""
    if not WHOLE_NUMBER.fullmatch(text):
        raise ValueError(f"not a whole number: {quoted(text)}")
    return int(text)


def _folded(word: str) -> str:
    """A word as it is compared with a fixed choice: lower case, its spaces, hyphens and underscores alike."""
    return "_".join(re.split(r"[\s_-]+", word.strip().lower()))


def one_of(text: str, choices: Sequence[str], name: str) -> str:
    """The one of `choices` that `text` is, typed in any case, with spaces around and spaces or hyphens for
    underscores ('Harmonic minor' is harmonic_minor, 'AB' ab). ValueError naming `name` (--mode) otherwise, quoting
    `text`: "--mode must be one of: rating, ab, not 'vote'"."""
    wanted = _folded(text)
    found = next((choice for choice in choices if _folded(choice) == wanted), None)
    if found is None:
        raise ValueError(f"{name} must be one of: {', '.join(choices)}, not {quoted(text)}")
    return found
