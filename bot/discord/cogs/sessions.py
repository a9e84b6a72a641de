"""/compose, /stop, /close, /status, /stats and /top: running and following sessions."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
from dataclasses import replace

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.conductor import start_text
from bot.discord.followups import round_waits, voting_paused
from bot.discord.outage import is_outage, reason
from bot.discord.permissions import missing_permissions, missing_text
from bot.discord.pickup import after_pickup, recounted
from bot.discord.replies import UNKNOWN_INTERACTION, answer, answer_privately, deferring
from bot.discord.steering import ALREADY_ENDED, CLOSE_ANSWERS, CloseWaits
from bot.discord.runner import waits_for_database
from bot.discord.reports import (
    STILL_RECOUNTING, best_rounds, closes_text, held_votes, held_votes_note, learning_report, waiting_note, nothing_rated, rounds_ended, sessions_of,
    shown_votes, standing_votes, stop_report,
)
from bot.discord.votes import (
    VOTING_STOPPED, cancelled_note, describe_aspects, describe_votes, origin_scope, ranked_round, round_number, rounds_in_all, set_aside_text,
    voter_id,
)
from bot.media.midi_import import check_file_size, melody_from_file
from bot.progress import duration, plural
from bot.settings import round_defaults
from core.engine import QUORUM_MAX, ROUND_MINUTES_MAX, ROUND_MINUTES_MIN, ROUND_MINUTES_RANGE, ROUNDS_MAX, SessionSpec, edits_text
from core.instruments import GM_PROGRAMS, instrument_name, parse_instrument, suggest_instruments
from core.midi import track_to_midi
from core.music import BASE_RANGE, LENGTH_MAX, LENGTH_MIN, SCALES, TEMPO_MAX, TEMPO_MIN, key_name, parse_base, track_from_dict

log = logging.getLogger("crowdtune.bot")
SCALE_CHOICES = [app_commands.Choice(name=name.replace("_", " "), value=name) for name in SCALES]
MODE_CHOICES = [app_commands.Choice(name="rate 1-10", value="rating"), app_commands.Choice(name="A/B", value="ab")]
EVERYWHERE = dict(guilds=True, dms=True, private_channels=False)
CANNOT_START = "Sorry, I can't start that: "
# How long a melody file may take to download once /compose is acknowledged (1 MiB at most: 30 s is
# about 0.3 Mbit/s); past this its sender is told to try again instead of being left "thinking".
MELODY_DOWNLOAD_SECONDS = 30.0


def _quoted(text: str) -> str:
    """Text from a user's file (its name, its track names) made safe to show: no pings, no markup."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))[:200]


def scope_of(interaction: discord.Interaction) -> tuple[str, str]:
    """A server's shared agent, or the user's personal agent in a DM."""
    return origin_scope(interaction.guild_id, interaction.user.id), "guild" if interaction.guild_id is not None else "user"


def is_moderator(interaction: discord.Interaction, settings: dict) -> bool:
    if interaction.guild_id is None:
        return True  # in a DM the user owns their personal agent
    member = interaction.user
    if not isinstance(member, discord.Member):
        return False
    role = settings.get("mod_role")
    return member.guild_permissions.manage_guild or (role is not None and any(r.id == role for r in member.roles))


async def scope_settings(bot, scope_id: str) -> dict:
    """The scope's stored settings over the operator's defaults."""
    defaults = {
        **round_defaults(bot.settings),
        "vote_style": "reactions",
        "hide_results": False,
        "exploration": None,
        "mod_role": None,
        "anti_brigade": False,
        "member_days": 0,  # with anti_brigade: the membership age, in whole days, a round asks of its voters
        "share_learning": False,  # start from what the scopes that opted in learned, and share this one's
    }
    return {**defaults, **await bot.conductor.store.scope_settings(scope_id)}


class Sessions(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self.store = bot.conductor.store

    @app_commands.command(name="compose", description="Start composing here: each round the agent edits the track and you rate it")
    @app_commands.allowed_contexts(**EVERYWHERE)
    @app_commands.describe(
        base=f"base note, {BASE_RANGE}: such as C4, F#3, Bb2 or a MIDI number",
        scale="the scale the melody uses",
        length="notes in the track (4-64)",
        tempo="beats per minute (40-240)",
        mode="rate each round 1-10, or choose between two edits",
        round_minutes=f"how long each round stays open, in minutes: {ROUND_MINUTES_RANGE}",
        quorum="close a round early once this many have voted",
        rounds="how many rounds (0: endless)",
        instrument="the melody's instrument (General MIDI), such as piano, violin or flute",
        melody="start from your own melody: a MIDI file (its key, scale, length and tempo replace the options above)",
        melody_track="which track of the MIDI file holds the melody (default: the busiest)",
        aspects="ask each voter for musicality, novelty and coherence apart (rate 1-10 mode)",
    )
    @app_commands.choices(scale=SCALE_CHOICES, mode=MODE_CHOICES)
    async def compose(
        self,
        interaction: discord.Interaction,
        base: app_commands.Range[str, 1, 8] = "C4",
        scale: str = "major",
        length: app_commands.Range[int, LENGTH_MIN, LENGTH_MAX] = 8,
        tempo: app_commands.Range[int, TEMPO_MIN, TEMPO_MAX] = 120,
        mode: str = "rating",
        round_minutes: app_commands.Range[float, ROUND_MINUTES_MIN, ROUND_MINUTES_MAX] | None = None,
        quorum: app_commands.Range[int, 1, QUORUM_MAX] | None = None,
        rounds: app_commands.Range[int, 0, ROUNDS_MAX] | None = None,
        instrument: app_commands.Range[str, 1, 40] | None = None,
        melody: discord.Attachment | None = None,
        melody_track: app_commands.Range[int, 1, 10000] | None = None,
        aspects: bool = False,
    ) -> None:
        if melody is not None:
            # Downloading and reading the file can outlast the 3 s Discord allows before the first answer (a
            # slow CDN, a large file), and so can waiting for the database: acknowledge first. Privately,
            # because a deferred answer keeps the visibility chosen here and a problem with the file is for
            # its sender alone; the session is announced to the channel in a followup.
            await deferring(interaction)()
        scope_id, kind = scope_of(interaction)
        # After a restart, the channel's session may end with the round it takes back, and the opening learns from it.
        await after_pickup(self.bot, interaction, scope_id=scope_id)
        settings = await scope_settings(self.bot, scope_id)
        # Everything that can be checked without the melody's bytes is checked before they are downloaded.
        try:
            program = parse_instrument(instrument or "piano")
            if melody is not None:
                check_file_size(melody.size, _quoted(melody.filename))
            elif melody_track is not None:
                raise ValueError("melody_track names a track of the MIDI file given as melody")
            if aspects and mode == "ab":
                raise ValueError("the three aspects rate one version at a time: use them with the rate 1-10 mode")
            # A melody's key, scale, length and tempo replace these once it is read.
            music = dict(base=parse_base(base), scale=scale, length=length, tempo=tempo) if melody is None else {}
            spec = SessionSpec(
                **music,
                instrument=program,
                mode=mode,
                preset=settings["preset"],
                exploration=settings["exploration"],
                rounds=(settings["rounds"] if rounds is None else rounds) or None,
                round_seconds=settings["round_seconds"] if round_minutes is None else round_minutes * 60,
                quorum=settings["quorum"] if quorum is None else quorum,
                seed=interaction.id % 2**31,
            )
        except ValueError as problem:  # MusicError and InstrumentError included
            await answer_privately(interaction, f"{CANNOT_START}{problem}.")
            return
        missing = missing_permissions(interaction, "buttons" if aspects else settings["vote_style"])
        if missing:
            await answer_privately(
                interaction,
                f"I can't run rounds in this channel: {missing_text(missing)}. "
                "Ask a moderator to grant them, or use another channel.",
            )
            return
        fitted = None
        if melody is not None:
            try:
                fitted = await self._fit_melody(melody, melody_track, program if instrument else None)
                track = fitted.track
                spec = replace(spec, base=track.base, scale=track.scale, length=len(track.notes), tempo=track.tempo, instrument=track.instrument)
            except ValueError as problem:
                await answer_privately(interaction, f"{CANNOT_START}{problem}.")
                return
        # Not hide_results: /status reads the scope's setting live (sessions stored before may still hold it, unread).
        options = {"vote_style": settings["vote_style"], "aspects": aspects}
        try:
            session = await self.bot.conductor.start(
                scope_id, kind, str(interaction.channel_id), spec, actor=voter_id(interaction.user.id),
                scope_name=interaction.guild.name if interaction.guild else interaction.user.name, options=options,
                first_track=fitted.track if fitted else None,
            )
        except ValueError as problem:
            await answer_privately(interaction, f"Sorry, {problem} (`/stop`).")
            return
        announcement = compose_announcement(session, spec, kind, fitted.summary if fitted else None)
        try:
            if interaction.response.is_done():  # deferred privately (the melody, or a wait): fill that in, then announce
                read = f"Read {_quoted(melody.filename)}: t" if fitted else "T"
                await interaction.edit_original_response(content=f"{read}he session starts below.")
                await interaction.followup.send(announcement)
            else:
                await interaction.response.send_message(announcement)
        except Exception as problem:
            # The session is started: not an error to report as "nothing was changed". However its answer failed (too late
            # for Discord's 3 s, Discord unreachable or failing, refused), the channel is told what it started through the
            # outbox: its runner posts it before the first round, retried while Discord is out.
            if not isinstance(problem, discord.HTTPException) and not is_outage(problem):
                raise  # a bug: its traceback
            late = isinstance(problem, discord.NotFound) and problem.code == UNKNOWN_INTERACTION  # too late to answer (3 s)
            why = "its answer came too late for Discord" if late else f"its answer failed ({reason(problem)})"
            log.warning("/compose: session %d started, but %s; the channel is told", session.id, why)
            await self.bot.runner.store.queue_announcement(session.channel_id, announcement)
        finally:  # its followup can tell its starter why, should the rounds stop at once (DMs closed: README)
            self.bot.runner.ensure_running(session.id, interaction.followup)

    async def _fit_melody(self, melody: discord.Attachment, track_number: int | None, program: int | None):
        """The attachment's melody fitted to the track model (bot.media.midi_import); ValueError with a
        user-facing message when the file cannot be downloaded (within MELODY_DOWNLOAD_SECONDS) or used."""
        name = _quoted(melody.filename)
        try:
            async with asyncio.timeout(MELODY_DOWNLOAD_SECONDS):
                data = await melody.read()
        except TimeoutError:
            raise ValueError(f"{name} could not be downloaded in time; try again") from None
        except (discord.HTTPException, aiohttp.ClientError):
            raise ValueError(f"{name} could not be downloaded; try again") from None
        # Parsing and fitting grow with the file: off the event loop.
        return await asyncio.to_thread(melody_from_file, data, name, track_number, program)

    @compose.autocomplete("instrument")
    async def _instrument_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """General MIDI instruments whose name contains what is typed (Discord shows at most 25)."""
        return [app_commands.Choice(name=GM_PROGRAMS[p], value=GM_PROGRAMS[p]) for p in suggest_instruments(current[:40])]

    async def _session_here(self, interaction: discord.Interaction):
        session = await self.store.active_session_in(str(interaction.channel_id))
        if session is None:
            await answer_privately(interaction, "No session is running here. Start one with `/compose`.")
        return session

    async def _may_steer(self, interaction: discord.Interaction, session) -> bool:
        settings = await scope_settings(self.bot, session.scope_id)
        if session.owner == voter_id(interaction.user.id) or is_moderator(interaction, settings):
            return True
        await answer_privately(interaction, "Only the person who started this session or a moderator can do that.")
        return False

    @app_commands.command(name="stop", description="Stop the session in this channel")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def stop(self, interaction: discord.Interaction) -> None:
        session = await self._session_here(interaction)
        if session is None or not await self._may_steer(interaction, session):
            return
        await stop_session(self.bot, interaction, session)

    @app_commands.command(name="close", description="Close the current round now and move on")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def close_round(self, interaction: discord.Interaction) -> None:
        session = await self._session_here(interaction)
        if session is None or not await self._may_steer(interaction, session):
            return
        lock = self.bot.runner.steering.lock(session.id)
        await after_pickup(self.bot, interaction, lock)  # else, its round not running yet, answered with its votes open
        async with lock:  # a second /close at once finds this one's close
            state = await self.bot.runner.steering.close_now(session.id, interaction.id)
        if state in ("closing", "already"):  # answered once no later vote counts; a /stop meanwhile waits for the close
            await self.bot.runner.steering.taken(session.id, deferring(interaction))
        await answer_privately(interaction, CLOSE_ANSWERS[state])

    @app_commands.command(name="status", description="The current round and its votes so far")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def status(self, interaction: discord.Interaction) -> None:
        session = await self._session_here(interaction)
        if session is None:
            return
        # Just after a start the reactions made while the bot was down are being recounted (a few reads of Discord):
        # wait for it, acknowledged first (Discord's 3 s), rather than show the votes before it; only once per recount,
        # so a slow one does not hold every later /status too.
        notes = [] if await recounted(self.bot, [session.id], deferring(interaction)) else [STILL_RECOUNTING]  # under the answer
        ended, open_round = await rounds_ended(self.store, session)
        if open_round is not None and not self.bot.runner.steering.visible(open_round):
            open_round = None  # not posted yet: the round members see is none (as /close takes it)
        planned = session.spec.get("rounds")
        total = rounds_in_all(planned, ended, session.rounds_done)
        progress = (f"{ended} of {plural(total, 'round')}" if total else plural(ended, "round")) + " done"
        # The database gone (looked at now) or the round waiting for it (a full disk, as its channel was told): not when.
        stopped, paused = not await self.bot.runner.database.present(), waits_for_database(self.bot.runner, session.id)
        notes[:0] = [VOTING_STOPPED] if stopped else [round_waits(paused)] if paused else []
        if open_round is None:
            progress += cancelled_note(ended, session.rounds_done)  # else the open round's number says it
            await answer_privately(interaction, "\n".join([f"{progress}{'' if stopped else '; the next round is being prepared'}.", *notes]))
            return
        box = self.bot.runner.ballot_box
        count = await box.count(open_round, deferring(interaction))  # as the close will count them
        ballots, aside = await shown_votes(box, open_round, count)
        if aside:
            notes.append(set_aside_text(aside, count.member_days))
        descriptions = edits_text([p["description"] for p in open_round.plan["proposals"]])  # as its post names them
        votes = f"{len(ballots)} voted so far"
        # The scope's setting now, not the session's at its start: a moderator who turns hide_results off expects to
        # see the open round's votes (it applies at once, as anti_brigade does).
        if not (await scope_settings(self.bot, session.scope_id))["hide_results"]:
            votes += f" ({describe_votes(open_round.mode, ballots)})"
            if session.options.get("aspects"):
                votes += f"; per aspect: {describe_aspects([v.aspects for v in count.counted if v.aspects])}"
        number = round_number(open_round.index + 1, planned, ended, session.rounds_done)  # as its post names it
        # Said, so that a moderator does not take them for lost: held over the rate, or waiting for the database.
        notes[:0] = [*held_votes_note(*held_votes(box, open_round, count)), *waiting_note(box, open_round)]
        await answer_privately(interaction, "\n".join([f"{number}: {descriptions}. {votes}{'' if stopped or paused else closes_text(open_round)}. {progress}.", *notes]))

    @app_commands.command(name="stats", description="How the agent is learning: a learning curve and the best compositions")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def stats(self, interaction: discord.Interaction) -> None:
        scope_id, _ = scope_of(interaction)
        await deferring(interaction, private=False)()
        preset = (await scope_settings(self.bot, scope_id))["preset"]
        content, files = await learning_report(self.bot, scope_id, preset, str(interaction.channel_id))
        await interaction.edit_original_response(content=content, attachments=files)

    @app_commands.command(name="top", description="The best-rated compositions, to listen to")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def top(self, interaction: discord.Interaction) -> None:
        scope_id, _ = scope_of(interaction)
        await deferring(interaction, private=False)()
        best = await best_rounds(self.store, scope_id)
        if not best:
            await interaction.edit_original_response(content=await nothing_rated(self.bot, scope_id, str(interaction.channel_id)))
            return
        files, lines = [], []
        sessions, votes = await sessions_of(self.store, best), await standing_votes(self.store, best)
        for heading, rows in best:
            lines.append(heading)
            for rank, row in enumerate(rows, 1):
                winner = (row.outcome or {}).get("winner") or 0
                track = track_from_dict(row.plan["proposals"][winner]["track"])
                audio = await self.bot.renderer.render_async(track_to_midi(track), "ogg")
                files.append(discord.File(io.BytesIO(audio), f"top{'-ab' if row.mode == 'ab' else ''}-{rank}.ogg"))
                lines.append(ranked_round(rank, row, sessions[row.session_id], votes.get(row.id)))
        await interaction.edit_original_response(content="\n".join(lines), attachments=files)


STOPPED_SAID = "Stopped; I said so in the channel."
# To a /stop whose round's close (its voting over) waits for the database: it must close and count first. Not after
# round_waits, whose "this round goes on" a trial read beside "its voting is over" as two rounds' accounts.
CLOSE_WAITS = ("Its voting is over and its votes are kept: it closes and counts as soon as my operator fixes it, before the "
               "session can stop, so nothing was changed; use `/stop` again once it has closed.")


async def stop_session(bot, interaction: discord.Interaction, session) -> None:
    """/stop of a running `session` by someone who may steer it, answered with what it did (`stop_report`)."""
    store, steering = bot.conductor.store, bot.runner.steering
    lock = steering.lock(session.id)
    # Acknowledged privately while it waits (also while a round's close and summary come first, below), as it may end
    # "already ended"; the channel is then told apart.
    # Else its round, closing, has no runner yet and would be cancelled; or, open, it would be cancelled with the votes
    # stored before the restart, not those its recount of the reactions made meanwhile finds (as /status and /close count).
    waited = await after_pickup(bot, interaction, lock, session_id=session.id)
    waited = waited or interaction.response.is_done()  # acknowledged privately before (replies.too_late)
    # A second /stop at once waits for this one, then finds it stopped. From here a close that ends stops the session for
    # this one (`stopping`): its runner prepares no next round, whatever this reads.
    async with lock:
        with steering.stopping(session.id, voter_id(interaction.user.id)):
            # Read before the stop cancels the open round. An acknowledged /close (or its time up) is counted first, its
            # summary posted before the stop is said (a round closed, its summary to come, is still the one it says).
            ended, open_round = await rounds_ended(store, session, closing=lambda: steering.closed_for_stop(session.id))
            after_close = steering.voting_over(open_round)
            # A round posted after the /stop was sent is not one its sender saw (as for /close): said so, not as played.
            late = bool(open_round and open_round.message_ids) and not await steering.seen_when_asked(open_round, interaction.id)
            if after_close and not waited:
                waited = True
                await deferring(interaction)()
            try:
                stopped = await steering.stop(session.id, after_close)
            except CloseWaits as waits:  # as long as the operator takes: said now, not left "thinking..."
                await answer_privately(interaction, f"{voting_paused(waits.problem)} {CLOSE_WAITS}")
                return
    if not stopped:
        await answer_privately(interaction, ALREADY_ENDED)
        return
    bot.runner.wake(session.id)
    # The cancelled round's votes as its close would have counted them, as /status does (asking Discord may defer): those
    # the stop's own transaction cancelled, as a /strike or /forget-me right after it may void or delete one.
    count = functools.partial(bot.runner.ballot_box.count, before_asking=deferring(interaction, private=False))
    report = await stop_report(store, session, ended, open_round, lambda row: count(row, votes=stopped.cancelled.get(row.id)), late)
    await answer(interaction, STOPPED_SAID if waited else report, private=waited)
    if waited:  # a followup (no channel permission needed, as for any answer) tells everyone, as a plain /stop's does
        await interaction.followup.send(report)


def compose_announcement(session, spec: SessionSpec, kind: str, melody: str | None) -> str:
    """/compose's public line for a started `session`: whose agent, how long, the music (`melody`: the summary of a
    person's melody it starts from), the votes, and how the agent opened the track (`start_text`)."""
    agent = "this server's agent" if kind == "guild" else "your personal agent"
    length_text = plural(spec.rounds, "round") if spec.rounds else "endless rounds"
    music_text = f"from your melody ({_quoted(melody)})" if melody else f"in {key_name(spec.base, spec.scale, octave=True)}"
    votes = "A/B votes" if spec.mode == "ab" else "musicality, novelty and coherence 1-10" if session.options.get("aspects") else "ratings 1-10"
    opened = start_text(session, "this server's ratings" if kind == "guild" else "your ratings")
    opened = f"{opened[:1].upper()}{opened[1:]}. " if opened else ""
    return (
        f"Composing with {agent}: {length_text} {music_text} on {instrument_name(spec.instrument)}, {votes}, "
        f"{duration(spec.round_seconds)} per round. {opened}The first round is coming up."
    )


async def setup(bot) -> None:
    await bot.add_cog(Sessions(bot))

