"""Sessions and rounds for every front end (Discord, terminal, simulated crowd).

The conductor joins the pure engine to storage; it knows nothing of how a round is shown.
Front ends open a round, show it, pass votes in, and close it (on a timer, a quorum or by hand).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from core.actions import apply, describe
from core.agent import AgentConfig, feature_names, model_name, opening, scope_model
from core.agent import preset as agent_preset
from core.crowd import check_choice, check_rating, compound_rating, parse_rating, robust_rating
from core.learner import Posterior, explain
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
from bot.progress import plural
from core.music import Track, track_from_dict, track_to_dict
from storage import Announce, EndedSession, ResetDone, RoundRow, SessionRow, Store, VoteOp, VoteResult

NOTHING_LEARNED = "has not learned anything yet"  # an agent that learns, before its first lesson


@dataclass(frozen=True)
class OpenRound:
    row: RoundRow
    plan: RoundPlan
    spec: SessionSpec

    @property
    def id(self) -> int:
        return self.row.id


class Conductor:
    def __init__(self, store: Store, aggregate: Aggregator = robust_rating) -> None:
        self.store = store
        self.aggregate = aggregate

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
        first_track: Track | None = None,
        started: Callable[[SessionRow], object] | None = None,
    ) -> SessionRow:
        """Start a session from `first_track` (a person's own melody) or a new random track. With
        `continue_from_last` and no `first_track`, the first track is where the scope's last session in
        this channel ended, when its musical parameters match (played on this session's instrument).
        A new random track is first edited with what the scope's ratings taught (`core.agent.opening`); the
        session's options then say how, under "opening" (the edits in words, in order), for the front ends.
        `started` is called with the session once it is stored, also when a stop (a signal's cancellation) came as it
        was, before that stop goes on: what a caller keeps (its database) and ends (a simulation) goes by it alone."""
        await self.store.ensure_scope(scope_id, scope_kind, scope_name)
        track = first_track
        if continue_from_last and first_track is None:
            last = await self.store.latest_session(scope_id, channel_id)
            if last is not None and _same_music(SessionSpec.from_dict(last.spec), spec):
                track = replace(track_from_dict(last.track), instrument=spec.instrument)
                options = {**(options or {}), "continues": last.id}
        if track is None:
            track, opened = await self._opening(scope_id, spec)
            if opened:
                options = {**(options or {}), "opening": opened}
        try:
            session = await self.store.create_session(scope_id, channel_id, spec.to_dict(), track_to_dict(track), actor, options)
        except asyncio.CancelledError:
            # The stop may have come once the insert committed (the database's thread finishes it all the same).
            if started is not None and (session := await self._stored(scope_id, channel_id, actor)) is not None:
                started(session)
            raise
        if started is not None:
            started(session)
        return session

    async def _stored(self, scope_id: str, channel_id: str | None, actor: str) -> SessionRow | None:
        """The session a start interrupted as it was stored has stored, if it did: a channel's one active session, or
        (none: a simulation's own scope, which its process holds) the scope's newest active one without a channel."""
        if channel_id is not None:
            return await self.store.active_session_in(channel_id)
        ours = [s for s in await self.store.active_sessions(scope_id) if s.channel_id is None and s.owner == actor]
        return ours[-1] if ours else None

    async def _opening(self, scope_id: str, spec: SessionSpec) -> tuple[Track, list[str]]:
        """A new random starting track edited by `core.agent.opening`, and those edits in words."""
        track = spec.first_track()
        model = await self.model(scope_id, spec.agent)
        # Scoring every legal edit a few times over: milliseconds of numpy, off the event loop all the same.
        actions = await asyncio.to_thread(opening, spec.agent, track, model)
        words = []
        for action in actions:
            words.append(describe(track, action))
            track = apply(track, action)
        return track, words

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
            model = await self.model(session.scope_id, spec.agent)
            last = await self.store.last_closed_round_before(session_id, index)
            before = RoundPlan.from_dict(last.plan) if last is not None else None
            # Scoring a few dozen candidate edits by their features takes milliseconds of numpy and Python.
            plan = await asyncio.to_thread(
                plan_round, spec, index, track, table, round_rng(spec, index), model, session.incumbent_score is None, before
            )
            # No close time until it is posted (its voting starts then): one set before is a /close asked for meanwhile.
            row = await self.store.open_round(session_id, index, spec.mode, plan.to_dict(), None)
            if row is None:  # stopped while it was planned
                return None
        return OpenRound(row, RoundPlan.from_dict(row.plan), spec)

    async def model(self, scope_id: str, config: AgentConfig, measured_kinds: bool = True) -> Posterior | None:
        """The scope's linear model (None for agents that keep none): its own evidence and, when the scope
        opted in with the `share_learning` setting, that of every other scope that did too (`measured_kinds`:
        core.agent.scope_model)."""
        name = model_name(config)
        if name is None:
            return None
        evidence = await self.store.model_evidence(scope_id, name)
        shared = []
        # A personal agent learns from its owner's votes alone (/config refuses share_learning in a DM).
        if not one_rater(scope_id) and (await self.store.scope_settings(scope_id)).get("share_learning"):
            shared = await self.store.shared_evidence(name, scope_id)
        return await asyncio.to_thread(scope_model, config, evidence, shared, measured_kinds)

    async def judged_edits(self, scope_id: str, config: AgentConfig) -> int:
        """How many judged edits the scope's model has learned from (its observations): an edit the crowd rated
        against a track before it that had a score (a session's first edit, when nobody rated its starting
        track, only sets the bar: core.engine.settle), or an A/B edit that votes compared with the track before
        (an A/B round gives up to two, and no rating); 0 for an agent without a model."""
        name = model_name(config)
        evidence = await self.store.model_evidence(scope_id, name) if name is not None else None
        return 0 if evidence is None else evidence.count

    async def learned(self, scope_id: str, config: AgentConfig) -> tuple[Literal["q_values", "judged_edits"], int] | None:
        """What the scope's agent has learned, counted as what it is: a tabular agent's Q-values, those of its
        own state encoding (the scope's table holds every tabular preset's; a count in SQL: reading the table
        would grow with its history), a linear model's judged edits, or None for an agent that learns nothing."""
        if not config.learns:
            return None
        if config.learner == "table":
            return "q_values", await self.store.q_size(scope_id, config.state)
        return "judged_edits", await self.judged_edits(scope_id, config)

    async def learned_from(self, scope_id: str, config: AgentConfig) -> str:
        """`learned` in words (`learned_words`)."""
        return learned_words(await self.learned(scope_id, config))

    async def learned_so_far(self, scope_id: str, config: AgentConfig) -> str:
        """What a reset would forget, in words (/reset, `crowdtune reset`, /forget-me's personal agent): `so_far_words`."""
        return so_far_words(await self.learned(scope_id, config))

    async def nothing_to_reset(self, scope_id: str, learned: str) -> bool:
        """Whether a reset (/reset, `crowdtune reset`) would delete nothing, so neither asks: the agent, by its preset,
        has `learned` NOTHING_LEARNED (`learned_so_far`) and the scope holds no Q-values of another preset either."""
        return learned == NOTHING_LEARNED and not await self.store.q_size(scope_id)

    async def nothing_sure_yet(self, scope_id: str, config: AgentConfig) -> str:
        """What the agent says of itself when it has no lessons (`lessons` empty), in the words every front end
        uses after "the agent": "is not yet sure of anything you like or dislike (3 judged edits so far)" for
        a model that could say something, else `learned_from`'s words (Q-values held, or that it learns nothing)."""
        if config.learner == "linear":
            judged = await self.judged_edits(scope_id, config)
            return f"is not yet sure of anything you like or dislike ({plural(judged, 'judged edit')} so far)"
        return await self.learned_from(scope_id, config)

    async def lessons(self, scope_id: str, preset: str = "default") -> list[str]:
        """What the scope's agent is most sure its crowd likes and dislikes, in words (empty before any rating)."""
        config = agent_preset(preset)
        model = await self.model(scope_id, config, measured_kinds=False)
        return explain(model, feature_names(config)) if model is not None else []

    @staticmethod
    def vote_op(
        round_id: int,
        mode: str,
        voter: str,
        value: float | str | Mapping[str, float] | None,
        retract: bool = False,
        scope_id: str | None = None,
    ) -> VoteOp:
        """A validated cast (or, with `retract`, a withdrawal: of `value` only, when one is given); with
        `scope_id`, refused unless the round belongs to that scope. A mapping is a cast of some aspects
        ({"novelty": 7}), merged with the voter's others (rating mode). ValueError with a user-facing
        message if the value is malformed."""
        if isinstance(value, Mapping):
            if mode != "rating" or retract:
                raise ValueError("aspects are rated in rating rounds, and withdrawn with the whole vote")
            compound_rating(value)  # checks the names and the ranges
            aspects = tuple(sorted((name, float(v)) for name, v in value.items()))
            return VoteOp(round_id, voter, "cast", aspects=aspects, scope_id=scope_id)
        if value is None:
            rating, choice = None, None
        elif mode == "ab":
            rating, choice = None, check_choice(str(value))
        else:
            rating, choice = parse_rating(value) if isinstance(value, str) else check_rating(value), None
        if retract:
            return VoteOp(round_id, voter, "retract", rating, choice, only_if_standing=value is not None, scope_id=scope_id)
        if value is None:
            raise ValueError("a vote needs a value")
        return VoteOp(round_id, voter, "cast", rating, choice, scope_id=scope_id)

    async def apply_votes(self, ops: list[VoteOp]) -> list[VoteResult]:
        return await self.store.apply_votes(ops)

    async def vote(self, round_id: int, voter: str, value: float | str | Mapping[str, float]) -> VoteResult:
        """A rating or some aspects' ratings by name (rating mode: see `vote_op`), or a choice (A/B mode)."""
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

    async def quorum_reached(self, round: OpenRound, counted: int | None = None) -> bool:
        """Whether the round's standing votes make its quorum; or `counted` of them, those a rule of the front end's
        (such as a membership age) counts."""
        return quorum_reached(round.spec, await self.store.ballot_count(round.id) if counted is None else counted)

    async def close(
        self, round_id: int, actor: str = "engine", announce: Announce | None = None,
        set_aside: frozenset[str] = frozenset(),
    ) -> Outcome | None:
        """Close and learn, exactly once: None if the round was already closed or cancelled. With
        `announce`, its text for the round's channel is stored with the close (the outbox), given what the close
        counted (storage.Announce). The standing votes of the `set_aside` voters (a rule of the front end's, such as a
        membership age) do not count, and are voided with the close (Store.close_round)."""
        row = await self.store.round(round_id)
        if row is None or row.status != "open":
            return None
        session = await self.store.session(row.session_id)
        spec = SessionSpec.from_dict(session.spec)
        plan = RoundPlan.from_dict(row.plan)

        def decide(ballots, table, incumbent_score, history, reference=None):
            return settle(
                spec, plan, ballots, table, incumbent_score, round_rng(spec, plan.index), self.aggregate, history, reference,
                one_rater=one_rater(session.scope_id),
            )

        return await self.store.close_round(round_id, settle_keys(spec, plan), decide, actor, announce, set_aside)

    async def stop(self, session_id: int, actor: str) -> EndedSession | None:
        """Stop the session: what it cancelled (Store.end_session), None if it had already ended."""
        return await self.store.end_session(session_id, "stopped", actor)


def learned_words(learned: tuple[str, int] | None) -> str:
    """What an agent learned (Conductor.learned's count) in words: "has learned from 12 judged edits", "holds 37
    learned Q-values", or that it learns nothing."""
    if learned is None:
        return "learns nothing (its edits are random)"
    unit, count = learned
    if unit == "q_values":
        return f"holds {plural(count, 'learned Q-value')}"
    return f"has learned from {plural(count, 'judged edit')}"


def so_far_words(learned: tuple[str, int] | None) -> str:
    """`learned_words`, or NOTHING_LEARNED rather than a count of none."""
    return NOTHING_LEARNED if learned is not None and learned[1] == 0 else learned_words(learned)


def reset_words(config: AgentConfig, done: ResetDone) -> str:
    """What the reset `done` (Store.reset_scope) deleted of an agent learning by `config`, in `so_far_words`' words:
    counted in the units it learns in, as its own transaction found them, never as read before it."""
    if not config.learns:
        return so_far_words(None)
    if config.learner == "table":
        return so_far_words(("q_values", done.q_values.get(config.state, 0)))
    name = model_name(config)
    return so_far_words(("judged_edits", done.judged.get(name, 0) if name is not None else 0))


def one_rater(scope_id: str) -> bool:
    """Whether a scope's sessions have one voter, the person they are told to: a personal agent's (a DM with the bot,
    "user:") or the terminal's ("local:"); a server's ("guild:") and a simulated crowd's ("sim:") have a crowd."""
    return scope_id.startswith(("user:", "local:"))


def _same_music(a: SessionSpec, b: SessionSpec) -> bool:
    return (a.base, a.scale, a.tempo) == (b.base, b.scale, b.tempo)


def start_text(session: SessionRow, whose: str, verb: str = "starts") -> str:
    """Where a session's starting track came from when it is not a new random track as it came (`Conductor.start`):
    the track the session it continues ended on, or a random track the agent edited first, naming `whose` ratings
    taught it ("your ratings", "this server's ratings"). Lower case and without a full stop, for a front end's
    sentence ("it starts from a random track with 2 edits the agent expects to improve it, from what your ratings
    taught: ..."; `verb` "started" for a session resumed); "" for a new random track as it came, or a person's melody."""
    if (continued := session.options.get("continues")) is not None:
        return f"it {verb} from the track session {continued} ended on (same key, scale and tempo)"
    opened = session.options.get("opening") or []
    if not opened:
        return ""
    # The model's prediction, from every feature the ratings taught, not a liking said for these very edits. The same
    # edit made again (a note raised step by step) is said once with its count: up to 16 edits read as a list, not a wall.
    counts = Counter(opened)
    said = [words if counts[words] == 1 else f"{words} ({counts[words]} times)" for words in counts]
    return (
        f"it {verb} from a random track with {plural(len(opened), 'edit')} the agent expects to improve it, from what {whose} "
        f"taught: {'; '.join(said)}"
    )
