"""Listening level for every clip: -16 LUFS integrated with true peaks at most -1 dBTP.

Loudness is measured by pyloudnorm (ITU-R BS.1770-4, the gated integrated loudness of EBU R128), the
peaks are held by pedalboard's lookahead BrickwallLimiter, and the true peak is measured on audio
oversampled 4x (BS.1770-4 annex 2) by scipy's polyphase resampler; whatever the limiter let through is
taken off the whole clip. -16 LUFS is where podcasts and most
players sit (music streaming plays at about -14): clips stay comparable with what a listener plays next.
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
OVERSAMPLING = 4  # BS.1770-4 annex 2: true peak on 4x oversampled audio
MAKEUP_PASSES = 2  # limiting lowers the loudness; raise the gain and limit again, this many times at most
LOUDNESS_TOLERANCE_LU = 0.5
# Below half a 16-bit step a sample is zero once written: a tail of such frames is digital silence.
SILENCE_FLOOR = 0.5 / 32767
BLOCK_SECONDS = 0.4  # BS.1770's gating block: pyloudnorm needs at least one


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4, via pyloudnorm) of (frames, channels) float samples in
    [-1, 1]; -inf for silence. A clip shorter than one 400 ms gating block is measured padded with silence."""
    import pyloudnorm

    minimum = math.ceil(BLOCK_SECONDS * sample_rate) + 1
    if len(samples) < minimum:
        samples = np.concatenate([samples, np.zeros((minimum - len(samples), samples.shape[1]), samples.dtype)])
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(samples))


def true_peak_dbtp(samples: np.ndarray) -> float:
    """The true peak in dBTP of (frames, channels) float samples: the largest magnitude of the audio
    oversampled 4x (BS.1770-4 annex 2; scipy's polyphase FIR interpolator); -inf for silence."""
    from scipy.signal import resample_poly

    if not len(samples):
        return -math.inf
    peak = float(np.max(np.abs(resample_poly(samples, OVERSAMPLING, 1, axis=0))))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def trim_trailing_silence(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) samples without the frames after the last one that is not digital silence."""
    audible = np.flatnonzero(np.max(np.abs(samples), axis=1) >= SILENCE_FLOOR)
    return samples[: audible[-1] + 1 if len(audible) else 0]


def _db(gain_db: float) -> float:
    return 10 ** (gain_db / 20)


def normalise(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, channels) float32 samples brought to TARGET_LUFS with true peaks at most
    TRUE_PEAK_CEILING_DBTP. Silence is returned as it is. The gain is one number for the whole clip;
    only where that would push peaks over the ceiling does the limiter hold them down (and the gain is
    raised again to make up the loudness the limiting took, MAKEUP_PASSES times at most)."""
    from pedalboard import BrickwallLimiter

    loudness = integrated_loudness(samples, sample_rate)
    if not math.isfinite(loudness):
        return samples
    gain_db = TARGET_LUFS - loudness
    levelled = (samples * _db(gain_db)).astype(np.float32)
    if true_peak_dbtp(levelled) > LIMITER_CEILING_DB:
        limiter = BrickwallLimiter(
            ceiling_db=LIMITER_CEILING_DB, release_ms=LIMITER_RELEASE_MS, lookahead_ms=LIMITER_LOOKAHEAD_MS, true_peak=False
        )
        for _ in range(MAKEUP_PASSES):
            # pedalboard takes (channels, frames) and compensates the lookahead's delay.
            levelled = limiter(np.ascontiguousarray(levelled.T), sample_rate, reset=True).T
            shortfall = TARGET_LUFS - integrated_loudness(levelled, sample_rate)
            if shortfall <= LOUDNESS_TOLERANCE_LU:
                break
            gain_db += shortfall
            levelled = (samples * _db(gain_db)).astype(np.float32)
        else:
            levelled = limiter(np.ascontiguousarray(levelled.T), sample_rate, reset=True).T
        # The guarantee: whatever slipped past the limiter is taken off the whole clip.
        excess = true_peak_dbtp(levelled) - TRUE_PEAK_CEILING_DBTP
        if excess > 0:
            levelled = levelled * _db(-excess)
    return np.ascontiguousarray(levelled, dtype=np.float32)
