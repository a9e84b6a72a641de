"""How crowdtune stops on a signal. SIGINT (Ctrl-C), SIGTERM (docker stop, kill) and SIGHUP (its terminal closed:
a window, a lost ssh connection) cancel the command's task, so its cleanup runs as it would for any other end (a terminal round left to resume, a simulation's
session stopped, players reaped, the database closed), and the command ends as Interrupted, Terminated or HungUp
(exit codes 130, 143 and 129, README "Exit codes"); "SIGINT and SIGTERM" below stands for all three. The running Discord bot replaces the handlers by its own
graceful close (`close_on_signals`), ends with exit code 0 and says so in its own line (`bot_stopped`). Work outside an event loop (a benchmark in a process of its own)
gets the same from `signals_raise`, and the command that started it passes a signal on (`run_passing_signals`).
Before all of these, while the command's modules are still imported, bot.entry ends it at once; then `signals_heard`
raises where the code is, for the whole run, and an event loop's handlers, removed, give way to it again."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import multiprocessing
import multiprocessing.pool
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from bot.errors import HungUp, Interrupted, Quit, Terminated

# SIGHUP is the terminal closing (its window, a lost ssh connection): an end like SIGTERM, with its own code. SIGQUIT
# is the terminal's other key to quit (Ctrl-\): a user pressing it means to stop, and Python's default ended the command at
# once, without its closing lines.
ENDINGS = {signal.SIGINT: Interrupted, signal.SIGTERM: Terminated, signal.SIGHUP: HungUp, signal.SIGQUIT: Quit}
# Why a command stopped, in the words its closing line uses (`main` prints each ending's own words).
WORDS = {signal.SIGINT: "interrupted (Ctrl-C or SIGINT)", signal.SIGTERM: "terminated (SIGTERM)",
         signal.SIGHUP: "hung up (SIGHUP: the terminal closed)", signal.SIGQUIT: "quit (Ctrl-\\ or SIGQUIT)"}


def _device(fd: int) -> tuple[int, int]:
    """Which file descriptor `fd` is open on: (device, inode). OSError if it is closed."""
    status = os.fstat(fd)
    return status.st_rdev, status.st_ino


# Standard output and error that are a terminal, recorded at the start: once it hangs up, isatty says no more.
_TERMINAL_OUTPUTS = {fd: _device(fd) for fd in (1, 2) if os.isatty(fd)}


def _hung_up(fd: int) -> bool:
    """Whether the terminal `fd` is open on has hung up (its other end closed): poll says POLLHUP or POLLERR there
    at once, where a terminal still open (`kill -HUP` sent by hand) says only that it can be written."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


def _heard(number: int) -> None:
    """What a handler does first with a signal it acts on. SIGHUP from a terminal that is gone: every write to it
    would fail (EIO), turning the end into an output error and cutting its cleanup short, so standard output and
    error that are that terminal are pointed at /dev/null (what is written there went nowhere anyway). A terminal
    still there (`kill -HUP`) is kept: the closing lines and "hung up" are written to it, as SIGTERM's are."""
    if number != signal.SIGHUP:
        return
    for fd, terminal in _TERMINAL_OUTPUTS.items():
        with contextlib.suppress(OSError):
            if _device(fd) == terminal and _hung_up(fd):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)


def say_stopped(words: str) -> None:
    """The one line on stderr that says a signal ended the command; on a terminal it starts a line of its own
    (the ^C or a prompt may end the line before it), elsewhere it is one line with no blank one before it."""
    lead = "\n" if sys.stderr.isatty() else ""
    with contextlib.suppress(OSError, ValueError):  # a terminal that has closed (SIGHUP): the exit code says it
        print(f"{lead}{words}", file=sys.stderr)


def close_on_signals(close: Callable[[], Awaitable[object]]) -> list[signal.Signals]:
    """For the running Discord bot, whose end on SIGINT or SIGTERM is its graceful close, not an error: each of
    them starts `close()` in the running loop (CrowdtuneBot.close, which ends the bot's connection at once, wherever
    discord.py waits, and which a repeat joins). Returns the list the
    signals received are added to, for the bot's last line (`bot_stopped`)."""
    loop, received = asyncio.get_running_loop(), []

    def on_signal(number: signal.Signals) -> None:
        _heard(number)
        received.append(number)
        asyncio.ensure_future(close())

    for number in ENDINGS:
        loop.add_signal_handler(number, on_signal, number)
    return received


def bot_stopped(number: signal.Signals, gone: BaseException | None = None) -> str:
    """The running bot's last line once the signal `number` has closed it (exit code 0, README "Exit codes"); `gone`:
    why its database was lost while it ran (DatabaseGone, which says what to do), when it was: then nothing resumes
    by itself."""
    if gone is not None:
        return f"{WORDS[number]}: the bot has stopped; {gone}"
    return f"{WORDS[number]}: the bot has stopped; its open rounds resume at its next start"


def why_stopped(problem: BaseException) -> str:
    """Why work ended early, in words, from what ended it: a signal (`signals_end_this_task` cancels the task
    with its WORDS), Ctrl-C outside an event loop, or a failure (its own message, such as a rater's)."""
    if isinstance(problem, KeyboardInterrupt):
        return WORDS[signal.SIGINT]
    if isinstance(problem, asyncio.CancelledError):
        return next((str(a) for a in problem.args if isinstance(a, str)), "cancelled")
    return str(problem) or type(problem).__name__


@contextlib.contextmanager
def signals_heard(process: bool = False) -> Iterator[None]:
    """For a command's whole run: the first SIGINT raises KeyboardInterrupt, as Python's own handler does, and
    the first SIGTERM Terminated, where the code is (the command then says which in one line, `main`), also when
    crowdtune was started with SIGINT ignored: a shell without job control starts every background command so
    (`crowdtune simulate ... &` in a script), and Python keeps it ignored. A repeated signal changes nothing: the
    ending it would cut short is under way. Inside an event loop `signals_end_this_task` takes over. At the end, a
    `process` that ends with the command (bot.entry) ignores them till it exits (`_ignored_to_the_end`): its exit
    code is decided. A caller that goes on (a test) gets the previous handlers back, unless a signal came meanwhile
    (later ones keep changing nothing)."""
    received: list[signal.Signals] = []

    def on_signal(number: int, frame) -> None:
        if not received:
            _heard(number)
            received.append(signal.Signals(number))
            raise KeyboardInterrupt if number == signal.SIGINT else ENDINGS[number]()

    previous = {number: signal.signal(number, on_signal) for number in ENDINGS}
    try:
        yield
    finally:
        if process:
            _ignored_to_the_end()
        elif not received and all(signal.getsignal(number) in (on_signal, _settled_signal) for number in ENDINGS):
            for number, handler in previous.items():
                signal.signal(number, handler)


def _ignored_to_the_end() -> None:
    """The command's outcome and exit code are decided (its work returned or ended on a signal, its lines said): stop
    signals are ignored by the kernel from here to the process's end. A Python handler would not do: the interpreter's
    shutdown puts SIG_DFL back in its place, and a signal then (numpy's and discord.py's modules torn down: a tenth of
    a second) killed a finished copy-db, export, upgrade or run, exit 130 or 143 with no line though its work was whole.
    Nothing is started after this, so no process inherits SIG_IGN."""
    for number in ENDINGS:
        signal.signal(number, signal.SIG_IGN)


def _settled_signal(number: int, frame) -> None:
    """A signal after the command's outcome was settled (`settle`): nothing is left for it to stop."""


def _ignore_signal(number: int, frame) -> None:
    """A signal after the one that is ending the command: its ending is under way (not SIG_IGN, which the
    processes started meanwhile would inherit)."""


# The work of the running `signals_end_this_task`'s own way to say that its outcome is decided (`settle`).
_SETTLE: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("settle", default=None)


def settle() -> None:
    """Say, from work under `signals_end_this_task` (its task, or a thread it started), that its outcome is decided,
    just BEFORE the step that makes it whole (copy-db's and upgrade's commit, export's zip renamed into place): a stop
    signal from now on changes nothing, to the end of the process (`signals_heard`), and the command ends as its work
    does. Interrupted, Terminated or HungUp if a signal came first (the work then stops short of that step). A stop
    that came as a copy committed otherwise ended it with 143 though the copy was whole, and a script's retry was
    refused, the target holding data. Outside such work it does nothing."""
    if (mark := _SETTLE.get()) is not None:
        mark()


@contextlib.asynccontextmanager
async def signals_end_this_task() -> AsyncIterator[None]:
    """SIGINT and SIGTERM cancel the task running this block; the block then ends with Interrupted or
    Terminated (the first signal's) instead of a cancellation. The handlers are the event loop's, so they run
    between callbacks (never inside one, as Python's own SIGINT handler does) and are installed whatever
    disposition the process inherited. A repeated signal changes nothing: the cleanup it would cut short
    keeps promises (no round left half-done, no player left playing) and ends by itself (each step is bounded).
    Without signal handlers (not the main thread) the signals keep their previous actions."""
    loop, task, received, settled = asyncio.get_running_loop(), asyncio.current_task(), [], []
    # A signal and the settling may come in two threads at once (export settles in its writing thread): one wins.
    deciding = threading.Lock()

    def on_signal(number: signal.Signals) -> None:
        with deciding:
            if received or settled:
                return
            _heard(number)
            received.append(number)
        task.cancel(WORDS[number])  # the work's cleanup may say why it stopped (why_stopped)

    def mark() -> None:
        with deciding:
            if received:  # the signal came first: the work stops before its commit, and nothing of it is left
                raise ENDINGS[received[0]]()
            settled.append(True)

    installed, before = [], {number: signal.getsignal(number) for number in ENDINGS}
    for number in ENDINGS:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(number, on_signal, number)
            installed.append(number)
    settling = _SETTLE.set(mark)
    try:
        yield
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()  # the cancellation is accounted for: it becomes the signal's exception
        raise ENDINGS[received[0]]() from None
    finally:
        _SETTLE.reset(settling)
        # The loop's removal leaves Python's defaults (a traceback, a silent end): the handlers from before come
        # back instead, held meanwhile, or, once a signal has come or the outcome is settled, one that lets
        # signals change nothing till the process ends.
        with signals_held():
            for number in installed:
                loop.remove_signal_handler(number)
                signal.signal(number, _ignore_signal if received else _settled_signal if settled else before[number] or signal.SIG_DFL)
    if received:  # the work ended anyway (the signal came as it finished): still the signal's exit code
        task.uncancel()
        raise ENDINGS[received[0]]()


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """For work outside an event loop, in the main thread: the first SIGINT or SIGTERM raises Interrupted or
    Terminated where the work is, so its `finally` blocks run (a private server stopped, its folder removed).
    A repeated signal changes nothing, as in `signals_end_this_task`: a terminal's Ctrl-C or timeout(1) reaches
    every process of the command, and the command passes it on too (`run_passing_signals`). Once a signal has
    come the handlers stay till the process ends, so a late repeat cannot kill it before its exit code."""
    received: list[signal.Signals] = []

    def on_signal(number: int, frame) -> None:
        if not received:
            _heard(number)
            received.append(signal.Signals(number))
            raise ENDINGS[number]()

    previous = {number: signal.signal(number, on_signal) for number in ENDINGS}
    try:
        yield
    finally:
        if not received:
            for number, handler in previous.items():
                signal.signal(number, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (blocked) while the block runs and come after it: for cleanup, or a server's
    start, that a signal must not cut short."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, ENDINGS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _fork_worker_signals() -> None:
    """In a worker of `fork_pool` (its initializer): SIGTERM ends it at once, as multiprocessing's Pool.terminate
    expects; SIGINT and SIGHUP, which a terminal sends every process of the command, it ignores (the command hears them
    and ends the pool). Then the signals held while it was forked come."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, ENDINGS)


def fork_pool(workers: int) -> multiprocessing.pool.Pool:
    """A "fork" multiprocessing Pool of `workers` processes that end on the SIGTERM its end (terminate) sends. Forked, a
    worker kept this command's handler, which raises Terminated once wherever the worker is (`signals_heard`): one that
    swallowed it, or died holding the task queue's lock, was then waited for forever (a bench hung so under load)."""
    with signals_held():  # none reaches a worker before its initializer has set its actions
        return multiprocessing.get_context("fork").Pool(workers, initializer=_fork_worker_signals)


@contextlib.contextmanager
def unheard_by_children(numbers: tuple[signal.Signals, ...] = tuple(ENDINGS)) -> Iterator[None]:
    """Processes started in the block ignore the signals `numbers` (SIGINT, SIGTERM) for good: Python keeps an
    ignored signal ignored, and a terminal's Ctrl-C reaches every process of the command, where a worker's own
    KeyboardInterrupt would be a traceback; whoever started them ends them. (A signal mask would not do:
    multiprocessing's spawn starts its processes with none.) This process's own signals wait meanwhile and come
    after, but for one that comes in the instant before it ignores them (setting SIG_IGN drops a pending one).
    Outside the main thread, which alone may set signal actions, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with signals_held():
        previous = {number: signal.signal(number, signal.SIG_IGN) for number in numbers}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def run_passing_signals(command: list[str], **options) -> int:
    """Run `command` (subprocess.Popen's `options`) to its end and return its exit code; a process that ends
    cleanly on SIGINT and SIGTERM (`signals_raise`). The first SIGINT or SIGTERM this process receives meanwhile
    is passed on to it (Ctrl-C reaches both, `kill` this one only) and, once it has ended, raises Interrupted or
    Terminated: the command then says so in one line and ends with 130 or 143, as any other does."""
    received: list[signal.Signals] = []
    child: list[subprocess.Popen] = []

    def on_signal(number: int, frame) -> None:
        if not received:
            _heard(number)
            received.append(signal.Signals(number))
            for process in child:
                process.send_signal(number)

    previous = {number: signal.signal(number, on_signal) for number in ENDINGS}
    try:
        child.append(subprocess.Popen(command, **options))
        if received:  # it came as the process started; a second one changes nothing for it
            child[0].send_signal(received[0])
        code = child[0].wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        raise ENDINGS[received[0]]()
    return code
