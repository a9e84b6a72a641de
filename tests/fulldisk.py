"""A disk filled for real, to its last block: what a full disk's tests write on their small tmpfs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fill_disk(filler: Path) -> Path:
    """`filler` made to take the rest of its disk, to the last block (removed to free that room again)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # ENOSPC: full
        while os.write(fd, b"\0" * 4096):
            pass
    os.close(fd)
    return filler
