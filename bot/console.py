"""The terminal's input and audio: lines read without blocking the event loop (so Ctrl-C ends a
session at once), each clip's files written whole, and clips played one at a time with the first player
program found."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import os
import select
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from core.actions import Action
from core.midi import midi_bytes, track_to_midi
from core.music import Track
from storage.files import write_whole

# Tried in this order; ffplay last, it opens a window without -nodisp.
PLAYERS = (("paplay",), ("aplay", "-q"), ("afplay",), ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"))


class LineReader:
    """Lines from standard input without blocking the event loop. A daemon thread reads (the file
    descriptor directly, so no lock on sys.stdin is held at exit): asyncio.run does not wait for it,
    so Ctrl-C at the prompt ends the session at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._ended = False
        self._peeked: list[str | None] = []  # a line `at_end` waited for, kept for the next readline
        threading.Thread(target=self._read, name="crowdtune-stdin", daemon=True).start()

    def _read(self) -> None:
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            fd = None  # an in-memory stream: it never blocks
        try:
            if fd is None:
                for line in iter(self._stream.readline, ""):
                    self._put(line)
            else:
                decoder, pending = codecs.getincrementaldecoder("utf-8")("replace"), ""
                while chunk := os.read(fd, 4096):
                    *lines, pending = (pending + decoder.decode(chunk)).split("\n")
                    for line in lines:
                        self._put(line + "\n")
                if pending:
                    self._put(pending)
        except OSError:
            pass  # standard input went away: the same as its end
        self._put(None)

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is asking any more
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)

    async def readline(self) -> str | None:
        """The next line, or None at the end of input."""
        if self._ended:
            return None
        line = self._peeked.pop() if self._peeked else await self._lines.get()
        self._ended = line is None
        return line

    async def ended_before_input(self) -> bool:
        """Whether the stream is not a terminal and has already ended before its first line (`< /dev/null`).
        Only input already there is looked at: a program driving a session over a pipe writes its first
        line after it has seen the first prompt, so waiting for one here would wait for ever."""
        if self._stream.isatty():
            return False
        try:
            ready = bool(select.select([self._stream.fileno()], [], [], 0)[0])
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            ready = True  # a stream without a file descriptor never blocks
        return ready and await self.at_end()

    async def at_end(self) -> bool:
        """Whether input ends before another line (waiting for one if none has come yet). Reads nothing
        away: the line waited for is the next `readline`'s."""
        if self._ended:
            return True
        if not self._peeked:
            self._peeked.append(await self._lines.get())
        return self._peeked[0] is None


class Player:
    """Plays a round's clips one at a time (A, then B) with the first player program on PATH. A new
    `play` stops what is playing, and `stop` ends it and reaps the process: one clip is heard at a
    time and none outlives the session. Players run in their own process group, so Ctrl-C at the
    terminal reaches crowdtune, which stops them."""

    def __init__(self, say, enabled: bool) -> None:
        self.say = say
        self.enabled = enabled  # only when a person is at a terminal
        self.command = next(((found, *rest) for name, *rest in PLAYERS if (found := shutil.which(name))), None)
        self._task: asyncio.Task | None = None
        self._missing_said = False

    @property
    def can_play(self) -> bool:
        """Whether clips play: a person is at a terminal and a player program was found."""
        return self.enabled and self.command is not None

    async def play(self, clips: list[Path], asked: bool = False) -> None:
        """Play `clips` in turn. Without a player program this says so once a session, and again each
        time the person `asked` for a replay (naming the files to open), so no request goes unanswered."""
        await self.stop()
        if not self.enabled or not clips:
            return
        if self.command is None:
            if asked:
                self.say(f"  no audio player to replay with: open {', '.join(str(clip) for clip in clips)} yourself")
            elif not self._missing_said:
                names = ", ".join(p[0] for p in PLAYERS)
                self.say(f"  (no audio player found ({names}): open the WAV files yourself)")
            self._missing_said = True
            return
        self._task = asyncio.create_task(self._play_all(clips))

    async def _play_all(self, clips: list[Path]) -> None:
        name = Path(self.command[0]).name
        for clip in clips:
            # The player's messages go to a file, not a pipe: asyncio (3.11) can wait forever for a pipe of a
            # process whose start was cancelled. The start is shielded, so a stop always ends it by _end.
            with tempfile.TemporaryFile() as errors:
                starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
                    *self.command, str(clip), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=errors, start_new_session=True,
                ))
                try:
                    process = await asyncio.shield(starting)
                    await process.wait()
                except OSError as exc:
                    self.say(f"  the player {name} could not start ({exc.strerror}); open {clip} yourself")
                    return
                except asyncio.CancelledError:
                    with contextlib.suppress(OSError):
                        await _end(await starting)
                    raise
                if process.returncode != 0:
                    errors.seek(0)
                    last = errors.read().decode(errors="replace").strip().splitlines()[-1:]
                    reason = f": {last[0]}" if last else ""
                    self.say(f"  the player {name} could not play {clip.name} (exit {process.returncode}{reason}); open it yourself")
                    return

    async def stop(self) -> None:
        """Stop what is playing and wait until its player has ended. A cancellation of the caller (Ctrl-C,
        SIGTERM) while it waits goes through to the caller: it is neither swallowed (the session went on to its
        prompt) nor passed on to the player's ending (which would be cut short, the player left playing); a
        later `stop` waits for that ending again."""
        task = self._task
        if task is None:
            return
        if not task.done() and not task.cancelling():  # cancelled once: its ending must not be interrupted
            task.cancel()
        await asyncio.wait([task])  # unlike `await task`, a cancellation of the caller stays the caller's
        if self._task is task:
            self._task = None
        if not task.cancelled():
            task.result()  # a bug in the player's task is raised, not lost


async def _end(process: asyncio.subprocess.Process) -> None:
    """Terminate a player's process group (a player may be a wrapper script with children) and wait for
    it (no zombie); kill the group if it ignores SIGTERM."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), 5)
            return
        except TimeoutError:
            continue


async def write_clip(
    renderer, stem: Path, track: Track, title: str, before: Track | None = None, edit: Action | None = None
) -> tuple[str, Path | None]:
    """Write a track's MIDI, piano roll (marking the `edit` that made it from `before`) and, with a `renderer`
    (None: no audio), WAV; returns (where it is, in words: "listen: X.wav", or without audio "MIDI file:
    X.mid"; the WAV or None)."""
    from bot.media.pianoroll import piano_roll_png

    stem.parent.mkdir(parents=True, exist_ok=True)
    midi = track_to_midi(track)
    # Whole or not at all (storage.files), so a crash never leaves a half-written round file behind.
    write_whole(stem.with_suffix(".mid"), midi_bytes(midi))
    write_whole(stem.with_suffix(".png"), await asyncio.to_thread(piano_roll_png, track, title, before, edit))
    if renderer is None:
        return f"MIDI file: {stem.with_suffix('.mid')}", None
    wav = stem.with_suffix(".wav")
    write_whole(wav, await renderer.render_async(midi, "wav"))
    return f"listen: {wav}", wav

