"""MIDI to audio at the edge of the app: FluidSynth in-process with the soundfont loaded once.

The synth is driven offline: MIDI events are sent between pulls of exactly as many frames as lie
between them, so a 16 s clip renders in a few tens of milliseconds. OGG Opus is encoded in-process by
libopusenc (the library behind `opusenc`) on a second thread while the synth produces the audio, by a
synth running at Opus's own 48 kHz so that nothing needs resampling.

Why this module is long: it holds the hand-written libopusenc binding beside the synthesiser; issue 15
replaces that binding with a maintained library, which takes it back under the layout's 400 lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import io
import itertools
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import mido
import numpy as np

from core.midi import midi_bytes

SOUNDFONT_ENV = "CROWDTUNE_SOUNDFONT"
DEFAULT_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
INSTALL_HINT = "apt-get install fluidsynth timgm6mb-soundfont opus-tools"

Backend = Literal["auto", "inprocess", "cli"]
Format = Literal["ogg", "wav"]
FORMATS = ("ogg", "wav")

CHANNELS = 2
MIDI_CHANNELS = 16
GAIN = 0.5  # FluidSynth's default 0.2 leaves TimGM6mb clips near -22 dBFS; dense chords still peak under -6 dBFS
POLYPHONY = 128  # 64 chords at 240 bpm peak at 70 voices (TimGM6mb), 122 (FluidR3); past it the quietest are stolen
BLOCK_FRAMES = 64  # FluidSynth synthesises in blocks of this many frames
PULL_FRAMES = 4096  # largest piece asked of the synth at once: bounds the buffers and the pieces handed to the encoder
RELEASE_TAIL_SECONDS = 1.0  # after the last event, so notes ring out; stops early at silence
FADE_OUT_SECONDS = 0.1  # when the tail is cut while notes still ring, fade instead of clicking
MAX_SECONDS = 600.0  # refuse runaway files rather than fill memory
OPUS_SAMPLE_RATE = 48000  # the rate Opus codes at: synthesising at it spares the encoder a resampling pass
OPUS_BITRATE_KBPS = 96  # ~190 KiB for a 16 s clip, far under Discord's 10 MiB upload limit
# The encoder is the slow stage. Complexity 0 is 2.5x faster than the default 10, and 120 ms packets
# (several 20 ms frames each, so the same sound) cost a sixth less than 60 ms ones.
OPUS_COMPLEXITY = 0
OPUS_FRAME_MS = 120
ENCODER_QUEUE_PIECES = 64  # pieces (at most PULL_FRAMES each) waiting for the encoder: bounds memory


class RenderSetupError(RuntimeError):
    """Rendering cannot work on this machine; the message says what to install or set."""


class _LibraryMissing(RenderSetupError):
    """libfluidsynth or its Python binding cannot be loaded: the one case "auto" falls back from."""


def find_soundfont(explicit: str | os.PathLike | None = None) -> Path:
    """The explicit path, else $CROWDTUNE_SOUNDFONT, else the first Debian soundfont that exists."""
    if explicit:
        return _existing_soundfont(Path(explicit), "the given soundfont")
    from_env = os.environ.get(SOUNDFONT_ENV)
    if from_env:
        return _existing_soundfont(Path(from_env), f"${SOUNDFONT_ENV}")
    for candidate in DEFAULT_SOUNDFONTS:
        if candidate.is_file():
            return candidate
    raise RenderSetupError(
        f"no SoundFont found (looked in {', '.join(map(str, DEFAULT_SOUNDFONTS))}): "
        f"run `{INSTALL_HINT}` or set {SOUNDFONT_ENV} to an .sf2 file"
    )


def _existing_soundfont(path: Path, source: str) -> Path:
    if not path.is_file():
        raise RenderSetupError(
            f"SoundFont {path} ({source}) does not exist: run `{INSTALL_HINT}` or set {SOUNDFONT_ENV} to an .sf2 file"
        )
    return path


def parse_midi(data: bytes, name: str = "MIDI data") -> mido.MidiFile:
    """Bytes to a MidiFile we can render; anything else is a ValueError naming `name`."""
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError, IndexError, mido.KeySignatureError) as problem:
        # mido's EOFError (a file cut short, or empty) carries no message of its own.
        reason = str(problem) or "it ends before its header or a track is complete"
        raise ValueError(f"{name} is not a valid MIDI file ({reason})") from None
    if not any(message.type == "note_on" and message.velocity > 0 for _, message in _timeline(midi, name)):
        raise ValueError(f"{name} has no notes to play, so there is nothing to render")
    return midi


def _timeline(midi: mido.MidiFile, name: str = "the MIDI") -> list[tuple[float, mido.Message]]:
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


def _as_midi(midi: mido.MidiFile | bytes) -> mido.MidiFile:
    return parse_midi(midi) if isinstance(midi, bytes | bytearray | memoryview) else midi


def _to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to 16-bit; no dither, so equal input gives equal bytes. Works in place
    on `samples` (a whole render: temporaries would triple the conversion time)."""
    np.multiply(samples, 32767.0, out=samples)
    np.rint(samples, out=samples)
    np.clip(samples, -32768, 32767, out=samples)
    return samples.astype("<i2")


def _fade_out(frames: np.ndarray) -> np.ndarray:
    ramp = np.linspace(1.0, 0.0, len(frames), dtype=np.float32)[:, None]
    return (frames * ramp).astype(frames.dtype)


class _InProcessSynth:
    """One pyfluidsynth synth with the soundfont loaded, driven offline. Not thread-safe."""

    name = "inprocess"

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        try:
            # pyfluidsynth prints where it found the library when CI is set; our stdout carries the
            # terminal session and the probes' figures, so that line is dropped.
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth
        except (ImportError, OSError) as problem:  # the binding raises ImportError when libfluidsynth is missing
            raise _LibraryMissing(
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
        if self._synth.sfload(str(soundfont)) == -1:
            self._synth.delete()
            raise RenderSetupError(f"FluidSynth could not load the SoundFont {soundfont}: is it an .sf2 file?")
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
        timeline = _timeline(midi)
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


class _CliSynth:
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
        timeline = _timeline(midi)
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


class Renderer:
    """Renders MIDI to WAV or OGG Opus with one loaded synth. Use `Renderer.open()`; close it when done.

    Calls are serialised (one FluidSynth synth is not safe for concurrent use); `render_async`
    runs them on the renderer's own worker thread so an event loop never blocks. OGG renders use a
    second synth at Opus's rate, loaded at the first of them.
    """

    def __init__(self, synth: _InProcessSynth | _CliSynth, soundfont: Path) -> None:
        self._synth = synth
        self._opus_synth: _InProcessSynth | _CliSynth | None = synth if synth.sample_rate == OPUS_SAMPLE_RATE else None
        self.soundfont = soundfont
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crowdtune-render")
        self._closed = False

    @classmethod
    def open(cls, soundfont: str | os.PathLike | None = None, backend: Backend = "auto", sample_rate: int = 44100) -> Renderer:
        """Find and load the soundfont. "auto" uses the in-process synth and falls back to the
        fluidsynth program when libfluidsynth or pyfluidsynth cannot be loaded."""
        path = find_soundfont(soundfont)
        if backend == "inprocess":
            return cls(_InProcessSynth(path, sample_rate), path)
        if backend == "cli":
            return cls(_CliSynth(path, sample_rate), path)
        if backend != "auto":
            raise ValueError(f"unknown backend {backend!r}: use 'auto', 'inprocess' or 'cli'")
        try:
            return cls(_InProcessSynth(path, sample_rate), path)
        except _LibraryMissing as in_process_problem:
            try:
                return cls(_CliSynth(path, sample_rate), path)
            except RenderSetupError:
                raise in_process_problem from None

    @property
    def backend(self) -> str:
        return self._synth.name

    @property
    def sample_rate(self) -> int:
        """The rate of WAV files and of `synthesize`; OGG Opus is always coded at 48 kHz."""
        return self._synth.sample_rate

    def synthesize(self, midi: mido.MidiFile | bytes) -> np.ndarray:
        """The rendered audio as a (frames, 2) int16 array, before any file encoding."""
        midi = _as_midi(midi)
        with self._synth_in_use() as synth:
            samples = np.concatenate([np.empty((0, CHANNELS), dtype=np.float32), *synth.sample_chunks(midi)])
        return _to_pcm16(samples)

    def render_wav(self, midi: mido.MidiFile | bytes) -> bytes:
        """16-bit stereo PCM WAV."""
        pcm = self.synthesize(midi)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(CHANNELS)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(pcm.tobytes())
        return buffer.getvalue()

    def render_ogg(self, midi: mido.MidiFile | bytes) -> bytes:
        """OGG Opus for chat, encoded while the synth produces the audio."""
        midi = _as_midi(midi)
        with self._synth_in_use(for_opus=True) as synth:
            return _encode_ogg_opus(synth.sample_chunks(midi), synth.sample_rate)

    def render(self, midi: mido.MidiFile | bytes, fmt: Format = "ogg") -> bytes:
        if fmt == "ogg":
            return self.render_ogg(midi)
        if fmt == "wav":
            return self.render_wav(midi)
        raise ValueError(f"unknown audio format {fmt!r}: use 'ogg' or 'wav'")

    async def render_async(self, midi: mido.MidiFile | bytes, fmt: Format = "ogg") -> bytes:
        """`render` on the renderer's worker thread; the event loop keeps running meanwhile."""
        if self._closed:
            raise RuntimeError("the renderer is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.render, midi, fmt)

    @contextlib.contextmanager
    def _synth_in_use(self, for_opus: bool = False) -> Iterator[_InProcessSynth | _CliSynth]:
        with self._lock:
            if self._closed:  # checked under the lock: close() may have freed the synth meanwhile
                raise RuntimeError("the renderer is closed")
            if not for_opus:
                yield self._synth
                return
            if self._opus_synth is None:
                _libopusenc()  # a missing encoder is a setup error before the synth is loaded for nothing
                self._opus_synth = type(self._synth)(self.soundfont, OPUS_SAMPLE_RATE)
            yield self._opus_synth

    def close(self) -> None:
        """Finish queued renders, then free the synths. Safe to call twice."""
        self._executor.shutdown(wait=True)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._synth.close()
                if self._opus_synth not in (None, self._synth):
                    self._opus_synth.close()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def synthesize_only(renderer: Renderer, midi: mido.MidiFile | bytes) -> np.ndarray:
    """Synthesis alone, without WAV or Opus encoding: what a benchmark compares the pipeline with."""
    return renderer.synthesize(midi)


# Request numbers from opus_defines.h and opusenc.h (stable ABI).
_OPUS_SET_BITRATE, _OPUS_SET_COMPLEXITY, _OPUS_SET_FRAME_DURATION = 4002, 4010, 4040
_OPUS_FRAME_DURATIONS = {20: 5004, 40: 5005, 60: 5006, 80: 5007, 100: 5008, 120: 5009}
_OPE_SET_SERIALNO = 14006


@functools.cache
def _libopusenc() -> ctypes.CDLL:
    """libopusenc, which every `opusenc` (opus-tools) is built on. ctypes releases the GIL during its
    calls, so encoding runs on another core while Python synthesises."""
    try:
        lib = ctypes.CDLL("libopusenc.so.0")
    except OSError:
        path = ctypes.util.find_library("opusenc")  # another system's file name
        if path is None:
            raise RenderSetupError(f"libopusenc is not installed (needed for OGG Opus): run `{INSTALL_HINT}`") from None
        lib = ctypes.CDLL(path)
    pointer, page = ctypes.c_void_p, ctypes.POINTER(ctypes.c_ubyte)
    lib.ope_comments_create.restype = pointer
    lib.ope_comments_destroy.argtypes = [pointer]
    lib.ope_encoder_create_pull.restype = pointer
    lib.ope_encoder_create_pull.argtypes = [pointer, ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.ope_encoder_write_float.argtypes = [pointer, pointer, ctypes.c_int]
    lib.ope_encoder_get_page.argtypes = [pointer, ctypes.POINTER(page), ctypes.POINTER(ctypes.c_int32), ctypes.c_int]
    lib.ope_encoder_drain.argtypes = [pointer]
    lib.ope_encoder_destroy.argtypes = [pointer]
    lib.ope_strerror.restype = ctypes.c_char_p
    lib.ope_strerror.argtypes = [ctypes.c_int]
    return lib


class _OggOpusEncoder:
    """Float samples in, Ogg Opus bytes out. The serial number is fixed, so equal audio gives equal bytes."""

    def __init__(self, sample_rate: int) -> None:
        self._lib = _libopusenc()
        self._comments = self._lib.ope_comments_create()
        error = ctypes.c_int()
        self._encoder = self._lib.ope_encoder_create_pull(self._comments, sample_rate, CHANNELS, 0, ctypes.byref(error))
        if not self._encoder:
            self._lib.ope_comments_destroy(self._comments)
            raise RuntimeError(f"libopusenc could not start: {self._lib.ope_strerror(error.value).decode()}")
        settings = (
            (_OPUS_SET_BITRATE, OPUS_BITRATE_KBPS * 1000),
            (_OPUS_SET_COMPLEXITY, OPUS_COMPLEXITY),
            (_OPUS_SET_FRAME_DURATION, _OPUS_FRAME_DURATIONS[OPUS_FRAME_MS]),
            (_OPE_SET_SERIALNO, 1),
        )
        try:
            for request, value in settings:
                self._check(self._lib.ope_encoder_ctl(ctypes.c_void_p(self._encoder), request, ctypes.c_int(value)))
        except RuntimeError:
            self.close()
            raise
        self._pages: list[bytes] = []
        self._page = ctypes.POINTER(ctypes.c_ubyte)()
        self._page_length = ctypes.c_int32()
        self._frames_written = 0
        self._sample_rate = sample_rate

    def write(self, samples: np.ndarray) -> None:
        """(frames, 2) samples in [-1, 1]."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)  # libopusenc reads interleaved float32
        self._check(self._lib.ope_encoder_write_float(self._encoder, samples.ctypes.data, len(samples)))
        self._frames_written += len(samples)
        self._take_pages()

    def finish(self) -> bytes:
        if not self._frames_written:
            # libopusenc aborts the whole process (a failed assert) when drained before any audio.
            self.write(np.zeros((self._sample_rate // 50, CHANNELS), dtype=np.float32))
        self._check(self._lib.ope_encoder_drain(self._encoder))
        self._take_pages(flush=True)
        return b"".join(self._pages)

    def close(self) -> None:
        if self._encoder:
            self._lib.ope_encoder_destroy(self._encoder)
            self._lib.ope_comments_destroy(self._comments)
            self._encoder = None

    def _take_pages(self, flush: bool = False) -> None:
        # A page's memory belongs to the encoder until the next call: copy it out.
        while (status := self._lib.ope_encoder_get_page(self._encoder, self._page, self._page_length, int(flush))) == 1:
            self._pages.append(ctypes.string_at(self._page, self._page_length.value))
        self._check(status)

    def _check(self, status: int) -> None:
        if status < 0:
            raise RuntimeError(f"libopusenc failed: {self._lib.ope_strerror(status).decode()}")


def _encode_ogg_opus(chunks: Iterator[np.ndarray], sample_rate: int) -> bytes:
    """Encode on a second thread while this one synthesises, so the two stages share the time."""
    encoder = _OggOpusEncoder(sample_rate)
    pieces: queue.Queue[np.ndarray | None] = queue.Queue(ENCODER_QUEUE_PIECES)
    failures: list[BaseException] = []

    def encode() -> None:
        # Runs until the end marker even after a failure, so the producer never waits on a full queue.
        while (piece := pieces.get()) is not None:
            if not failures:
                try:
                    encoder.write(piece)
                except BaseException as problem:  # noqa: BLE001 - handed to the calling thread
                    failures.append(problem)

    worker = threading.Thread(target=encode, name="crowdtune-opus", daemon=True)
    worker.start()
    try:
        try:
            for chunk in chunks:
                if failures:
                    break
                pieces.put(chunk)
        finally:
            pieces.put(None)
            worker.join()
        if failures:
            raise failures[0]
        return encoder.finish()
    finally:
        encoder.close()


def render_files(
    renderer: Renderer, paths: list[Path], out_dir: Path, fmt: str, on_written: Callable[[Path], None] | None = None
) -> list[Path]:
    """Render each MIDI file to out_dir/<stem>.<fmt> with the one renderer, calling `on_written` after
    each (a progress bar). Every input is read and checked first, so a bad file raises ValueError naming
    it before anything is written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}: use 'ogg' or 'wav'")
    midis = [parse_midi(Path(path).read_bytes(), str(path)) for path in paths]
    targets = [Path(out_dir) / f"{Path(path).stem}.{fmt}" for path in paths]
    clashes = sorted({str(t) for t in targets if targets.count(t) > 1})
    if clashes:
        raise ValueError(f"several inputs would be written to the same file: {', '.join(clashes)}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for target, midi in zip(targets, midis):
        target.write_bytes(renderer.render(midi, fmt))
        if on_written is not None:
            on_written(target)
    return targets
