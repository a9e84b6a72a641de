"""Listening level for every clip: -16 LUFS integrated with true peaks at most -1 dBTP.

Loudness is measured by pyloudnorm (ITU-R BS.1770-4, the gated integrated loudness of EBU R128), the
peaks are held by pedalboard's lookahead BrickwallLimiter, and the true peak is measured on audio
oversampled 4x (BS.1770-4 annex 2) by scipy's polyphase resampler; whatever the limiter let through is
taken off the whole clip. -16 LUFS is where podcasts and most
players sit (music streaming plays at about -14): clips stay comparable with what a listener plays next.
"""

from __future__ import annotations

import functools
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
OVERSAMPLING = 4  # BS.1770-4 annex 2: true peak on 4x oversampled audio
INTERPOLATOR_TAPS = 49  # as annex 2's 48, made odd so the filter's delay is a whole number of samples
MAKEUP_PASSES = 2  # limiting lowers the loudness; raise the gain and limit again, this many times at most
LOUDNESS_TOLERANCE_LU = 0.5
# Below half a 16-bit step a sample is zero once written: a tail of such frames is digital silence.
SILENCE_FLOOR = 0.5 / 32767
TRIM_BLOCK_FRAMES = 4096
BLOCK_SECONDS = 0.4  # BS.1770's gating block: pyloudnorm needs at least one


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4, via pyloudnorm) of (frames, channels) float samples in
    [-1, 1]; -inf for silence. A clip shorter than one 400 ms gating block is measured padded with silence."""
    import pyloudnorm

    minimum = math.ceil(BLOCK_SECONDS * sample_rate) + 1
    if len(samples) < minimum:
        samples = np.concatenate([samples, np.zeros((minimum - len(samples), samples.shape[1]), samples.dtype)])
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(samples))


@functools.cache
def _interpolator() -> np.ndarray:
    """BS.1770-4 annex 2's 4x interpolator has 48 taps (12 a phase); this is one of that length, a
    Kaiser-windowed sinc from scipy (its resample_poly default has 81 taps and costs 1.7 times as much)."""
    from scipy.signal import firwin

    return firwin(INTERPOLATOR_TAPS, 1 / OVERSAMPLING, window=("kaiser", 5.0))


def true_peak_dbtp(samples: np.ndarray) -> float:
    """The true peak in dBTP of (frames, channels) float samples: the largest magnitude of the audio
    oversampled 4x (BS.1770-4 annex 2) by scipy's polyphase resampler; -inf for silence."""
    from scipy.signal import resample_poly

    if not len(samples):
        return -math.inf
    upsampled = resample_poly(samples, OVERSAMPLING, 1, axis=0, window=_interpolator())
    peak = max(float(upsampled.max()), -float(upsampled.min()))  # no |x| copy of four times the clip
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


def normalise(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, channels) float32 samples brought to TARGET_LUFS with true peaks at most
    TRUE_PEAK_CEILING_DBTP. Silence is returned as it is. The gain is one number for the whole clip; the
    limiter then holds down any peak that gain pushed over its ceiling (it leaves audio under it exactly as
    it is), and when that took loudness away the gain is raised and the clip limited again
    (MAKEUP_PASSES times at most). Whatever true peak is left over the ceiling is taken off the whole clip."""
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
    excess = true_peak_dbtp(levelled) - TRUE_PEAK_CEILING_DBTP
    if excess > 0:
        levelled = levelled * _db(-excess)
    return np.ascontiguousarray(levelled, dtype=np.float32)
