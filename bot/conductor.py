"""Sessions and rounds for every front end (Discord, terminal, simulated crowd).

The conductor joins the pure engine to storage; it knows nothing of how a round is shown.
Front ends open a round, show it, pass votes in, and close it (on a timer, a quorum or by hand).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from core.crowd import Ballot, check_choice, check_rating, robust_rating
from core.engine import (
    Aggregator,
    Outcome,
    RoundPlan,
    SessionSpec,
    plan_keys,
    plan_round,
    quorum_reached,
    round_rng,
    settle,
    settle_keys,
)
from core.music import track_from_dict, track_to_dict
from storage import RoundRow, SessionRow, Store, VoteOp, VoteResult


@dataclass(frozen=True)
class OpenRound:
    row: RoundRow
    plan: RoundPlan
    spec: SessionSpec

    @property
    def id(self) -> int:
        return self.row.id


class Conductor:
    def __init__(self, store: Store, aggregate: Aggregator = robust_rating, clock=time.time) -> None:
        self.store = store
        self.aggregate = aggregate
        self.clock = clock

    async def start(
        self,
        scope_id: str,
        scope_kind: str,
        channel_id: str | None,
        spec: SessionSpec,
        actor: str,
        scope_name: str = "",
        continue_from_last: bool = False,
        options: dict | None = None,
    ) -> SessionRow:
        """Start a session. With `continue_from_last`, the first track is where the scope's last
        session in this channel ended, when its musical parameters match."""
        await self.store.ensure_scope(scope_id, scope_kind, scope_name)
        track = spec.first_track()
        if continue_from_last:
            last = await self.store.latest_session(scope_id, channel_id)
            if last is not None and _same_music(SessionSpec.from_dict(last.spec), spec):
                track = track_from_dict(last.track)
        return await self.store.create_session(scope_id, channel_id, spec.to_dict(), track_to_dict(track), actor, options)

    async def open_round(self, session_id: int) -> OpenRound | None:
        """The session's open round, planning a new one if there is none; None once it has ended."""
        session = await self.store.session(session_id)
        if session is None or session.status != "active":
            return None
        spec = SessionSpec.from_dict(session.spec)
        row = await self.store.open_round_of(session_id)
        if row is None:
            track = track_from_dict(session.track)
            index = await self.store.next_round_index(session_id)
            table = await self.store.q_entries(session.scope_id, plan_keys(spec, track))
            plan = plan_round(spec, index, track, table, round_rng(spec, index))
            closes_at = self.clock() + spec.round_seconds
            row = await self.store.open_round(session_id, index, spec.mode, plan.to_dict(), closes_at)
        return OpenRound(row, RoundPlan.from_dict(row.plan), spec)

    @staticmethod
    def vote_op(
        round_id: int, mode: str, voter: str, value: float | str | None, retract: bool = False, scope_id: str | None = None
    ) -> VoteOp:
        """A validated cast (or, with `retract`, a withdrawal: of `value` only, when one is given); with
        `scope_id`, refused unless the round belongs to that scope. ValueError with a user-facing
        message if the value is malformed."""
        if value is None:
            rating, choice = None, None
        elif mode == "ab":
            rating, choice = None, check_choice(str(value))
        else:
            if isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise ValueError(f"a rating is a number from 1 to 10, not '{value}'") from None
            rating, choice = check_rating(value), None
        if retract:
            return VoteOp(round_id, voter, "retract", rating, choice, only_if_standing=value is not None, scope_id=scope_id)
        if value is None:
            raise ValueError("a vote needs a value")
        return VoteOp(round_id, voter, "cast", rating, choice, scope_id=scope_id)

    async def apply_votes(self, ops: list[VoteOp]) -> list[VoteResult]:
        return await self.store.apply_votes(ops)

    async def vote(self, round_id: int, voter: str, value: float | str) -> VoteResult:
        """A rating (rating mode) or a choice (A/B mode)."""
        row = await self.store.round(round_id)
        if row is None:
            return VoteResult("unknown_round")
        return (await self.apply_votes([self.vote_op(round_id, row.mode, voter, value)]))[0]

    async def retract(self, round_id: int, voter: str, value: float | str | None = None) -> VoteResult:
        """Withdraw a vote; with `value`, only if it is the voter's standing vote."""
        row = await self.store.round(round_id)
        if row is None:
            return VoteResult("unknown_round")
        return (await self.apply_votes([self.vote_op(round_id, row.mode, voter, value, retract=True)]))[0]

    async def quorum_reached(self, round: OpenRound) -> bool:
        return quorum_reached(round.spec, await self.store.ballot_count(round.id))

    async def close(
        self, round_id: int, actor: str = "engine", announce: Callable[[Outcome, list[Ballot]], str] | None = None
    ) -> Outcome | None:
        """Close and learn, exactly once: None if the round was already closed or cancelled. With
        `announce`, its text for the round's channel is stored with the close (the outbox)."""
        row = await self.store.round(round_id)
        if row is None or row.status != "open":
            return None
        session = await self.store.session(row.session_id)
        spec = SessionSpec.from_dict(session.spec)
        plan = RoundPlan.from_dict(row.plan)

        def decide(ballots, table, incumbent_score, history):
            return settle(spec, plan, ballots, table, incumbent_score, round_rng(spec, plan.index), self.aggregate, history)

        return await self.store.close_round(round_id, settle_keys(spec, plan), decide, actor, announce)

    async def stop(self, session_id: int, actor: str) -> bool:
        return await self.store.end_session(session_id, "stopped", actor)


def _same_music(a: SessionSpec, b: SessionSpec) -> bool:
    return (a.base, a.scale, a.tempo) == (b.base, b.scale, b.tempo)
