"""The FluidSynth synthesiser, driven offline: in-process through pyfluidsynth with the soundfont loaded
once, or the `fluidsynth` program where the library cannot be loaded. MIDI in, float samples out;
bot.media.render makes files of them."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import itertools
import logging
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import mido
import numpy as np

from core.midi import midi_bytes

INSTALL_HINT = "apt-get install fluidsynth libfluidsynth3 timgm6mb-soundfont libatomic1"  # what rendering needs (PyAV brings the Opus encoder)

CHANNELS = 2
MIDI_CHANNELS = 16
# FluidSynth's default 0.2 leaves TimGM6mb clips near -22 dBFS; the listening level is set afterwards
# (bot/media/loudness.py), so this only keeps --keep-level renders of ordinary tracks clear of clipping.
GAIN = 0.5
POLYPHONY = 128  # 64 chords at 240 bpm peak at 70 voices (TimGM6mb), 122 (FluidR3); past it the quietest are stolen
BLOCK_FRAMES = 64  # FluidSynth synthesises in blocks of this many frames
PULL_FRAMES = 4096  # largest piece asked of the synth at once: bounds the buffers and the pieces handed to the encoder
RELEASE_TAIL_SECONDS = 1.0  # after the last event, so notes ring out; stops early at silence
FADE_OUT_SECONDS = 0.1  # when the tail is cut while notes still ring, fade instead of clicking
MAX_SECONDS = 600.0  # refuse runaway files rather than fill memory


log = logging.getLogger("crowdtune.fluidsynth")

# FluidSynth's log levels (fluidsynth/log.h: FLUID_PANIC .. FLUID_DBG) and GLib's (GLogLevelFlags bits:
# ERROR, CRITICAL, WARNING, MESSAGE, INFO, DEBUG), as logging levels.
FLUID_LOG_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}
GLIB_LOG_LEVELS = {1 << 2: logging.CRITICAL, 1 << 3: logging.ERROR, 1 << 4: logging.WARNING, 1 << 5: logging.INFO, 1 << 6: logging.INFO, 1 << 7: logging.DEBUG}
_FLUID_LOG_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_GLIB_LOG_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_native_log = threading.local()  # .lines: a list while a soundfont loads on this thread
_routed: list[object] = []  # the installed callbacks: C keeps pointers to them for the life of the process
_routing = threading.Lock()


def _native_message(level: int, message: bytes | None) -> None:
    text = (message or b"").decode(errors="replace").strip()
    lines = getattr(_native_log, "lines", None)
    if lines is not None:
        lines.append((level, text))
    else:
        log.log(level, "%s", text)


def _route_native_logs(fluidsynth_module) -> None:
    """Send FluidSynth's messages, and GLib's (FluidSynth's DLS loader, libinstpatch, logs through it), to
    `log` instead of the process's stderr, once per process: a soundfont FluidSynth cannot load would
    otherwise print its library lines before crowdtune's one line saying so."""
    with _routing:
        if _routed:
            return
        fluid = _FLUID_LOG_FUNCTION(lambda level, message, data: _native_message(FLUID_LOG_LEVELS.get(level, logging.ERROR), message))
        set_fluid_log = fluidsynth_module.cfunc(
            "fluid_set_log_function", ctypes.c_void_p,
            ("level", ctypes.c_int, 1), ("fun", _FLUID_LOG_FUNCTION, 1), ("data", ctypes.c_void_p, 1),
        )  # fmt: skip
        for level in FLUID_LOG_LEVELS:
            set_fluid_log(level, fluid, None)
        _routed.append(fluid)
        glib_name = ctypes.util.find_library("glib-2.0")
        if glib_name:  # libfluidsynth links GLib, so it is loaded already; without it there is nothing to route
            def glib_message(domain: bytes | None, flags: int, message: bytes | None, data: object) -> None:
                level = next((lvl for bit, lvl in GLIB_LOG_LEVELS.items() if flags & bit), logging.WARNING)
                _native_message(level, message)

            glib = _GLIB_LOG_FUNCTION(glib_message)
            library = ctypes.CDLL(glib_name)
            library.g_log_set_default_handler.argtypes = [_GLIB_LOG_FUNCTION, ctypes.c_void_p]
            library.g_log_set_default_handler.restype = ctypes.c_void_p
            library.g_log_set_default_handler(glib, None)
            _routed.append(glib)


@contextlib.contextmanager
def _native_log_kept() -> Iterator[list[tuple[int, str]]]:
    """Hold back the native libraries' messages on this thread, as (logging level, text), for the caller
    to report."""
    _native_log.lines = []
    try:
        yield _native_log.lines
    finally:
        del _native_log.lines


class RenderSetupError(RuntimeError):
    """Rendering cannot work on this machine; the message says what to install or set."""


class SoundfontError(RenderSetupError):
    """The soundfont is missing or cannot be loaded."""


class LibraryMissing(RenderSetupError):
    """libfluidsynth or its Python binding cannot be loaded: the one case "auto" falls back from."""


def midi_timeline(midi: mido.MidiFile, name: str = "the MIDI") -> list[tuple[float, mido.Message]]:
    """Channel messages at absolute seconds (the tempo map applied); meta events, and with them
    any silence padded after the last note, are dropped."""
    if midi.type == 2:
        raise ValueError(f"{name} is a type 2 (asynchronous) MIDI file, which has no single timeline to render")
    # Timing that cannot be honoured is refused rather than rendered wrong (or divided by zero). The header's
    # division (SMF 1.0, "Header Chunks"): positive is ticks per quarter note; 0 means nothing; negative
    # (top bit set) is SMPTE frames per second, which mido would misread as ticks per beat.
    if midi.ticks_per_beat == 0:
        raise ValueError(f"{name} has a time division of 0 ticks per beat in its header, so its timing is undefined")
    if midi.ticks_per_beat < 0:
        raise ValueError(f"{name} counts time in SMPTE frames (time division {midi.ticks_per_beat}), which cannot be rendered; save it with ticks per beat")
    events, now = [], 0.0
    for message in midi:  # mido merges the tracks and gives delta times in seconds
        if message.type == "set_tempo" and message.tempo == 0:
            raise ValueError(f"{name} sets a tempo of 0 microseconds per beat, which would play every later note at once")
        now += message.time
        if not message.is_meta:
            events.append((now, message))
    if events and events[-1][0] > MAX_SECONDS:
        raise ValueError(f"{name} lasts {events[-1][0]:.0f} s; at most {MAX_SECONDS:.0f} s can be rendered")
    return events


def _fade_out(frames: np.ndarray) -> np.ndarray:
    ramp = np.linspace(1.0, 0.0, len(frames), dtype=np.float32)[:, None]
    return (frames * ramp).astype(frames.dtype)


class InProcessSynth:
    """One pyfluidsynth synth with the soundfont loaded, driven offline. Not thread-safe."""

    name = "inprocess"

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        try:
            # pyfluidsynth prints where it found the library when CI is set; our stdout carries the
            # terminal session and the probes' figures, so that line is dropped.
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth
        except (ImportError, OSError) as problem:  # the binding raises ImportError when libfluidsynth is missing
            raise LibraryMissing(
                f"cannot load FluidSynth in-process ({problem}): run `apt-get install libfluidsynth3` "
                "and `pip install pyfluidsynth`, or use the fluidsynth command-line backend"
            ) from None
        # Float output rather than pyfluidsynth's get_samples(): FluidSynth dithers its 16-bit output
        # with a position that runs on across renders, which would make equal renders differ.
        self._write_float = fluidsynth.cfunc(
            "fluid_synth_write_float", ctypes.c_int,
            ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
            ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
            ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1),
        )  # fmt: skip
        self.sample_rate = sample_rate
        # No audio driver is ever started. Reverb and chorus are off: they cost time and their free-running
        # modulation would make every render differ.
        self._synth = fluidsynth.Synth(
            gain=GAIN,
            samplerate=float(sample_rate),
            channels=MIDI_CHANNELS,
            **{
                "synth.reverb.active": 0,
                "synth.chorus.active": 0,
                "synth.polyphony": POLYPHONY,
                "synth.cpu-cores": 1,
                "synth.lock-memory": 0,
                # Not synth.dynamic-sample-loading: it would save memory with big soundfonts, but in
                # FluidSynth 2.3 it puts audible clicks into TimGM6mb's looped samples.
            },
        )
        _route_native_logs(fluidsynth)
        with _native_log_kept() as messages:
            loaded = self._synth.sfload(str(soundfont)) != -1
        if not loaded:
            self._synth.delete()
            for level, text in messages:
                log.debug("while loading %s: %s", soundfont, text)
            # FluidSynth's own first complaint says what is wrong ("SoundFont file size mismatch").
            why = next((text for level, text in messages if level >= logging.ERROR), "")
            raise SoundfontError(f"FluidSynth could not load the SoundFont {soundfont}{f' ({why})' if why else ''}: is it an .sf2 file?")
        for level, text in messages:
            log.log(level, "while loading %s: %s", soundfont, text)
        self._frames_pulled = 0
        self._handlers = {
            "note_on": lambda m: self._synth.noteon(m.channel, m.note, m.velocity),
            "note_off": lambda m: self._synth.noteoff(m.channel, m.note),
            "program_change": lambda m: self._synth.program_change(m.channel, m.program),
            "control_change": lambda m: self._synth.cc(m.channel, m.control, m.value),
            "pitchwheel": lambda m: self._synth.pitch_bend(m.channel, m.pitch),
        }

    def sample_chunks(self, midi: mido.MidiFile) -> Iterator[np.ndarray]:
        """The whole render as consecutive (frames, 2) float32 pieces in [-1, 1], produced as the synth goes."""
        timeline = midi_timeline(midi)
        self._reset()
        position = 0
        for seconds, message in timeline:
            event_frame = round(seconds * self.sample_rate)
            while position < event_frame:
                piece = min(PULL_FRAMES, event_frame - position)
                yield self._pull(piece)
                position += piece
            handler = self._handlers.get(message.type)
            if handler is not None:
                handler(message)
        yield from self._release_tail()

    def _release_tail(self) -> Iterator[np.ndarray]:
        fade_frames = round(FADE_OUT_SECONDS * self.sample_rate)
        ring_frames = round(RELEASE_TAIL_SECONDS * self.sample_rate) - fade_frames
        rung = 0
        while rung < ring_frames and self._synth.get_active_voice_count():
            piece = min(PULL_FRAMES, ring_frames - rung)
            yield self._pull(piece)
            rung += piece
        if self._synth.get_active_voice_count():
            yield _fade_out(self._pull(fade_frames))

    def _pull(self, frames: int) -> np.ndarray:
        samples = np.empty((frames, CHANNELS), dtype=np.float32)
        address = samples.ctypes.data
        self._write_float(self._synth.synth, frames, address, 0, 2, address, 1, 2)
        self._frames_pulled += frames
        return samples

    def _reset(self) -> None:
        """The same synth state before every render, so renders are independent and deterministic."""
        # Finish the block a previous render left half-consumed, so events land on the same block offsets.
        self._pull(-self._frames_pulled % BLOCK_FRAMES)
        self._synth.system_reset()
        # FluidSynth ramps a new voice's gain from whatever the previous voice in that slot left (over the
        # first block). Sounding every slot once with the same note gives them all the same history.
        for channel, key in itertools.product(range(MIDI_CHANNELS), range(128)):
            if self._synth.get_active_voice_count() >= POLYPHONY:
                break
            self._synth.noteon(channel, key, 1)
        self._pull(BLOCK_FRAMES)
        self._synth.system_reset()
        while self._synth.get_active_voice_count():
            self._pull(BLOCK_FRAMES)

    def close(self) -> None:
        self._synth.delete()


class CliSynth:
    """The `fluidsynth` program, for machines where the library cannot be loaded in-process.
    It reloads the soundfont for every render, so it is several times slower."""

    name = "cli"

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        program = shutil.which("fluidsynth")
        if program is None:
            raise RenderSetupError(f"the fluidsynth program is not installed: run `{INSTALL_HINT}`")
        self.sample_rate = sample_rate
        # The same sound as in-process: gain, no reverb or chorus, polyphony; raw 16-bit PCM to stdout.
        self._command = [
            program, "-n", "-i", "-q", "-g", str(GAIN), "-R", "0", "-C", "0", "-r", str(sample_rate),
            "-o", f"synth.polyphony={POLYPHONY}",
            "-T", "raw", "-O", "s16", "-E", "little", "-F", "-", str(soundfont),
        ]  # fmt: skip

    def sample_chunks(self, midi: mido.MidiFile) -> Iterator[np.ndarray]:
        timeline = midi_timeline(midi)
        with tempfile.NamedTemporaryFile(suffix=".mid") as midi_file:  # fluidsynth reads MIDI only from files
            midi_file.write(midi_bytes(midi))
            midi_file.flush()
            result = subprocess.run([*self._command, midi_file.name], capture_output=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"fluidsynth failed: {result.stderr.decode(errors='replace').strip()}")
        # Dividing by 32767 lets _to_pcm16 give back exactly the program's samples.
        pcm = np.frombuffer(result.stdout, dtype="<i2").reshape(-1, CHANNELS).astype(np.float32) / np.float32(32767)
        # fluidsynth plays on until every voice has died away; keep the same tail as in-process rendering.
        end = round(((timeline[-1][0] if timeline else 0.0) + RELEASE_TAIL_SECONDS) * self.sample_rate)
        if len(pcm) <= end:
            yield pcm
            return
        fade_frames = round(FADE_OUT_SECONDS * self.sample_rate)
        yield pcm[: end - fade_frames]
        yield _fade_out(pcm[end - fade_frames : end])

    def close(self) -> None:
        pass
