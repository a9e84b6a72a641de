"""Listening level for every clip: -16 LUFS integrated with true peaks at most -1 dBTP.

Loudness and true peak are measured by libebur128 (through pyebur128), the reference implementation of EBU
R128: the gated integrated loudness of ITU-R BS.1770-4, and the true peak on audio oversampled 4x by a
polyphase interpolator (BS.1770-4 annex 2; 2x at 96 kHz and over). It replaced pyloudnorm and scipy, which
agree with it within 0.05 LU and 0.01 dB on our clips (the tests measure with them) but made the bot's
process 75 MiB larger by importing scipy, and the 4x oversampled copy of a whole clip another 70 MB at its
peak (`crowdtune bench footprint`). The peaks are held by pedalboard's lookahead BrickwallLimiter; whatever
true peak the limiter let through is taken off the whole clip. -16 LUFS is where podcasts and most players
sit (music streaming plays at about -14): clips stay comparable with what a listener plays next.
"""

from __future__ import annotations

import math

import numpy as np

TARGET_LUFS = -16.0
TRUE_PEAK_CEILING_DBTP = -1.0
# The limiter holds sample peaks; its ceiling sits under the true-peak ceiling for the inter-sample peaks
# and what lossy Opus coding adds. Its own 4x true-peak sidechain would cost 12 times as much (108 against
# 9 ms of CPU for a 16 s clip), and the true peak measured afterwards catches what slips through anyway.
LIMITER_CEILING_DB = -2.0
LIMITER_RELEASE_MS = 100.0
LIMITER_LOOKAHEAD_MS = 5.0
MAKEUP_PASSES = 2  # limiting lowers the loudness; raise the gain and limit again, this many times at most
LOUDNESS_TOLERANCE_LU = 0.5
# Below half a 16-bit step a sample is zero once written: a tail of such frames is digital silence.
SILENCE_FLOOR = 0.5 / 32767
TRIM_BLOCK_FRAMES = 4096
BLOCK_SECONDS = 0.4  # BS.1770's gating block: a clip shorter than one has no integrated loudness
MEASURE_FRAMES = 65536  # frames handed to libebur128 at once: bounds the float64 copy it reads


def _measured(samples: np.ndarray, sample_rate: int, mode: int):
    """A libebur128 state (pyebur128.R128State) that has measured (frames, channels) float samples in `mode`."""
    import pyebur128

    state = pyebur128.R128State(samples.shape[1], sample_rate, mode)
    for start in range(0, len(samples), MEASURE_FRAMES):
        block = np.ascontiguousarray(samples[start : start + MEASURE_FRAMES], dtype=np.float64)
        state.add_frames(block.ravel(), len(block))  # interleaved, frame by frame
    return state


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, gated, via libebur128) of (frames, channels) float
    samples in [-1, 1]; -inf for silence. A clip shorter than one 400 ms gating block is measured padded
    with silence."""
    import pyebur128

    minimum = math.ceil(BLOCK_SECONDS * sample_rate) + 1
    if len(samples) < minimum:
        samples = np.concatenate([samples, np.zeros((minimum - len(samples), samples.shape[1]), samples.dtype)])
    return float(pyebur128.get_loudness_global(_measured(samples, sample_rate, pyebur128.MeasurementMode.MODE_I)))


def true_peak_dbtp(samples: np.ndarray, sample_rate: int) -> float:
    """The true peak in dBTP of (frames, channels) float samples at `sample_rate` Hz: the largest magnitude
    of the audio oversampled 4x (BS.1770-4 annex 2; libebur128's interpolator); -inf for silence."""
    import pyebur128

    if not len(samples):
        return -math.inf
    state = _measured(samples, sample_rate, pyebur128.MeasurementMode.MODE_TRUE_PEAK)
    peak = max(pyebur128.get_true_peak(state, channel) for channel in range(samples.shape[1]))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def trim_trailing_silence(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) samples without the frames after the last one that is not digital silence.
    Looked for from the end, a block at a time: the tail is short, the clip may be long."""
    end = len(samples)
    while end > 0:
        start = max(0, end - TRIM_BLOCK_FRAMES)
        audible = np.flatnonzero((np.abs(samples[start:end]) >= SILENCE_FLOOR).any(axis=1))
        if len(audible):
            return samples[: start + audible[-1] + 1]
        end = start
    return samples[:0]


def _db(gain_db: float) -> float:
    return 10 ** (gain_db / 20)


def normalise(samples: np.ndarray, sample_rate: int, held_at_ceiling: bool = True) -> np.ndarray:
    """(frames, channels) float32 samples brought to TARGET_LUFS with true peaks at most
    TRUE_PEAK_CEILING_DBTP. Silence is returned as it is. The gain is one number for the whole clip; the
    limiter then holds down any peak that gain pushed over its ceiling (it leaves audio under it exactly as
    it is), and when that took loudness away the gain is raised and the clip limited again
    (MAKEUP_PASSES times at most). Whatever true peak is left over the ceiling is taken off the whole clip,
    unless `held_at_ceiling` is False: for a caller that measures the true peak of what it makes of the
    samples instead (bot.media.render.encode_under_ceiling, after Opus), which the measurement here would
    only cost twice."""
    from pedalboard import BrickwallLimiter

    loudness = integrated_loudness(samples, sample_rate)
    if not math.isfinite(loudness):
        return samples
    limiter = BrickwallLimiter(
        ceiling_db=LIMITER_CEILING_DB, release_ms=LIMITER_RELEASE_MS, lookahead_ms=LIMITER_LOOKAHEAD_MS, true_peak=False
    )

    def levelled_at(gain_db: float) -> tuple[np.ndarray, bool]:
        gained = np.ascontiguousarray((samples * _db(gain_db)).T, dtype=np.float32)  # pedalboard takes (channels, frames)
        limited = limiter(gained, sample_rate, reset=True)  # the lookahead's delay is compensated
        return limited.T, not np.array_equal(limited, gained)

    gain_db = TARGET_LUFS - loudness
    levelled, limited = levelled_at(gain_db)
    for _ in range(MAKEUP_PASSES):
        shortfall = TARGET_LUFS - integrated_loudness(levelled, sample_rate) if limited else 0.0
        if shortfall <= LOUDNESS_TOLERANCE_LU:
            break
        gain_db += shortfall
        levelled, limited = levelled_at(gain_db)
    excess = true_peak_dbtp(levelled, sample_rate) - TRUE_PEAK_CEILING_DBTP if held_at_ceiling else 0.0
    if excess > 0:
        levelled = levelled * _db(-excess)
    return np.ascontiguousarray(levelled, dtype=np.float32)
