"""The bot's log: discord.py's set-up, plain where no terminal reads it, one line per reconnect attempt."""

from __future__ import annotations

import logging
import sys

import discord

PLAIN = logging.Formatter("[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{")


# How discord.py begins the message of each attempt to connect again (discord/client.py, discord/shard.py):
# a reconnect, and a shard's first connection tried again.
RETRIES = ("Attempting a reconnect", "Failed to connect for shard_id")


class OneLineReconnects(logging.Filter):
    """discord.py logs every attempt to connect again (RETRIES) with the whole traceback of what failed, as an
    error: while Discord is unreachable, a traceback every few seconds. Retrying is the library doing its job,
    and the reason fits one line: a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith(RETRIES):
            problem = record.exc_info[1]
            record.msg, record.args = f"{record.msg} (%s)", (*(record.args or ()), f"{type(problem).__name__}: {problem}".rstrip(": "))
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def setup_logging() -> None:
    """discord.py's log set-up (INFO to stderr), coloured only on a terminal: discord.py colours it in any
    Docker container, even into a file or a log collector."""
    discord.utils.setup_logging(level=logging.INFO, **({} if sys.stderr.isatty() else {"formatter": PLAIN}))
    for name in ("discord.client", "discord.shard"):
        logging.getLogger(name).addFilter(OneLineReconnects())
