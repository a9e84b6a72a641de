"""Rendering with the real FluidSynth and soundfont, decoded by opus-tools (no mocks)."""

from __future__ import annotations

import asyncio
import io
import random
import subprocess
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.media.render import INSTALL_HINT, SOUNDFONT_SETTING, Renderer, RenderSetupError, find_soundfont, render_files, synthesize_only
from core.midi import midi_bytes, track_to_midi
from core.music import Note, generate_track

TICKS_PER_SECOND = 960  # 480 ticks a beat at 120 bpm
DISCORD_UPLOAD_LIMIT = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def renderer():
    with Renderer.open(backend="inprocess") as loaded:
        yield loaded


def notes_with_gap(channel: int = 0, pad_seconds: float = 0.0) -> mido.MidiFile:
    """A piano C4 from 0 to 1 s, silence from 1 to 2 s, an E4 from 2 to 3 s; optionally an
    end-of-track marker pad_seconds after the last note."""
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                mido.Message("program_change", channel=channel, program=0, time=0),
                mido.Message("note_on", channel=channel, note=60, velocity=100, time=0),
                mido.Message("note_off", channel=channel, note=60, velocity=0, time=TICKS_PER_SECOND),
                mido.Message("note_on", channel=channel, note=64, velocity=100, time=TICKS_PER_SECOND),
                mido.Message("note_off", channel=channel, note=64, velocity=0, time=TICKS_PER_SECOND),
                mido.MetaMessage("end_of_track", time=round(pad_seconds * TICKS_PER_SECOND)),
            ]
        )
    )
    return midi


def sixteen_second_track(notes: int = 32):
    """Like the benchmark clip: one beat a note at 120 bpm, a chord every fourth note, drums."""
    track = generate_track(60, "major", notes, 120, random.Random(notes))
    return track.with_notes(tuple(Note(n.degree, 1.0, 96, chord=i % 4 == 0) for i, n in enumerate(track.notes)))


def read_wav(data: bytes) -> tuple:
    with wave.open(io.BytesIO(data)) as wav:
        params = wav.getparams()
        frames = np.frombuffer(wav.readframes(params.nframes), dtype="<i2").reshape(-1, params.nchannels)
    return params, frames


def rms(frames: np.ndarray, rate: int, start: float, end: float) -> float:
    window = frames[round(start * rate) : round(end * rate)].astype(float)
    return float(np.sqrt(np.mean(window**2)))


def assert_notes_and_gap(frames: np.ndarray, rate: int) -> None:
    first, gap, second = rms(frames, rate, 0.1, 0.9), rms(frames, rate, 1.5, 1.95), rms(frames, rate, 2.1, 2.9)
    assert first > 100 and second > 100, (first, second)
    assert gap < min(first, second) / 50, (first, gap, second)


def test_wav_is_16_bit_stereo_with_sound_where_the_notes_are_and_silence_in_the_gap(renderer):
    params, frames = read_wav(renderer.render_wav(notes_with_gap()))
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 44100)
    assert 3.0 <= params.nframes / params.framerate <= 4.05  # the notes, then at most a second of release
    assert_notes_and_gap(frames, params.framerate)


def test_ogg_opus_decodes_with_opusdec_and_has_the_same_shape(renderer, tmp_path):
    ogg = renderer.render_ogg(notes_with_gap())
    assert ogg.startswith(b"OggS") and b"OpusHead" in ogg[:512]
    assert len(ogg) < DISCORD_UPLOAD_LIMIT
    decoded = tmp_path / "decoded.wav"
    subprocess.run(["opusdec", "--quiet", "-", str(decoded)], input=ogg, check=True, capture_output=True)
    params, frames = read_wav(decoded.read_bytes())
    assert params.nchannels == 2
    assert 3.0 <= params.nframes / params.framerate <= 4.1
    assert_notes_and_gap(frames, params.framerate)


def test_a_sixteen_second_clip_is_a_small_ogg(renderer):
    track = sixteen_second_track()
    assert track.seconds == 16
    ogg = renderer.render_ogg(track_to_midi(track))
    assert 50 * 1024 < len(ogg) < 400 * 1024  # ~190 KiB at 96 kbit/s


def test_a_generated_track_renders_for_its_length_plus_a_short_tail(renderer):
    track = generate_track(57, "dorian", 16, 100, random.Random(7))
    params, frames = read_wav(renderer.render(track_to_midi(track), "wav"))
    seconds = params.nframes / params.framerate
    assert track.seconds <= seconds <= track.seconds + 1.05
    assert rms(frames, params.framerate, 0, track.seconds) > 100


def test_silence_padded_after_the_last_note_is_not_rendered(renderer):
    params, _ = read_wav(renderer.render_wav(notes_with_gap(pad_seconds=120)))
    assert params.nframes / params.framerate <= 4.05


def test_renders_are_deterministic_and_independent_of_earlier_renders(renderer):
    midi = track_to_midi(sixteen_second_track(8))
    first = renderer.render_wav(midi)
    renderer.render_wav(track_to_midi(generate_track(48, "blues", 24, 200, random.Random(3))))
    assert renderer.render_wav(midi) == first
    assert renderer.render_wav(midi_bytes(midi)) == first  # bytes in, same audio out
    with Renderer.open(backend="inprocess") as fresh:
        assert fresh.render_wav(midi) == first


def test_synthesis_alone_gives_the_frames_of_a_wav_that_keeps_the_level_less_its_trailing_silence(renderer):
    midi = notes_with_gap()
    pcm = synthesize_only(renderer, midi)
    assert pcm.dtype == np.int16 and pcm.shape[1] == 2
    kept = read_wav(renderer.render_wav(midi, keep_level=True))[1]
    assert 0 < len(kept) < len(pcm)
    assert np.array_equal(pcm[: len(kept)], kept) and not pcm[len(kept) :].any()


def test_concurrent_renders_from_threads_are_serialised(renderer):
    midi = notes_with_gap()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: renderer.render_wav(midi), range(4)))
    assert all(result == results[0] for result in results)


async def test_render_async_keeps_the_event_loop_responsive(renderer):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    try:
        ogg = await renderer.render_async(track_to_midi(sixteen_second_track(64)), "ogg")
        ticks_during_render = ticks  # read before anything else can yield to the ticker
    finally:
        ticking.cancel()
    assert ogg.startswith(b"OggS")
    assert ticks_during_render > 0


def test_only_a_search_that_finds_no_soundfont_says_what_to_install(monkeypatch, tmp_path):
    """A soundfont named (an option, CROWDTUNE_SOUNDFONT) that is not there is a mistyped path: installing
    one would not help. Only when none was named and none is installed is the advice to install one."""
    with pytest.raises(RenderSetupError) as raised:
        Renderer.open(str(tmp_path / "missing.sf2"))
    assert SOUNDFONT_SETTING in str(raised.value) and "missing.sf2 (no such file)" in str(raised.value)
    assert "apt-get" not in str(raised.value) and isinstance(raised.value, RuntimeError)

    monkeypatch.setattr("bot.media.render.DEFAULT_SOUNDFONTS", (tmp_path / "none.sf2",))
    with pytest.raises(RenderSetupError, match=INSTALL_HINT):
        find_soundfont()


def test_soundfont_comes_from_the_caller_then_the_debian_paths_never_from_the_environment(monkeypatch, tmp_path):
    """CROWDTUNE_SOUNDFONT is read by the settings (bot.settings: the environment, then .env) and passed in; a
    second reading of the environment here would pass over a .env's value and say where it came from otherwise."""
    monkeypatch.delenv(SOUNDFONT_SETTING, raising=False)
    default = find_soundfont()
    assert default.is_file()
    chosen = tmp_path / "chosen.sf2"
    chosen.symlink_to(default)
    assert find_soundfont(str(chosen)) == chosen
    monkeypatch.setenv(SOUNDFONT_SETTING, str(tmp_path / "missing.sf2"))
    assert find_soundfont() == default


def test_a_file_that_is_not_a_soundfont_is_a_setup_error(tmp_path):
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont")
    with pytest.raises(RenderSetupError, match="fake.sf2"):
        Renderer.open(str(fake), backend="inprocess")


@pytest.mark.parametrize("fmt, magic", [("ogg", b"OggS"), ("wav", b"RIFF")])
def test_render_files_writes_one_output_per_input(renderer, tmp_path, fmt, magic):
    inputs = []
    for seed in range(3):
        path = tmp_path / f"piece-{seed}.mid"
        path.write_bytes(midi_bytes(track_to_midi(generate_track(60, "major", 8, 120, random.Random(seed)))))
        inputs.append(path)
    written = render_files(renderer, inputs, tmp_path / "audio", fmt)
    assert written == [tmp_path / "audio" / f"piece-{seed}.{fmt}" for seed in range(3)]
    assert all(path.read_bytes().startswith(magic) for path in written)


def test_render_files_rejects_an_invalid_midi_file_before_writing_anything(renderer, tmp_path):
    good, bad = tmp_path / "good.mid", tmp_path / "bad.mid"
    good.write_bytes(midi_bytes(notes_with_gap()))
    bad.write_bytes(b"MThd this is not really MIDI")
    out_dir = tmp_path / "audio"
    with pytest.raises(ValueError, match="bad.mid"):
        render_files(renderer, [good, bad], out_dir, "wav")
    assert not out_dir.exists() or not any(out_dir.iterdir())


def silent_midi(seconds: float) -> mido.MidiFile:
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(
        mido.MidiTrack(
            [mido.Message("program_change", program=0, time=0), mido.MetaMessage("end_of_track", time=round(seconds * TICKS_PER_SECOND))]
        )
    )
    return midi


def test_render_files_refuses_a_midi_file_without_notes_before_writing_anything(renderer, tmp_path):
    good, silent = tmp_path / "good.mid", tmp_path / "silent.mid"
    good.write_bytes(midi_bytes(notes_with_gap()))
    silent.write_bytes(midi_bytes(silent_midi(2.0)))
    with pytest.raises(ValueError, match="silent.mid has no notes"):
        render_files(renderer, [good, silent], tmp_path / "audio", "wav")
    assert not (tmp_path / "audio").exists()


def test_a_render_without_sound_is_a_short_silent_ogg_not_a_crash(tmp_path):
    # libopusenc aborted the process when drained before any audio: run where an abort fails one test only.
    script = (
        "import sys, mido; from bot.media.render import Renderer; sys.path.insert(0, 'tests/bot/media'); from test_render import silent_midi\n"
        "with Renderer.open(backend='inprocess') as renderer: sys.stdout.buffer.write(renderer.render_ogg(silent_midi(1.0)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=Path(__file__).resolve().parents[3], timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-500:]
    decoded = tmp_path / "decoded.wav"
    subprocess.run(["opusdec", "--quiet", "-", str(decoded)], input=result.stdout, check=True, capture_output=True)
    params, frames = read_wav(decoded.read_bytes())
    assert 0 < params.nframes / params.framerate <= 0.1 and np.abs(frames).max() < 50  # silence, give or take the codec


def test_unknown_format_is_a_value_error(renderer):
    with pytest.raises(ValueError, match="mp3"):
        renderer.render(notes_with_gap(), "mp3")


def test_the_fluidsynth_program_backend_renders_the_same_shape():
    with Renderer.open(backend="cli") as cli:
        assert cli.backend == "cli"
        params, frames = read_wav(cli.render_wav(notes_with_gap()))
        assert cli.render_ogg(notes_with_gap()).startswith(b"OggS")
    assert (params.nchannels, params.framerate) == (2, 44100)
    assert 3.0 <= params.nframes / params.framerate <= 4.05
    assert_notes_and_gap(frames, params.framerate)


def test_a_closed_renderer_refuses_to_render():
    renderer = Renderer.open()
    renderer.close()
    renderer.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        renderer.render_wav(notes_with_gap())


_CHANNEL_MESSAGES = st.one_of(
    st.builds(lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v), st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.builds(lambda c, n: mido.Message("note_off", channel=c, note=n), st.integers(0, 15), st.integers(0, 127)),
    st.builds(lambda c, k, v: mido.Message("control_change", channel=c, control=k, value=v), st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.builds(lambda c, p: mido.Message("program_change", channel=c, program=p), st.integers(0, 15), st.integers(0, 127)),
    st.builds(lambda c, p: mido.Message("pitchwheel", channel=c, pitch=p), st.integers(0, 15), st.integers(-8192, 8191)),
    st.builds(lambda t: mido.MetaMessage("set_tempo", tempo=t), st.integers(1, 16_777_215)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.lists(st.tuples(_CHANNEL_MESSAGES, st.sampled_from([0, 1, 120, 480, 20_000])), max_size=30),
    ticks_per_beat=st.sampled_from([1, 96, 480, 32767]),
    fmt=st.sampled_from(["ogg", "wav"]),
)
def test_any_midi_file_renders_or_is_refused_by_name(renderer, tmp_path, messages, ticks_per_beat, fmt):
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(mido.MidiTrack(message.copy(time=time) for message, time in messages))
    path = tmp_path / "any.mid"
    path.write_bytes(midi_bytes(midi))
    try:
        written = render_files(renderer, [path], tmp_path / "out", fmt)
    except ValueError as refusal:
        assert "any.mid" in str(refusal)
        return
    assert written[0].read_bytes()[:4] == (b"OggS" if fmt == "ogg" else b"RIFF")
