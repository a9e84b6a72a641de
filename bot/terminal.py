"""The terminal session: the person at the keyboard is the crowd.

Each round's audio, MIDI and piano roll are written to a folder (and played where a player
exists and a person is at a terminal); the rating is read from standard input, so
`printf '7\\n3\\n' | crowdtune run --rounds 2` works. The agent lives in the database, so the
next run continues it. Stopping mid-round (end of input, q, Ctrl-C, even SIGKILL) leaves the round
open for the next run to resume; a rating counts once its round's summary is printed.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import subprocess
from pathlib import Path
from typing import TextIO

from bot.conductor import Conductor, OpenRound
from core.engine import SessionSpec
from core.midi import midi_bytes, track_to_midi
from storage import StorageError, database_errors

TERMINAL_CHANNEL = "terminal"
_PLAYERS = (("paplay",), ("aplay", "-q"), ("afplay",), ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"))


def terminal_scope() -> str:
    return f"local:{getpass.getuser()}"


class TerminalSession:
    def __init__(
        self, conductor: Conductor, renderer, out_dir: Path, stdin: TextIO, stdout: TextIO, aspects: bool = False
    ) -> None:
        self.conductor = conductor
        self.aspects = aspects  # ask musicality, novelty and coherence apart; the vote is their compound
        self.renderer = renderer  # None: MIDI and piano roll only
        self.out_dir = out_dir
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty() and stdout.isatty()
        self.voter = f"user:{getpass.getuser()}"

    def say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    async def run(self, spec: SessionSpec) -> int:
        """Run (or resume) the terminal session; returns the number of rounds rated."""
        await self.conductor.store.check_writable()  # a read-only file or a full disk: say so before the first round
        try:
            return await self._run(spec)
        except database_errors() as problem:  # transactions roll back: nothing stored is lost
            raise StorageError(
                f"the database stopped working ({problem}); the open round stays open and the next `crowdtune run` resumes it"
            ) from None

    async def _run(self, spec: SessionSpec) -> int:
        scope = terminal_scope()
        session = await self.conductor.store.active_session_in(TERMINAL_CHANNEL)
        if session is not None and session.scope_id == scope:
            self.say(f"resuming session {session.id} ({session.rounds_done} rounds done)")
        else:
            session = await self.conductor.start(
                scope, "local", TERMINAL_CHANNEL, spec, actor=self.voter, continue_from_last=True
            )
            size = await self.conductor.store.q_size(scope)
            self.say(f"session {session.id}: {spec.mode} mode, preset {spec.preset}; the agent knows {size} Q-values")
        if self.aspects and session.spec.get("mode") == "ab":
            self.say("this session is A/B: you choose between two versions, so --aspects does not apply")
        rated = 0
        while (open_round := await self.conductor.open_round(session.id)) is not None:
            await self._present(open_round)
            answer = await self._ask(open_round)
            if answer is None:
                self.say("stopped; this round stays open and the next `crowdtune run` resumes it")
                return rated
            await self.conductor.vote(open_round.id, self.voter, answer)
            outcome = await self.conductor.close(open_round.id, actor=self.voter)
            rated += 1
            if outcome is not None:
                self.say(f"  {outcome.summary}")
        self.say(f"session {session.id} finished after {rated} rated rounds in this run")
        return rated

    async def _present(self, open_round: OpenRound) -> None:
        from bot.media.pianoroll import piano_roll_png

        plan = open_round.plan
        folder = self.out_dir / f"session-{open_round.row.session_id}"
        folder.mkdir(parents=True, exist_ok=True)
        labels = ["A", "B"] if len(plan.proposals) > 1 else [""]
        self.say(f"round {plan.index + 1}:")
        for label, proposal in zip(labels, plan.proposals):
            stem = folder / f"round-{plan.index + 1:04d}{'-' + label.lower() if label else ''}"
            midi = track_to_midi(proposal.track)
            _write_whole(stem.with_suffix(".mid"), midi_bytes(midi))
            png = await asyncio.to_thread(piano_roll_png, proposal.track, f"round {plan.index + 1} {label}".strip())
            _write_whole(stem.with_suffix(".png"), png)
            listen = stem.with_suffix(".mid")
            if self.renderer is not None:
                listen = stem.with_suffix(".wav")
                _write_whole(listen, await self.renderer.render_async(midi, "wav"))
                self._play(listen)
            prefix = f"  {label}: " if label else "  "
            self.say(f"{prefix}{proposal.description}; listen: {listen} (piano roll: {stem.with_suffix('.png')})")

    def _play(self, path: Path) -> None:
        if not self.interactive:
            return
        for player in _PLAYERS:
            if shutil.which(player[0]):
                subprocess.Popen([*player, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                return

    async def _ask(self, open_round: OpenRound) -> float | str | None:
        if open_round.spec.mode == "ab":
            question = "  A or B (or both / neither)? "
        elif self.aspects:
            question = "  musicality, novelty, coherence, 1-10 each (such as 7 5 6)? "
        else:
            question = "  your rating, 1-10? "
        while True:
            self.stdout.write(question)
            self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                self.stdout.write("\n")
                return None
            answer = line.strip()
            if answer.lower() in ("q", "quit", "stop"):
                return None
            if not self.interactive:
                self.stdout.write(answer + "\n")
            try:
                return self._vote_of(open_round, answer)
            except ValueError as problem:
                self.say(f"  sorry: {problem}")

    def _vote_of(self, open_round: OpenRound, answer: str) -> float | str:
        from core.crowd import check_choice, check_rating, compound_rating, parse_aspects

        if open_round.spec.mode == "ab":
            return check_choice(answer)
        if self.aspects:
            rating = compound_rating(parse_aspects(answer))
            self.say(f"  your rating: {rating:.3g} (musicality counts twice)")
            return rating
        try:
            value = float(answer)
        except ValueError:
            raise ValueError(f"a rating is a number from 1 to 10, not '{answer}'") from None
        return check_rating(value)


def _write_whole(path: Path, data: bytes) -> None:
    """Write through a temporary file, so a crash never leaves a half-written round file behind."""
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)
