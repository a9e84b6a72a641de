"""The terminal session: the person at the keyboard is the crowd.

Each round's audio, MIDI and piano roll are written to a folder of its own per database and
session (kept with the session, so a resumed one writes there), and at the session's end, finished or stopped, its
track as it stands (final.mid, final.wav); on a terminal each clip is played (one at a time: A, then B), and the rating is read from
standard input, so `printf '7\\n3\\n' | crowdtune run --rounds 2` works. The agent lives in the
database, so the next run continues it. Stopping mid-round (end of input, q, Ctrl-C, SIGTERM, even
SIGKILL) leaves the round open for the next run to resume; a rating counts once its round's summary
is printed. `--new` ends an unfinished session instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TextIO

from bot.conductor import Conductor, OpenRound, start_text
from bot.console import LineReader, Player, write_clip
from bot.final_track import write_final_track
from bot.terminal_words import (
    STOPS, PROMPTS, AspectsVote, Vote, describe_spec, explain, keys, learning_summary, rating_of, resuming, seed_words, stop_line,
    vote_of,
)
from bot.session_files import kept_options, resumed_files, session_files
from bot.errors import ExitCode, StartupError
from bot.progress import plural
from bot.stopping import settle
from core.crowd import rating_text
from core.engine import SessionSpec
from core.fitting import Fitted
from core.music import track_from_dict
from core.words import quoted, visible
from storage import DatabaseBusy, DatabaseUnreachable, DatabaseUnwritable, SessionRow, StorageError, database_errors
from storage.files import CannotWrite

# None: every clip of the round (A, then B); BEFORE: the track before, which every A/B vote is about.
BEFORE = "before"
ONE_VERSION, STARTING_ALONE = "this round has one version", "this is the starting track alone"  # what ra or rb finds
_REPLAYS = {"r": None, "ra": 0, "r a": 0, "rb": 1, "r b": 1, "rp": BEFORE, "r p": BEFORE}
_HELPS = ("help", "h", "?")


def terminal_scope(login: str | None = None) -> str:
    """The terminal sessions' scope of `login` (default: who runs crowdtune), local:LOGIN, which is also their votes'
    voter: a kind of its own, so no login (123456789012345678 too) is ever the Discord user of that id (user:ID)."""
    return f"local:{login or getpass.getuser()}"


# What a database that stops taking writes (a full disk, a server gone) leaves, said with its line: TerminalSession.left.
SESSION_RESUMES = "the session stays unfinished and the next `crowdtune run` resumes it"
ROUND_RESUMES = "the open round stays open and the next `crowdtune run` resumes it"
RATING_LOST = "your {} was {}: the round stays open and the next `crowdtune run` asks for it again"
STARTING_RATING_LOST = "your {} was not stored: the next `crowdtune run` asks for the starting track's rating again"


@contextlib.contextmanager
def _resumable(left: Callable[[], str | None]) -> Iterator[None]:
    """A database or a round's file that cannot be written (a full disk) ends the session with its line saying what
    that leaves, `left()` as it is then (None: nothing was started, so nothing resumes): transactions roll back, so
    nothing stored is lost."""
    try:
        yield
    except CannotWrite as problem:  # a round's file under --out
        resumes = "; the next `crowdtune run` resumes the session" if left() else ""
        raise CannotWrite(problem.errno, f"{problem.strerror}{resumes}", problem.filename) from None
    except (DatabaseUnwritable, DatabaseUnreachable, DatabaseBusy) as problem:  # named by the store: a full disk, a server gone away, a lock held
        raise type(problem)("; ".join(filter(None, [str(problem), left()]))) from None
    except database_errors() as problem:
        raise StorageError("; ".join(filter(None, [f"the database stopped working ({problem})", left()]))) from None


async def nothing_to_rate(stdin: TextIO) -> LineReader:
    """A reader of `stdin` for the session, after checking there is something to read: StartupError
    (NO_TOKEN) when standard input is not a terminal and has already ended before its first line (a
    container started without one, `< /dev/null`), where a session would open a round nobody can rate."""
    reader = LineReader(stdin)
    if await reader.ended_before_input():
        raise StartupError(
            "no DISCORD_TOKEN, so this is a terminal session, but standard input is empty: set DISCORD_TOKEN "
            "(environment or .env) to run the Discord bot, or run crowdtune run in a terminal",
            ExitCode.NO_TOKEN,
        )
    return reader


class TerminalSession:
    def __init__(
        self, conductor: Conductor, renderer, out_dir: Path, stdin: TextIO, stdout: TextIO, aspects: bool = False,
        reader: LineReader | None = None, out_given: str | None = None, data_folder: Path | None = None,
        out_refused: Exception | None = None,
    ) -> None:
        self.conductor = conductor
        self.aspects = aspects  # ask musicality, novelty and coherence apart; the vote is their compound
        self.renderer = renderer  # None: MIDI and piano roll only
        self.out_dir = out_dir  # for a new session; one resumed keeps its own (bot.session_files)
        self.out_given = out_given  # --out as typed, if given: a resumed session says it does not apply another
        self.out_refused = out_refused  # why --out cannot be written (bot.cli), raised only if a session writes there
        self.data_folder = data_folder or out_dir.parent  # the database's: what a session keeps its folder relative to
        self.stdin = stdin
        self.reader = reader  # reading `stdin` already (`nothing_to_rate` looked at it); else made by `run`
        self.stdout = stdout
        self.interactive = stdin.isatty() and stdout.isatty()
        self.player = Player(self.say, self.interactive)
        # Clips to play again: audio, on a terminal, with a player program (else no line offers r).
        self.replays = renderer is not None and self.player.can_play
        self.voter = terminal_scope()  # local:LOGIN, never user:, which is a Discord user's
        self.folder = out_dir
        # Where the session is, for what a stop says (q, the end of input, Ctrl-C or SIGTERM alike: `stop_line`): the
        # session once started or resumed (its closing lines follow the stop), whether its starting track is being
        # rated, the round shown, and the vote cast (round id, number, in words) whose summary is not said yet.
        self._session: SessionRow | None = None
        self._starting, self._presented, self._cast = False, None, None
        self._said: set[str] = set()  # the closing steps said: a signal during them does not say one twice
        # What a database that stops taking writes leaves now, said with its line (None: no session started yet).
        self.left: str | None = None

    def say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    async def run(
        self, spec: SessionSpec, given: frozenset[str] = frozenset(), new: bool = False, first_track: Fitted | None = None,
        settings_given: Mapping[str, str] = MappingProxyType({}),
    ) -> int:
        """Run (or resume) the terminal session; returns the number of rounds rated. `given`: the
        SPEC_OPTIONS named on the command line, `settings_given` those that settings set instead, each as it was set
        ("CROWDTUNE_ROUNDS=0") (a resumed session says which of them it does not apply);
        `new`: end an unfinished session and start one from `spec`; `first_track` (a person's own melody): the same,
        from its track, its summary said once the session has started. Ctrl-C and SIGTERM cancel it (bot.stopping): the cancellation goes
        through once the players are stopped, and the stop's line says what that leaves (`stop_line`)."""
        self.reader = self.reader or LineReader(self.stdin)
        try:
            with _resumable(lambda: self.left):
                return await self._run(spec, given, settings_given, new or first_track is not None, first_track)
        except asyncio.CancelledError:
            # Ctrl-C or SIGTERM (bot.stopping): the same closing lines as q. They only read, and a signal
            # repeated meanwhile is ignored; a database that fails now only loses these lines.
            self.stdout.write("\n")
            with contextlib.suppress(StorageError, *database_errors()):
                await self._stopped()
            raise
        finally:
            await self.player.stop()

    async def _run(
        self, spec: SessionSpec, given: frozenset[str], settings_given: Mapping[str, str], new: bool, first_track: Fitted | None
    ) -> int:
        store = self.conductor.store
        # A terminal session's place (its channel) is its login's scope, local:LOGIN (storage migration 14): each login
        # finds, resumes and ends its own open session only, and a database holds one open session per login.
        session = await store.active_session_in(self.voter)
        if session is not None and new:
            await self.conductor.stop(session.id, self.voter)
            self.say(f"session {session.id} ended (stopped; nothing learned from its open round)")
            session = None
        if session is not None:
            # Said as a new session's first line is, with the options or settings it does not apply.
            old = SessionSpec.from_dict(session.spec)
            learned = await self.conductor.learned_from(session.scope_id, old.agent)
            found = await resumed_files(store, session, self.out_dir, self.data_folder, self.out_refused)
            self.say("\n".join(resuming(session, old, spec, given, settings_given, self.aspects, learned, self.out_given, found.folder)))
            if found.note:  # the folder it was given is not found (moved or deleted): where its files go instead
                self.say(found.note)
            self.folder = found.folder
            spec = old
            self.left = SESSION_RESUMES
            self._session = session
        else:
            if self.out_refused is not None:  # before anything is stored
                raise self.out_refused
            session = await self.conductor.start(
                self.voter, "local", self.voter, spec, actor=self.voter, continue_from_last=True,
                options={"aspects": self.aspects, **kept_options(self.out_dir.resolve(), self.data_folder, store.path)}, first_track=first_track and first_track.track,
                started=self._started,
            )
            learned = await self.conductor.learned_from(session.scope_id, spec.agent)
            seed = seed_words(spec, session.options, first_track is not None)
            self.say((f"{first_track.summary}\n" if first_track else "") + f"session {session.id}: {describe_spec(spec, session.options)} ({seed}); the agent {learned}")
            if started := start_text(session, "your ratings so far"):
                self.say(started)
            self.folder = session_files(session, store.path, self.out_dir, self.data_folder).folder
        # A session keeps how it was started: its votes by aspects or not, whatever this run's --aspects says.
        self.aspects = bool(session.options.get("aspects")) and spec.mode == "rating"
        self.say(f"files in {self.folder}; at the prompt: {keys(spec.mode, self.replays)}, help explains")
        if spec.mode == "ab":
            self.say(
                "a vote is your favourite of the three (A, B and the track before): a, b, both when A and B tie above the "
                "track before, neither (or n) when the track before is best"
            )
        first = session.rounds_done == 0 and session.incumbent_score is None and await store.open_round_of(session.id) is None
        if first and not self.interactive:  # asked no rating, but its files are written as a terminal's are (start.mid)
            await write_clip(self.renderer, self.folder / "start", track_from_dict(session.track), "the starting track")
        elif first:
            self._starting = True
            if not await self._starting_track(session, spec):
                await self._stopped()
                return 0
            self._starting = False
        rated, why_rescored = 0, True
        while (open_round := await self.conductor.open_round(session.id)) is not None:
            self.left, self._presented = ROUND_RESUMES, open_round.id
            clips, before_clip = await _present(open_round, self.folder, self.renderer, self.say, self.replays)
            await self._play(clips)
            answer = await self._ask(open_round, clips, before_clip)
            if answer is None:
                await self._stopped()
                return rated
            self.left = RATING_LOST.format(_named(answer), "not stored")
            self._cast = (open_round.id, open_round.plan.index + 1, _named(answer))
            before = (await store.session(session.id)).incumbent_score
            await self.conductor.vote(open_round.id, self.voter, answer)
            self.left = RATING_LOST.format(_named(answer), "stored but not counted")  # its round is not closed
            outcome = await self.conductor.close(open_round.id, actor=self.voter)
            self.left = SESSION_RESUMES
            rated += 1
            if outcome is not None:
                descriptions = [p.description for p in open_round.plan.proposals]
                self.say(f"  {explain(outcome, open_round.spec, descriptions, before, answer, why_rescored)}")
                why_rescored = why_rescored and outcome.kept_edit
            self._cast = None
        self.left = None  # finished: nothing resumes
        self._said.add("stop")  # the line a stop would say: this one
        self.say(f"session {session.id} finished after {plural(rated, 'round')} voted in this run")
        await self._ended(session)
        settle()  # all said and written: a stop now (the store closing) must not end a finished session with 143
        return rated

    def _started(self, session: SessionRow) -> None:
        """The session is stored (conductor.start), a stop meanwhile or not: it resumes, and its database is kept (bot.cli)."""
        self.left, self._session = SESSION_RESUMES, session

    @property
    def started(self) -> bool:
        """Whether a session has started or resumed (a stop before leaves nothing of this run's)."""
        return self._session is not None

    async def _stopped(self) -> None:
        """Say that the session stopped and what that leaves, then (once it has started) what `_ended` says; each line
        once, also when a signal comes while they are said."""
        if "stop" not in self._said:
            id_ = self._session and self._session.id
            line = await stop_line(self.conductor.store, id_, self._starting, self._presented, self._cast)
            self._said.add("stop")
            self.say(line)
        if self._session is not None:
            await self._ended(self._session)

    async def _ended(self, session: SessionRow) -> None:
        """At a session's end, finished or stopped: write its track as it stands (final.mid, final.wav with audio:
        bot.final_track, as a simulation writes it) and say where in one line (or, in that line, what could not be
        written), then what the agent has learned. A step already said is not said again."""
        if "track" not in self._said:
            track = track_from_dict((await self.conductor.store.session(session.id)).track)
            line = await write_final_track(self.folder, track, self.renderer, "wav")
            self._said.add("track")
            self.say(line)
        if "lessons" not in self._said:
            lines = await learning_summary(self.conductor, session)
            self._said.add("lessons")
            for line in lines:
                self.say(line)

    async def _starting_track(self, session: SessionRow, spec: SessionSpec) -> bool:
        """Play the track the first edit starts from and, in rating mode, take its rating: the bar that edit
        must pass (in A/B mode each edit is compared with it by the person). False if the person stopped."""
        self.say("the starting track (the agent edits it from round 1 on):")
        where, wav = await write_clip(self.renderer, self.folder / "start", track_from_dict(session.track), "the starting track")
        self.say(f"  {where} (piano roll: {(self.folder / 'start').with_suffix('.png')})")
        clips = [_opened(self.folder / "start", wav)]
        await self._play(clips)
        if spec.mode == "ab":
            while True:
                shortly = "r replays, q stops" if self.replays else "q stops"
                self.stdout.write(f"  press Enter for round 1 ({shortly}) ")
                self.stdout.flush()
                line = await self.reader.readline()
                answer = None if line is None else line.strip()
                if answer is None or answer.lower() in STOPS:
                    return False
                if not answer:
                    return True
                if answer.lower() in _REPLAYS:
                    await _replay(self.player, self.renderer is not None, clips, _REPLAYS[answer.lower()], alone=STARTING_ALONE)
                elif answer.lower() in _HELPS:
                    replay = "r replays the starting track, " if self.replays else ""
                    self.say(f"  press Enter to start round 1; {replay}{keys(spec.mode, replays=False, starting=True, every_stop=True)}")
                else:  # a rating typed out of habit would otherwise start the round unasked
                    self.say(f"  sorry: only Enter starts round 1 ({shortly}), not {quoted(answer)}")
        vote = await self._ask(None, clips)
        if vote is None:
            return False
        self.left = STARTING_RATING_LOST.format(_named(vote))
        await self.conductor.store.rate_starting_track(session.id, rating_of(vote), self.voter)
        self.left = SESSION_RESUMES
        self.say(f"  rated {rating_text(rating_of(vote))}/10: the first edit is compared with this")
        return True

    async def _ask(self, open_round: OpenRound | None, clips: list[Path], before: list[Path] | None = None) -> Vote | None:
        """The person's vote on a round (None: the starting track), asked until it is valid; None if they stopped.
        `before`: the track before's clip (A/B mode), which `rp` replays."""
        # Every rating of an aspects session is asked by aspects, the starting track's too (A/B sessions have none).
        kind = "aspects" if self.aspects else "rating" if open_round is None else open_round.spec.mode
        question, helped = PROMPTS[kind]
        while True:
            self.stdout.write(question)
            self.stdout.flush()
            line = await self.reader.readline()
            if line is None:
                self.stdout.write("\n")
                return None
            answer = line.strip()
            if not self.interactive:  # piped input is not echoed: the transcript shows each answer, a stop too
                self.stdout.write(visible(answer) + "\n")
            if answer.lower() in STOPS:
                return None
            if answer.lower() in _REPLAYS:
                await _replay(self.player, self.renderer is not None, clips, _REPLAYS[answer.lower()], before,
                              STARTING_ALONE if open_round is None else ONE_VERSION)
                continue
            if answer.lower() in _HELPS or not answer:  # Enter alone is told what to type, in help's words
                self.say(f"  {helped}{keys(kind, self.replays, starting=open_round is None, every_stop=True)}")
                continue
            try:
                vote = vote_of(kind, answer)
            except ValueError as problem:
                self.say(f"  sorry: {problem}")
                continue
            if isinstance(vote, AspectsVote):  # cast as its aspects, so they are stored with it (as on Discord)
                self.say(f"  your rating: {rating_text(vote.rating)} ({vote.words})")
                return vote.aspects
            return vote

    async def _play(self, clips: list[Path]) -> None:
        """Play a round's clips as it opens: only audio (without it, `clips` are MIDI files for the person to open)."""
        if self.renderer is not None:
            await self.player.play(clips)


async def _present(open_round: OpenRound, folder: Path, renderer, say: Callable[[str], None], replays: bool) -> tuple[list[Path], list[Path] | None]:
    """Write the round's files into `folder` (audio with `renderer`) and `say` where; returns each clip's file to hear
    (A then B: `_opened`) and, in A/B mode, the track before's (a vote is the favourite of the three; `rp` replays it:
    said when it `replays`), else None."""
    plan = open_round.plan
    labels = ["A", "B"] if len(plan.proposals) > 1 else [""]
    number = plan.index + 1
    say(f"round {number}:")
    clips = []
    for label, proposal in zip(labels, plan.proposals):
        stem = folder / f"round-{number:04d}{'-' + label.lower() if label else ''}"
        where, wav = await write_clip(renderer, stem, proposal.track, f"round {number} {label}".strip(), plan.incumbent, proposal.action)
        clips.append(_opened(stem, wav))
        prefix = f"  {label}: " if label else "  "
        say(f"{prefix}{proposal.description}; {where} (piano roll: {stem.with_suffix('.png')})")
    if len(plan.proposals) == 1:
        return clips, None
    stem = folder / f"round-{number:04d}-before"
    where, before = await write_clip(renderer, stem, plan.incumbent, f"round {number}: the track before")
    say(f"  the track before: {where}" + (" (rp replays it)" if replays else ""))
    return clips, [_opened(stem, before)]


async def _replay(player: Player, audio: bool, clips: list[Path], which: int | str | None, before: list[Path] | None = None,
                  alone: str = ONE_VERSION) -> None:
    """Play `clips` again (`_opened`'s files) with the session's `player` (`audio`: not --no-audio): `which` one, None:
    all, BEFORE: `before` (an A/B round's track before; None: none). One rule: a clip not there (ra or rb where `alone`
    is all there is, rp outside A/B rounds) is said so; where nothing plays, the line says why and names the files to
    open instead (without a player program, the player says so, naming them), so a replay asked for is never left
    unanswered."""
    here = "; r replays it" if audio and player.can_play else ""
    if which == BEFORE and before is None:
        return player.say(f"  rp replays the track before, in A/B rounds{here}")
    if isinstance(which, int) and len(clips) < 2:
        return player.say(f"  {alone}, no A or B{here}")
    chosen = before if which == BEFORE else clips if which is None else [clips[which]]
    why = "clips play only on a terminal" if not player.enabled else "no audio to play (--no-audio)" if not audio else None
    if why is not None:
        return player.say(f"  {why}: open {', '.join(map(str, chosen))} yourself")
    await player.play(chosen, asked=True)


def _named(vote: Vote) -> str:
    """A vote as the line about it not being stored names it: "rating 7", "vote a"."""
    return f"vote {vote}" if isinstance(vote, str) else f"rating {rating_text(rating_of(vote))}"


def _opened(stem: Path, wav: Path | None) -> Path:
    """The file a person opens to hear a clip written by write_clip: its WAV, or without audio its MIDI file."""
    return wav or stem.with_suffix(".mid")
