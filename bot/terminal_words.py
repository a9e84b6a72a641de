"""The terminal session's words (bot.terminal): its prompts and their keys, a session's options and what a resumed one
does not apply, what a typed answer is as a vote, what it says about a rated round's outcome, what a stop leaves, and
what the agent has learned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from bot.conductor import start_text
from bot.progress import plural

from core.crowd import (
    aspects_text, check_choice, compound_rating, decimal_comma, parse_aspects, parse_rating, rating_comparison, rating_text,
    typed_parts,
)
from core.engine import Outcome, SessionSpec, prior_text, wear_limit_text
from core.instruments import instrument_name
from core.music import key_name, tonic_name
from storage import SessionRow

STARTS_HERE = "the next `crowdtune run` starts from this track"  # a stop before round 1 (the starting track's rating)
ROUND_STAYS_OPEN = "stopped; {} stays open and the next `crowdtune run` resumes it"
STOPS = ("q", "quit", "stop", "exit")  # what people type to leave a program, each ending the session

# Every prompt in one style (lower case, short, the question last) and its help, shown for help, h or ?,
# ending with the keys (`keys`). A/B: a vote is the favourite of the three tracks, so a vote for A says A beat B
# and the track before.
PROMPTS = {
    "rating": ("  your rating, 1-10? ", "type a rating from 1 (worst) to 10 (best), such as 7; "),
    "aspects": (
        "  musicality, novelty, coherence, 1-10 each (such as 7 5 6)? ",
        "type three ratings from 1 to 10, such as 7 5 6, or one number for all three; ",
    ),
    "ab": (
        "  your favourite of the three: a, b, both or neither? ",
        "type a or b (that version is your favourite), both (A and B tie, above the track before) or neither, or n "
        "(the track before is best); ",
    ),
}


def keys(mode: str, replays: bool, starting: bool = False, every_stop: bool = False) -> str:
    """The keys at a prompt, in words: the replays only when there is audio to play again (`replays`). `starting`:
    the prompt rates the starting track, before any round is open. `every_stop`: every word that ends the session
    (help's line), not only q."""
    ab = "ra, rb or rp replays A, B or the track before, " if mode == "ab" else ""
    stop = f"{', '.join(word for word in STOPS if word != 'q')} or q" if every_stop else "q"
    stops = f"{stop} stops ({STARTS_HERE})" if starting else f"{stop} stops (the round stays open)"
    return f"{ab}r replays, {stops}" if replays else stops


# The command-line options that make up a session's SessionSpec (and so cannot change while it runs).
SPEC_OPTIONS = ("base", "scale", "length", "tempo", "instrument", "mode", "preset", "rounds", "seed")
MODE_NAMES = {"rating": "rating", "ab": "A/B"}  # as the README and the Discord posts name them (--mode ab)
# A vote as the terminal casts it (bot.conductor.Conductor.vote): a choice (A/B mode), a rating, or the ratings of
# the aspects (core.crowd.ASPECTS) by name, stored with the vote as a Discord aspects vote is.
Vote = float | str | Mapping[str, float]


@dataclass(frozen=True)
class AspectsVote:
    aspects: Mapping[str, float]  # each aspect's rating, 1-10, as typed (one number typed: the same for all)
    words: str  # how the numbers typed made the rating (core.crowd.aspects_text)

    @property
    def rating(self) -> float:
        """The compound of the aspects (core.crowd.compound_rating): what the vote counts as."""
        return compound_rating(self.aspects)


def rating_of(vote: float | Mapping[str, float]) -> float:
    """The rating a rating-mode `Vote` counts as: itself, or the compound of its aspects."""
    return compound_rating(vote) if isinstance(vote, Mapping) else float(vote)


def vote_of(kind: str, answer: str) -> float | str | AspectsVote:
    """The vote a typed `answer` to a PROMPTS `kind` of question (bot.terminal) is: a choice ("ab"), a rating,
    or three aspects ("aspects"); ValueError, worded for the person, if it is none."""
    if kind == "ab":
        return check_choice(answer)
    if kind == "aspects":
        aspects = parse_aspects(answer)
        words = aspects_text(aspects)
        if len(typed_parts(answer)) == 1:  # one number for all three: say how to tell them apart
            words += "; to rate them apart, type three numbers such as 7 5 6"
        return AspectsVote(aspects, words)
    try:
        return parse_rating(answer)
    except ValueError as problem:
        if len(typed_parts(answer)) > 1 and not decimal_comma(answer):  # aspects typed to a session without --aspects
            raise ValueError(f"{problem}: this session takes one rating (it was started without --aspects)") from None
        raise


def explain(
    outcome: Outcome, spec: SessionSpec, descriptions: list[str], before: float | None, vote: Vote, why_rescored: bool = True
) -> str:
    """One line saying what happened to the round and what its numbers are. `before` is the score the
    track before the edit had (None: not rated yet); `vote` the person's (a rating or aspects, in rating mode). What became of the edit is
    the engine's words (`Outcome.verdict`), as every front end shows them. An undone edit's rating also moves the
    kept track's score (`core.engine.settle`, the preset's `rescore`); `why_rescored` adds why (the first time)."""
    if spec.mode == "ab":
        return outcome.summary  # the engine's words, as every front end posts them
    given = f"{rating_text(rating_of(vote))}/10"
    # The engine blends the rating with the score of the track before (Bayesian average): one rating
    # moves a score only part of the way, so a newcomer is told what the numbers are. A score is on a rating's
    # scale and shown as one is (rating_text), so the same score reads alike in every line.
    now = outcome.incumbent_score
    prior = prior_text(before)
    if outcome.kept_edit:
        score = f"; the track now scores {rating_text(now)}" if now is not None else ""
        return f"rated {given}: {outcome.verdict} ({descriptions[0]}){score}, your rating blended with {prior}"
    # Compared as the two numbers read, as the engine's summary compares them: never "below" a number that reads alike.
    compared = "below" if before is None else rating_comparison(outcome.reward, before)
    line = f"rated {given}: blended with {prior}, the edit scores {compared} it, so {outcome.verdict}"
    if now is None:
        return line
    if not spec.agent.rescore:
        return f"{line} (its score stays {rating_text(now)})"
    if outcome.wear_floor is not None:  # held at the floor, or already under it and kept where it was
        stays = "stays" if now < outcome.wear_floor else "is now"
        return f"{line}; its score {stays} {rating_text(now)}: {wear_limit_text(outcome.wear_floor)}"
    # A move of less than 0.005 reads as none: said, so the rating does not seem ignored.
    moved = "hardly at all: now" if before is not None and rating_text(now) == rating_text(before) else "now"
    line += f"; its score moves {spec.agent.rescore:.0%} of the way toward your rating, {moved} {rating_text(now)}"
    return f"{line} (the two differ by one edit, so your rating says a little about it too)" if why_rescored else line


async def learning_summary(conductor, session: SessionRow) -> list[str]:
    """What the agent (bot.conductor.Conductor's, for `session`'s scope and preset) is most sure you like and dislike,
    in lines, from every rating in the scope; or that it is sure of nothing yet (how much it has judged)."""
    spec = SessionSpec.from_dict(session.spec)
    learned = await conductor.lessons(session.scope_id, spec.preset)
    if learned:
        return ["what the agent has learned from your votes so far:", *(f"  {line}" for line in learned)]
    return [f"the agent {await conductor.nothing_sure_yet(session.scope_id, spec.agent)}"]


async def stop_line(store, session_id: int | None, starting: bool, presented: int | None, cast: tuple[int, int, str] | None) -> str:
    """What a stop (q, the end of input, Ctrl-C, SIGTERM) leaves, read from the database as it is then, so that it is
    true in every phase, also where a signal cut a write short and it may or may not have been stored: `session_id` the
    session's (None: none started or resumed yet), `starting` while its starting track is rated (before round 1),
    `presented` the id of the round the person was shown, `cast` (round id, its number, the vote in words) the vote cast
    and not yet summed up. A session that has finished leaves nothing open: its closing lines say it."""
    if session_id is None:
        return "stopped before a session started or resumed; the next `crowdtune run` does that"
    if (await store.session(session_id)).status != "active":
        return f"stopped; session {session_id} has finished"
    if starting:
        return f"stopped; {STARTS_HERE}"
    row = await store.open_round_of(session_id)
    if row is not None and cast is not None and cast[0] == row.id:
        return f"stopped; your {cast[2]} was not counted: this round stays open and the next `crowdtune run` asks for it again"
    if row is not None:
        return ROUND_STAYS_OPEN.format("this round" if row.id == presented else f"round {row.idx + 1}")
    number = await store.next_round_index(session_id) + 1
    if cast is not None:  # closed with it, its summary not said yet
        return f"stopped; round {cast[1]} closed with your {cast[2]}, and the next `crowdtune run` opens round {number}"
    return f"stopped before round {number} opened; the next `crowdtune run` opens it"


def describe_spec(spec: SessionSpec, options: Mapping[str, object] = MappingProxyType({})) -> str:
    """A session's options in words; `options` (SessionRow.options) says whether its votes are by aspects."""
    rounds = "endless" if spec.rounds is None else plural(spec.rounds, "round")
    apart = " (musicality, novelty and coherence apart)" if options.get("aspects") else ""
    return (
        f"{MODE_NAMES[spec.mode]} mode{apart}, {key_name(spec.base, spec.scale, octave=True)}, {spec.length} notes, {spec.tempo} bpm, "
        f"played on {instrument_name(spec.instrument)}, preset {spec.preset}, seed {spec.seed}, {rounds}"
    )


def seed_words(spec: SessionSpec, options: Mapping[str, object], given_track: bool = False) -> str:
    """What a new session's seed (`spec.seed`) repeats, said true: a session that starts from a `given_track`
    (--from-file, --from-track) or continues the last one (SessionRow.options "continues") got no track from it; a random track's opening and the edits that follow
    also depend on what an agent that learns has learned, so the same seed repeats them only with that learning."""
    if given_track:
        return f"--seed {spec.seed} picks no track: it starts from the one given"
    if "continues" in options:
        return f"--seed {spec.seed} picks no track: it continues session {options['continues']}'s"
    return f"--seed {spec.seed} repeats it" + (" only with the agent's learning as it is now" if spec.agent.learns else "")


def _option_text(spec: SessionSpec, name: str) -> str:
    """An option's value as it is typed: a note name (as the key spells it), an instrument's name, 0 for endless
    rounds, else the value."""
    if name == "base":
        return tonic_name(spec.base, spec.scale)
    if name == "rounds" and spec.rounds is None:
        return "0"
    return instrument_name(spec.instrument) if name == "instrument" else str(getattr(spec, name))


def resuming(
    session: SessionRow, old: SessionSpec, spec: SessionSpec, given: frozenset[str], settings_given: Mapping[str, str],
    aspects: bool = False, learned: str | None = None, out: str | None = None, folder: Path | None = None,
) -> list[str]:
    """The lines that say a session is resumed (`old`, as it was started, with its SessionRow.options; `learned`:
    what its agent has learned, Conductor.learned_from's words) and which options or settings that ask for `spec`
    (and `aspects`: --aspects was given) it does not apply; `out`: --out as typed, which, naming another folder than
    the one holding the session's `folder` (absolute: its files' folder), gets a line of its own saying where they go."""
    agent = f"; the agent {learned}" if learned else ""
    lines = [f"resuming session {session.id}: {describe_spec(old, session.options)}; {session.rounds_done} done{agent}"]
    if started := start_text(session, "your ratings so far", "started"):  # as its first lines said
        lines.append(started)
    differ = [n for n in SPEC_OPTIONS if (n in given or n in settings_given) and getattr(spec, n) != getattr(old, n)]
    not_applied = [f"--{n} {_option_text(spec, n)}" if n in given else settings_given[n] for n in differ]
    if aspects and not session.options.get("aspects"):  # a flag: only a session started without it differs
        not_applied.append("--aspects")
    if not_applied:
        shown = ", ".join(not_applied)
        lines.append(f"  not applied: {shown} (this session was started otherwise); `crowdtune run --new` ends it and starts a new one")
    if out is not None and folder is not None and Path(out).resolve() != folder.parent:
        lines.append(f"  --out {out} not applied: this session keeps its files in {folder}")
    return lines
