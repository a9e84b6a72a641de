"""MIDI to audio at the edge of the app: FluidSynth in-process with the soundfont loaded once.

The synth (bot/media/synth.py) is driven offline: MIDI events are sent between pulls of exactly as many
frames as lie between them, so a 16 s clip renders in a few tens of milliseconds. Every clip is then brought to a
listening level (bot/media/loudness.py: -16 LUFS, true peaks at most -1 dBTP) unless the caller keeps the
synth's level, and its trailing digital silence is cut. OGG Opus is encoded in-process by PyAV
(FFmpeg's libopus), from a synth running at Opus's own 48 kHz so that nothing needs resampling.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import mido
import numpy as np

from bot.errors import why_unreadable
from bot.media.loudness import TRUE_PEAK_CEILING_DBTP, normalise, trim_trailing_silence, true_peak_dbtp
from bot.media.synth import (
    CHANNELS, INSTALL_HINT, CliSynth, InProcessSynth, LibraryMissing, RenderSetupError, SoundfontError, midi_timeline,
)
from storage.files import write_whole

SOUNDFONT_SETTING = "CROWDTUNE_SOUNDFONT"  # named in messages; bot.settings reads it
DEFAULT_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)

Backend = Literal["auto", "inprocess", "cli"]
Format = Literal["ogg", "wav"]
FORMATS = ("ogg", "wav")

OPUS_SAMPLE_RATE = 48000  # the rate Opus codes at: synthesising at it spares the encoder a resampling pass
OPUS_BITRATE_KBPS = 96  # ~180 KiB for a 16 s clip, far under Discord's 10 MiB upload limit
# The encoder is the slow stage. Complexity 0 is 3x faster than the default 10, and 120 ms packets
# (several 20 ms frames each, so the same sound) cost a sixth less than 60 ms ones.
OPUS_COMPLEXITY = 0
OPUS_FRAME_MS = 120
EMPTY_CLIP_MS = 20  # what a render without any sound becomes: one Opus frame of silence


def find_soundfont(configured: str | os.PathLike | None = None, named_by: str = SOUNDFONT_SETTING) -> Path:
    """The soundfont `configured` (a caller's: the CROWDTUNE_SOUNDFONT setting, from the environment or .env, or
    render's --soundfont, as bot.settings reads them), else the first Debian soundfont that exists; never read
    from the environment here, so a .env's value is not passed over. SoundfontError when the one named cannot
    be read, its advice naming what named it (`named_by`: the setting, or the option the user typed), or none was
    named and none is installed (only then is installing one the advice: a named one that is not there is a
    mistyped path)."""
    if configured:
        return _existing_soundfont(configured, named_by)
    for candidate in DEFAULT_SOUNDFONTS:
        if candidate.is_file():
            return candidate
    raise SoundfontError(
        f"no SoundFont found (looked in {', '.join(map(str, DEFAULT_SOUNDFONTS))}): "
        f"run `{INSTALL_HINT}` or set {SOUNDFONT_SETTING} to an .sf2 file"
    )


def _existing_soundfont(path: str | os.PathLike, named_by: str) -> Path:
    """`path` (as typed: data/ is a folder's name) once it can be read; SoundfontError (its own exit code,
    NO_SOUNDFONT) saying why not, as bot.errors.check_readable says it for other files, and that `named_by` must
    name one that can."""
    if (why := why_unreadable(path)) is not None:
        raise SoundfontError(f"cannot read the SoundFont {path} ({why}): {named_by} must name an .sf2 file that can be read")
    return Path(path)


def parse_midi(data: bytes, name: str = "MIDI data", need_notes: bool = True) -> mido.MidiFile:
    """Bytes to a MidiFile we can render; anything else is a ValueError naming `name`. Without
    `need_notes` a file without notes passes (a melody's import says why it is no use in its own words)."""
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError, IndexError, mido.KeySignatureError) as problem:
        raise ValueError(f"{name} is not a valid MIDI file ({_unreadable(data, problem)})") from None
    timeline = midi_timeline(midi, name)  # refuses timing that cannot be honoured, notes or not
    if need_notes and not any(message.type == "note_on" and message.velocity > 0 for _, message in timeline):
        raise ValueError(f"{name} has no notes to play, so there is nothing to render")
    return midi


def _unreadable(data: bytes, problem: Exception) -> str:
    """Why mido could not read `data`, in our words: its own (such as "MThd not found. Probably not a MIDI file", or a
    byte's range) are a library's, and its EOFError has none."""
    if isinstance(problem, EOFError):  # a file cut short, or empty
        return "it ends before its header or a track is complete"
    if not data.startswith(b"MThd"):
        return "it does not start with a MIDI header, so it is some other kind of file"
    return "some of its contents are not valid MIDI data"


def _as_midi(midi: mido.MidiFile | bytes) -> mido.MidiFile:
    return parse_midi(midi) if isinstance(midi, bytes | bytearray | memoryview) else midi


def _to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to 16-bit; no dither, so equal input gives equal bytes. Works in place
    on `samples` (a whole render: temporaries would triple the conversion time)."""
    np.multiply(samples, 32767.0, out=samples)
    np.rint(samples, out=samples)
    np.clip(samples, -32768, 32767, out=samples)
    return samples.astype("<i2")


class Renderer:
    """Renders MIDI to WAV or OGG Opus with one loaded synth. Use `Renderer.open()`; close it when done.

    Calls are serialised (one FluidSynth synth is not safe for concurrent use); `render_async`
    runs them on the renderer's own worker thread so an event loop never blocks. OGG renders use a
    second synth at Opus's rate, loaded at the first of them.
    """

    def __init__(self, synth: InProcessSynth | CliSynth, soundfont: Path) -> None:
        self._synth = synth
        self._opus_synth: InProcessSynth | CliSynth | None = synth if synth.sample_rate == OPUS_SAMPLE_RATE else None
        self.soundfont = soundfont
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crowdtune-render")
        self._closed = False

    @classmethod
    def open(
        cls, soundfont: str | os.PathLike | None = None, backend: Backend = "auto", sample_rate: int = 44100,
        named_by: str = SOUNDFONT_SETTING,
    ) -> Renderer:
        """Find and load the soundfont (`find_soundfont`: `named_by` is what named it, for its advice). "auto" uses
        the in-process synth and falls back to the fluidsynth program when libfluidsynth or pyfluidsynth cannot be
        loaded."""
        path = find_soundfont(soundfont, named_by)
        if backend == "inprocess":
            return cls(InProcessSynth(path, sample_rate), path)
        if backend == "cli":
            return cls(CliSynth(path, sample_rate), path)
        if backend != "auto":
            raise ValueError(f"unknown backend {backend!r}: use 'auto', 'inprocess' or 'cli'")
        try:
            return cls(InProcessSynth(path, sample_rate), path)
        except LibraryMissing as in_process_problem:
            try:
                return cls(CliSynth(path, sample_rate), path)
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

    def listening_samples(self, midi: mido.MidiFile | bytes, keep_level: bool = False, for_opus: bool = False) -> np.ndarray:
        """The clip as (frames, 2) float32 samples: brought to the listening level (bot/media/loudness.py) unless
        `keep_level`, and without trailing digital silence. `for_opus`: at Opus's 48 kHz, for render_ogg, which holds
        the true peak of the coded clip instead of these samples' (encode_under_ceiling)."""
        midi = _as_midi(midi)
        with self._synth_in_use(for_opus) as synth:
            samples = np.concatenate([np.empty((0, CHANNELS), dtype=np.float32), *synth.sample_chunks(midi)])
            rate = synth.sample_rate
        if not keep_level:
            # Opus's own peaks are held after coding (encode_under_ceiling), where they are made.
            samples = normalise(samples, rate, held_at_ceiling=not for_opus)
        return trim_trailing_silence(samples)

    def render_wav(self, midi: mido.MidiFile | bytes, keep_level: bool = False) -> bytes:
        """16-bit stereo PCM WAV at the listening level (or, with `keep_level`, the synth's)."""
        pcm = _to_pcm16(self.listening_samples(midi, keep_level))
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(CHANNELS)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(pcm.tobytes())
        return buffer.getvalue()

    def render_ogg(self, midi: mido.MidiFile | bytes, keep_level: bool = False) -> bytes:
        """OGG Opus for chat, at the listening level (or, with `keep_level`, the synth's)."""
        samples = self.listening_samples(midi, keep_level, for_opus=True)
        return _encode_ogg_opus(samples, OPUS_SAMPLE_RATE) if keep_level else encode_under_ceiling(samples, OPUS_SAMPLE_RATE)

    def render(self, midi: mido.MidiFile | bytes, fmt: Format = "ogg", keep_level: bool = False) -> bytes:
        if fmt == "ogg":
            return self.render_ogg(midi, keep_level)
        if fmt == "wav":
            return self.render_wav(midi, keep_level)
        raise ValueError(f"unknown audio format {fmt!r}: use 'ogg' or 'wav'")

    async def render_async(self, midi: mido.MidiFile | bytes, fmt: Format = "ogg", keep_level: bool = False) -> bytes:
        """`render` on the renderer's worker thread; the event loop keeps running meanwhile."""
        if self._closed:
            raise RuntimeError("the renderer is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.render, midi, fmt, keep_level)

    @contextlib.contextmanager
    def _synth_in_use(self, for_opus: bool = False) -> Iterator[InProcessSynth | CliSynth]:
        with self._lock:
            if self._closed:  # checked under the lock: close() may have freed the synth meanwhile
                raise RuntimeError("the renderer is closed")
            if not for_opus:
                yield self._synth
                return
            if self._opus_synth is None:
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


def _encode_ogg_opus(samples: np.ndarray, sample_rate: int) -> bytes:
    """(frames, 2) float32 samples in [-1, 1] to Ogg Opus bytes through PyAV (FFmpeg's libopus encoder and
    Ogg muxer). Equal audio gives equal bytes: the stream's serial number is fixed (bitexact)."""
    import av

    if not len(samples):
        # An empty stream is no playable file: a render without sound becomes a short silence instead.
        samples = np.zeros((sample_rate * EMPTY_CLIP_MS // 1000, CHANNELS), dtype=np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg", options={"fflags": "+bitexact", "serial_offset": "1"}) as container:
        stream = container.add_stream("libopus", rate=sample_rate, layout="stereo")
        stream.bit_rate = OPUS_BITRATE_KBPS * 1000
        stream.codec_context.options = {"compression_level": str(OPUS_COMPLEXITY), "frame_duration": str(OPUS_FRAME_MS)}
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="flt", layout="stereo")
        frame.sample_rate, frame.pts = sample_rate, 0
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return buffer.getvalue()


# Opus codes a waveform, not its samples: decoded, a clip's true peak can come out a few tenths of a dB above what
# went in (a simulated round measured -0.93 dBTP), past the limiter's headroom. What a listener's player decodes is
# measured, and a clip that crossed is coded again this far under the ceiling (libebur128 and other 4x meters
# differ by hundredths of a dB).
OPUS_PEAK_MARGIN_DB = 0.1
OPUS_PEAK_PASSES = 3  # codings at most: each scales the clip by the last one's excess, which Opus keeps nearly alike


def encode_under_ceiling(samples: np.ndarray, sample_rate: int) -> bytes:
    """`_encode_ogg_opus` of (frames, 2) float32 samples, whose decoded true peak is at most
    TRUE_PEAK_CEILING_DBTP - OPUS_PEAK_MARGIN_DB (EBU R128's -1 dBTP for lossy coding): the clip is decoded and
    measured, and coded again quieter by what it crossed by, OPUS_PEAK_PASSES times at most. The loudness drops
    by as much (a tenth of a dB or two, within R128's tolerance); a clip under the ceiling is coded once, and one
    still over it after the last coding is returned as that coding left it."""
    limit = TRUE_PEAK_CEILING_DBTP - OPUS_PEAK_MARGIN_DB
    data = _encode_ogg_opus(samples, sample_rate)
    for _ in range(OPUS_PEAK_PASSES - 1):
        over = true_peak_dbtp(decode_ogg_opus(data), sample_rate) - limit
        if not over > 0:
            break
        samples = (samples * 10 ** (-(over + OPUS_PEAK_MARGIN_DB) / 20)).astype(np.float32)
        data = _encode_ogg_opus(samples, sample_rate)
    return data


def decode_ogg_opus(data: bytes) -> np.ndarray:
    """Ogg Opus bytes decoded as a listener's player does (FFmpeg's Opus decoder, through PyAV): (frames, 2) float32."""
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.concatenate(frames, axis=1).T.astype(np.float32)  # FFmpeg gives planar float: (channels, frames)


def render_targets(paths: list[Path], out_dir: Path, fmt: str) -> list[Path]:
    """The audio file each MIDI file in `paths` is rendered to: out_dir/<stem>.<fmt>. ValueError for an
    unknown format, or when two inputs would be written to the same file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}: use 'ogg' or 'wav'")
    targets = [Path(out_dir) / f"{Path(path).stem}.{fmt}" for path in paths]
    clashes = sorted({str(t) for t in targets if targets.count(t) > 1})
    if clashes:
        raise ValueError(f"several inputs would be written to the same file: {', '.join(clashes)}")
    return targets


def render_files(
    renderer: Renderer,
    paths: list[Path],
    out_dir: Path,
    fmt: str,
    on_written: Callable[[Path], None] | None = None,
    keep_level: bool = False,
) -> list[Path]:
    """Render each MIDI file to out_dir/<stem>.<fmt> with the one renderer (at the listening level unless
    `keep_level`), calling `on_written` after each (a progress bar). Every input is read and checked
    first, so a bad file raises ValueError naming it before anything is written; then out_dir is made, its
    missing parents too (a typed path is checked by the caller: storage.open_store says why)."""
    targets = render_targets(paths, out_dir, fmt)
    midis = [parse_midi(Path(path).read_bytes(), str(path)) for path in paths]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for target, midi in zip(targets, midis):
        write_whole(target, renderer.render(midi, fmt, keep_level))
        if on_written is not None:
            on_written(target)
    return targets
