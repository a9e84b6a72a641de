"""How crowdtune stops on a signal. SIGINT (Ctrl-C) and SIGTERM (docker stop, kill) cancel the command's
task, so its cleanup runs as it would for any other end (a terminal round left to resume, a simulation's
session stopped, players reaped, the database closed), and the command ends as Interrupted or Terminated
(exit codes 130 and 143, README "Exit codes"). The running Discord bot replaces both handlers by its own
graceful close (bot.discord.app.run_bot)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from bot.errors import Interrupted, Terminated

ENDINGS = {signal.SIGINT: Interrupted, signal.SIGTERM: Terminated}
# Why a command stopped, in the words its closing line uses (`main` prints "interrupted" or "terminated").
WORDS = {signal.SIGINT: "interrupted (Ctrl-C or SIGINT)", signal.SIGTERM: "terminated (SIGTERM)"}


def why_stopped(problem: BaseException) -> str:
    """Why work ended early, in words, from what ended it: a signal (`signals_end_this_task` cancels the task
    with its WORDS), Ctrl-C outside an event loop, or a failure (its own message, such as a rater's)."""
    if isinstance(problem, KeyboardInterrupt):
        return WORDS[signal.SIGINT]
    if isinstance(problem, asyncio.CancelledError):
        return next((str(a) for a in problem.args if isinstance(a, str)), "cancelled")
    return str(problem) or type(problem).__name__


def heed_ctrl_c() -> None:
    """Let SIGINT raise KeyboardInterrupt, as Python does by default, even when crowdtune was started with it
    ignored: a shell without job control starts every background command so (`crowdtune simulate ... &` in a
    script), Python then keeps it ignored, and Ctrl-C or `kill -INT` did nothing. For the code outside an
    event loop; `signals_end_this_task` handles it inside one."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.asynccontextmanager
async def signals_end_this_task() -> AsyncIterator[None]:
    """SIGINT and SIGTERM cancel the task running this block; the block then ends with Interrupted or
    Terminated (the first signal's) instead of a cancellation. The handlers are the event loop's, so they run
    between callbacks (never inside one, as Python's own SIGINT handler does) and are installed whatever
    disposition the process inherited. A repeated signal changes nothing: the cleanup it would cut short
    keeps promises (no round left half-done, no player left playing) and ends by itself (each step is bounded).
    Without signal handlers (not the main thread) the signals keep their previous actions."""
    loop, task, received = asyncio.get_running_loop(), asyncio.current_task(), []

    def on_signal(number: signal.Signals) -> None:
        if not received:
            received.append(number)
            task.cancel(WORDS[number])  # the work's cleanup may say why it stopped (why_stopped)

    installed = []
    for number in ENDINGS:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(number, on_signal, number)
            installed.append(number)
    try:
        yield
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()  # the cancellation is accounted for: it becomes the signal's exception
        raise ENDINGS[received[0]]() from None
    finally:
        for number in installed:
            loop.remove_signal_handler(number)  # SIGINT back to KeyboardInterrupt, SIGTERM to its default
    if received:  # the work ended anyway (the signal came as it finished): still the signal's exit code
        task.uncancel()
        raise ENDINGS[received[0]]()
