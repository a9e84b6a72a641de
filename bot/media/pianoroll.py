"""PNG pictures for chat: a track's piano roll and a learning curve.

Matplotlib's object-oriented API with the Agg canvas, never pyplot: no global figure registry,
so drawing is safe from worker threads and leaks no figures.
"""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, MultipleLocator

from core.instruments import instrument_name
from core.actions import Action, Kind
from core.music import DRUM_NAMES, PERCUSSION_STEPS, REST, VELOCITY_MAX, VELOCITY_MIN, Track, key_name, spelled_note_name

SIZE_INCHES, DPI = (8.0, 4.0), 100  # 800 x 400 px
BEATS_PER_BAR = 4
STEP_BEATS = 4 / PERCUSSION_STEPS  # the drum pattern is one 4/4 bar of sixteenths
BLACK_KEYS = {1, 3, 6, 8, 10}
MAX_PITCH_LABELS = 24
MAX_BAR_LABELS = 16
MELODY_COLOURS = colormaps["Blues"]
MELODY_SHADES = (0.45, 1.0)  # colormap range from the softest to the loudest note
CHORD_SHADE_SCALE = 0.4  # chord tones: the melody's shade, lighter
DRUM_COLOURS = {"kick": "#333333", "snare": "#d9822b", "hi-hat": "#8c8c8c"}
BAR_LINE = {"color": "#9a9a9a", "linewidth": 0.8, "zorder": 1}
REWARD_COLOUR, AVERAGE_COLOUR = "#9ab8e0", "#1f4e9c"
EDIT_COLOUR = "#e4572e"  # what the round's edit touched
# Unclipped: the first or last note's outline lies on the frame of the axes, and clipping cut off the half
# of its stroke outside (every outline lies within the axes' limits, so nothing strays past the frame).
EDIT_OUTLINE = {"zorder": 4, "edgecolor": EDIT_COLOUR, "clip_on": False}
EXTRA_COLOURS = ("#d9822b", "#4c9a2a", "#a23b72", "#555555")
MIN_AVERAGE_WINDOW, MAX_AVERAGE_WINDOW = 3, 20  # rounds; about a tenth of the run in between


def piano_roll_png(track: Track, title: str | None = None, before: Track | None = None, edit: Action | None = None) -> bytes:
    """Melody bars by pitch over beats (darker = louder), chord tones lighter, the drum hits in a
    strip below, a line at every bar; the title names the instrument and the pitches are spelled with
    flats in flat keys. With the `edit` that made `track` from `before`, the note (or drum step) it
    touched is outlined, and a removed note is drawn dashed where it was."""
    figure = _figure(margins={"left": 0.06, "right": 0.985, "top": 0.92, "bottom": 0.1})
    roll, drums = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (4, 1), "hspace": 0.08})
    # With an edit shown, the time the track before took too: a removed last note lies past the new end.
    beats = max(track.beats, before.beats if before is not None and edit is not None else 0.0, 1.0)

    starts = np.cumsum([0.0, *(n.duration for n in track.notes)])[:-1]
    durations = np.array([n.duration for n in track.notes])
    loudness = np.array([(n.velocity - VELOCITY_MIN) / (VELOCITY_MAX - VELOCITY_MIN) for n in track.notes])
    shades = MELODY_SHADES[0] + np.clip(loudness, 0, 1) * (MELODY_SHADES[1] - MELODY_SHADES[0])
    chord_bars = [
        (start, note.duration, pitch, shade * CHORD_SHADE_SCALE)
        for start, note, shade in zip(starts, track.notes, shades)
        if note.chord
        for pitch in track.chord_pitches(note.degree)
    ]
    removed = [before.pitches[edit.index]] if edit is not None and before is not None and edit.kind is Kind.REMOVE else []
    pitches = sorted({*track.pitches, *(bar[2] for bar in chord_bars), *removed}) or [track.base]
    low, high = pitches[0] - 1, pitches[-1] + 1

    black_keys = [p for p in range(low, high + 1) if p % 12 in BLACK_KEYS]
    _add_bars(roll, [0.0] * len(black_keys), [beats] * len(black_keys), black_keys, 1.0, "#f2f2f2", zorder=0)
    if chord_bars:
        left, width, pitch, shade = zip(*chord_bars)
        _add_bars(roll, left, width, pitch, 0.8, MELODY_COLOURS(np.array(shade)), zorder=2, edgecolor="white", linewidth=0.5)
    if track.notes:
        _add_bars(roll, starts, durations, track.pitches, 0.8, MELODY_COLOURS(shades), zorder=3, edgecolor="white", linewidth=0.5)
    labelled = pitches[:: math.ceil(len(pitches) / MAX_PITCH_LABELS)]
    roll.set_yticks(labelled, pitch_labels(track, labelled))
    roll.set_ylim(low - 0.5, high + 0.5)
    heading = title or f"{key_name(track.base, track.scale, octave=True)}, {track.tempo} bpm, {len(track.notes)} notes"
    roll.set_title(f"{heading}: {instrument_name(track.instrument)}", fontsize=10)

    drum_rows = [d for d in DRUM_NAMES if d != REST]
    # As core.midi plays it: the one-bar pattern looped for as long as the melody lasts.
    pattern = [track.percussion[step % PERCUSSION_STEPS] for step in range(math.ceil(track.beats / STEP_BEATS))]
    hits = [(step * STEP_BEATS, drum_rows.index(drum)) for step, drum in enumerate(pattern) if drum != REST]
    if hits:
        left, row = zip(*hits)
        colours = [DRUM_COLOURS[DRUM_NAMES[drum_rows[r]]] for r in row]
        _add_bars(drums, left, [STEP_BEATS * 0.8] * len(hits), row, 0.6, colours, zorder=3)
    if edit is not None and before is not None:
        _mark_edit(roll, drums, track, before, edit, starts)
    drums.set_yticks(range(len(drum_rows)), [DRUM_NAMES[d] for d in drum_rows])
    drums.set_ylim(-0.7, len(drum_rows) - 0.3)
    drums.set_xlabel("beat", fontsize=8)

    bar_lines = range(0, math.ceil(beats) + 1, BEATS_PER_BAR)
    for axes in (roll, drums):
        axes.vlines(bar_lines, 0, 1, transform=axes.get_xaxis_transform(), **BAR_LINE)
        axes.tick_params(labelsize=7, length=2)
        axes.set_xlim(0, beats)
    bars = math.ceil(beats / BEATS_PER_BAR)
    beats_per_label = 1 if bars <= 2 else BEATS_PER_BAR * math.ceil(bars / MAX_BAR_LABELS)
    drums.xaxis.set_major_locator(MultipleLocator(beats_per_label))
    return _png(figure)


def pitch_labels(track: Track, pitches: list[int]) -> list[str]:
    """Note names as the track's key spells them (core.music.spelled_note_name): E# in F# major, Bb in D minor."""
    return [spelled_note_name(p, track.base, track.scale) for p in pitches]


def _mark_edit(roll, drums, track: Track, before: Track, edit: Action, starts: np.ndarray) -> None:
    """Outline what the edit touched: the edited (or added) note, every repeat of an edited drum step,
    or, dashed, the note a removal took out, at the place it had."""
    if edit.kind is Kind.PERCUSSION:
        steps = range(edit.index, math.ceil(track.beats / STEP_BEATS), PERCUSSION_STEPS)
        rows = len(DRUM_NAMES) - 1
        _add_bars(drums, [s * STEP_BEATS for s in steps], [STEP_BEATS] * len(steps), [(rows - 1) / 2] * len(steps), rows,
                  "none", linewidth=1.5, **EDIT_OUTLINE)  # fmt: skip
        return
    if edit.kind is Kind.REMOVE:
        gone = before.notes[edit.index]
        start = float(sum(n.duration for n in before.notes[: edit.index]))
        _add_bars(roll, [start], [gone.duration], [before.pitches[edit.index]], 0.8, "none",
                  linewidth=1.5, linestyle="--", **EDIT_OUTLINE)  # fmt: skip
        roll.annotate("removed", (start + gone.duration / 2, before.pitches[edit.index] + 0.6), ha="center", va="bottom", fontsize=7, color=EDIT_COLOUR)
        return
    index = edit.index + 1 if edit.kind is Kind.ADD_NOTE else edit.index
    if index < len(track.notes):
        _add_bars(roll, [starts[index]], [track.notes[index].duration], [track.pitches[index]], 0.8, "none",
                  linewidth=2, **EDIT_OUTLINE)  # fmt: skip


def _add_bars(axes, left, width, middle, height: float, colours, **style) -> None:
    """Rectangles as one collection: far faster to draw than a patch per bar."""
    left, width, bottom = np.asarray(left, float), np.asarray(width, float), np.asarray(middle, float) - height / 2
    corners = np.stack(
        [np.stack([left, bottom], -1), np.stack([left + width, bottom], -1),
         np.stack([left + width, bottom + height], -1), np.stack([left, bottom + height], -1)], axis=1,
    )  # fmt: skip
    axes.add_collection(PolyCollection(corners, facecolors=colours, **style), autolim=False)


def learning_curve_png(
    rewards: list[float],
    title: str = "crowdtune: learning curve",
    extra: dict[str, list[float]] | None = None,
    scores: list[float | None] | None = None,
    spread: list[float | None] | None = None,
) -> bytes:
    """The community's track over rounds, on the 1-10 scale: `scores`, the score the engine believes the
    kept track has after each round (a line: it rises when an edit the crowd liked stays); `rewards`, the
    crowd's verdict on each round's proposal (a point each, NaN for a round without one); `spread`, the
    standard deviation of each round's ratings (a band around its point; none when no round has any spread). `extra` series (same rounds) are
    further lines, such as a benchmark's noise-free judge."""
    figure = _figure(margins={"left": 0.075, "right": 0.985, "top": 0.92, "bottom": 0.11})
    axes = figure.subplots()
    values = np.asarray(rewards, dtype=float)
    rounds = np.arange(1, len(values) + 1)
    if len(values):
        # No round with a spread (one voter a round: a personal agent, one simulated rater) has no band to draw, nor
        # a legend naming a crowd's spread.
        if spread is not None and any(spread):
            sd = np.asarray([np.nan if v is None else v for v in spread], dtype=float)
            axes.fill_between(rounds, values - sd, values + sd, color=REWARD_COLOUR, alpha=0.25, linewidth=0, label="crowd spread (± 1 sd)")
        axes.plot(rounds, values, "o", color=REWARD_COLOUR, markersize=3, label="each round's proposal")
        if scores is not None:
            kept = np.asarray([np.nan if v is None else v for v in scores], dtype=float)
            axes.step(rounds, kept, where="post", color=AVERAGE_COLOUR, linewidth=2, label="the kept track's score")
        else:
            window = min(MAX_AVERAGE_WINDOW, max(MIN_AVERAGE_WINDOW, len(values) // 10))
            axes.plot(rounds, _moving_average(values, window), color=AVERAGE_COLOUR, linewidth=2, label=f"moving average ({window})")
    else:
        axes.text(0.5, 0.5, "no rounds yet", transform=axes.transAxes, ha="center", va="center", color="#777777")
    for (name, series), colour in zip((extra or {}).items(), itertools.cycle(EXTRA_COLOURS)):
        axes.plot(np.arange(1, len(series) + 1), np.asarray(series, dtype=float), color=colour, linewidth=1, label=name)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("round", fontsize=8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("rating (1-10)", fontsize=8)
    axes.set_ylim(1, 10)  # the whole scale: the noise is small beside where the track stands
    axes.tick_params(labelsize=7, length=2)
    axes.grid(alpha=0.3, linewidth=0.5)
    if len(values) or extra:
        axes.legend(fontsize=7, loc="lower right", frameon=False)  # "best" searches the data: slow
    return _png(figure)


def ab_curve_png(
    chances: list[float | None],
    kept: list[bool],
    title: str = "crowdtune: A/B rounds",
    judged: dict[str, list[float]] | None = None,
) -> bytes:
    """A/B rounds over time, on the scale their votes measure: `chances`, each round's chosen edit's chance of
    beating the track before it (0-1, `core.engine.beat_chance`; None: nobody voted), a filled point when the
    edit was kept and a hollow one when the track before stayed, against 50% (as good as the track before).
    Not a score of the music: a fine track's edits hardly beat it. `judged` series (such as a simulated
    crowd's noise-free judge of the kept track, 1-10) get a panel of their own above, never this axis."""
    figure = _figure(margins={"left": 0.075, "right": 0.985, "top": 0.92, "bottom": 0.11, "hspace": 0.35})
    panels = figure.subplots(2 if judged else 1, 1, squeeze=False)[:, 0]
    axes = panels[-1]
    values = np.asarray([np.nan if c is None else 100 * c for c in chances], dtype=float)
    rounds = np.arange(1, len(values) + 1)
    held = np.asarray(kept[: len(values)], dtype=bool)
    if len(values):
        axes.axhline(50, color="#777777", linewidth=0.8, linestyle="--", label="as good as the track before")
        axes.plot(rounds[held], values[held], "o", color=AVERAGE_COLOUR, markersize=4, label="edit kept")
        axes.plot(rounds[~held], values[~held], "o", markerfacecolor="none", color=AVERAGE_COLOUR, markersize=4, label="track before stayed")
        axes.legend(fontsize=7, loc="lower center", ncol=3, frameon=False)
    else:
        axes.text(0.5, 0.5, "no rounds yet", transform=axes.transAxes, ha="center", va="center", color="#777777")
    axes.set_ylabel("chance it beat the track before (%)", fontsize=8)
    axes.set_ylim(0, 100)
    for (name, series), colour in zip((judged or {}).items(), itertools.cycle(EXTRA_COLOURS)):
        panels[0].plot(np.arange(1, len(series) + 1), np.asarray(series, dtype=float), color=colour, linewidth=1.5, label=name)
    if judged:
        panels[0].set_ylabel("judged quality (1-10)", fontsize=8)
        panels[0].set_ylim(1, 10)
        panels[0].legend(fontsize=7, loc="lower right", frameon=False)
    panels[0].set_title(title, fontsize=10)
    axes.set_xlabel("round", fontsize=8)
    for panel in panels:
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.tick_params(labelsize=7, length=2)
        panel.grid(alpha=0.3, linewidth=0.5)
    return _png(figure)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` rounds that have a value (NaN where none has)."""
    present = ~np.isnan(values)
    sums = np.cumsum(np.where(present, values, 0.0))
    counts = np.cumsum(present)
    sums[window:] -= sums[:-window]
    counts[window:] -= counts[:-window]
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _figure(margins: dict[str, float]) -> Figure:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    figure.subplots_adjust(**margins)  # fixed margins: an automatic layout costs more than the drawing
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
