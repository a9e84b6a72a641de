"""Crashes: the bot process and `crowdtune run` in the terminal are SIGKILLed at random points of
rounds, again and again; after every restart no acknowledged vote is lost, no round is rewarded
twice, no round is posted twice, and the session goes on.

The kill points come from a seeded RNG (CROWDTUNE_KILL_SEED), so a failure replays. Several lanes
(each its own local Discord server, database and bot process) run at once to keep the suite fast.
Figures go to stdout and, with CROWDTUNE_FIGURES=path, to a JSON-lines file (docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbrows import query
from fakediscord import HANG_SECONDS, Channel, FakeDiscord, Guild, User



CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
SEED = int(os.environ.get("CROWDTUNE_KILL_SEED", "20250301"))
BOT_KILLS = int(os.environ.get("CROWDTUNE_BOT_KILLS", "52"))
TERMINAL_KILLS = int(os.environ.get("CROWDTUNE_TERMINAL_KILLS", "52"))
KEYCAPS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟"]
POST = re.compile(r"^\*\*Round (\d+)(?: of \d+)?\*\*:")
BOT_KILL_POINTS = ("startup", "votes", "votes", "close", "render", "post")  # kills among arriving votes twice as often


def record_figures(name: str, **figures) -> None:
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    target = os.environ.get("CROWDTUNE_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": name, **figures}) + "\n")


def rows(db: Path | str, sql: str, params=()) -> list[tuple]:
    return query(db, sql, params)


def learned(db: Path | str) -> int:
    """How many ratings the scopes' models hold: one per closed round after each session's first (the
    models' JSON read here, the same on both backends)."""
    return sum(json.loads(data)["count"] for (data,) in rows(db, "SELECT data FROM models"))


async def eventually(check, what: str, timeout: float = HANG_SECONDS):
    """Poll until check() returns a truthy value (the bot's database cannot notify us)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.03)


# -- the bot ------------------------------------------------------------------------------------


@dataclass
class BotLane:
    """One server, one channel, one database and the bot process being killed over and over."""

    number: int
    style: str  # "reactions" or "buttons"
    server: FakeDiscord
    guild: Guild
    channel: Channel
    mod: User
    voters: list[User]
    folder: Path
    rng: random.Random
    location: str | None = None  # the database: a postgresql:// URL, or None for bot.db in the folder
    process: asyncio.subprocess.Process | None = None
    kills: int = 0
    closing: set[int] = field(default_factory=set)  # round indexes a /close was sent for
    acked: list[tuple[int, int, float | None]] = field(default_factory=list)  # buttons: (round, user, rating or withdrawn)
    unsure: set[tuple[int, int]] = field(default_factory=set)  # buttons: (round, user) whose last press was not answered
    kill_points: dict[str, int] = field(default_factory=dict)
    checked_at_restarts: int = 0  # votes compared right after a restart

    @property
    def db(self) -> Path | str:
        return self.location or self.folder / "bot.db"

    async def start(self) -> None:
        identified = self.server.events_received["IDENTIFY"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
        env.update(
            DISCORD_TOKEN=self.server.bot_token,
            CROWDTUNE_DB=str(self.db),
            CROWDTUNE_API_BASE=self.server.api_base,
            CROWDTUNE_GATEWAY_URL=self.server.gateway_url,
            CROWDTUNE_GUILD_READY_TIMEOUT="0.05",
            CROWDTUNE_ROUND_SECONDS="3600",  # rounds close by /close only
            CROWDTUNE_VOTE_BURST="1000",  # these voters are fast on purpose; rate limiting has its own test
        )
        log = open(self.folder / "bot.log", "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                CROWDTUNE, "run", cwd=self.folder, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )
        finally:
            log.close()
        await self.server.wait_until(
            lambda: self.server.events_received["IDENTIFY"] > identified and any(s.connected for s in self.server.sessions)
            and self.server.commands.get(None),  # synced after the first start (and kept: unchanged since)
            what=f"lane {self.number}: the bot connected and its commands synced",
        )

    async def kill(self) -> None:
        self.process.kill()  # SIGKILL
        await self.process.wait()
        self.kills += 1

    async def stop(self) -> None:
        self.process.terminate()
        await asyncio.wait_for(self.process.wait(), 30)

    def log_tail(self) -> str:
        return (self.folder / "bot.log").read_bytes()[-4000:].decode(errors="replace")

    @contextlib.asynccontextmanager
    async def watched(self):
        """A block that drives the bot: its log is printed if the block fails, and the bot is killed if still running."""
        try:
            yield
        except BaseException:
            print(f"lane {self.number} ({self.style}) failed after {self.kills} kills; bot log:\n{self.log_tail()}")
            raise
        finally:
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
                await self.process.wait()

    # -- what the server shows

    def posts(self) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {}
        for message in self.server.messages(self.channel):
            match = POST.match(message["content"])
            if message["author_id"] == self.server.bot_user.id and match:
                found.setdefault(int(match[1]) - 1, []).append(message)
        return found

    def reactions_of(self, message_id: int) -> dict[str, float]:
        """Each voter's vote reaction on a round's message: the truth the database must match."""
        message = self.server.message(message_id)
        voters = {}
        for emoji, users in message["reactions"].items():
            if emoji in KEYCAPS:
                for user_id in users:
                    if user_id != self.server.bot_user.id:
                        voters[f"user:{user_id}"] = float(KEYCAPS.index(emoji) + 1)
        return voters

    def my_reaction(self, message_id: int, user: User) -> str | None:
        reactions = self.server.message(message_id)["reactions"]
        return next((e for e, users in reactions.items() if e in KEYCAPS and user.id in users), None)

    # -- acting

    async def slash(self, name: str, **options) -> dict:
        interaction = await self.server.slash(self.mod, self.channel, name, options, check_permissions=False)
        response = await interaction.wait_response()
        if interaction.deferred:  # "thinking..." first (a /close waits for its re-read): the answer fills it in
            return {"data": await interaction.wait_original()}
        return response

    async def current_post(self) -> tuple[int, dict]:
        index = max(self.closing, default=-1) + 1
        post = await self.server.wait_until(
            lambda: (self.posts().get(index) or [None])[0], what=f"lane {self.number}: round {index + 1} posted"
        )
        return index, post

    async def vote_once(self, index: int, post: dict, answered: bool = True) -> None:
        user = self.rng.choice(self.voters)
        if self.style == "reactions":
            mine = self.my_reaction(post["id"], user)
            if mine is not None and self.rng.random() < 0.3:
                await self.server.unreact(user, post["id"], mine)
            else:
                new = self.rng.choice([k for k in KEYCAPS if k != mine])
                actions = [(user, post["id"], mine, False)] if mine else []
                await self.server.react_many([*actions, (user, post["id"], new, True)])
            return
        value = "x" if self.rng.random() < 0.25 else str(self.rng.randint(1, 10))
        await self.press(index, post, user, value, answered)

    async def press(self, index: int, post: dict, user: User, value: str, answered: bool = True) -> None:
        custom_id = next(
            c["custom_id"] for row in post["components"] for c in row["components"] if c["custom_id"].endswith(f":{value}")
        )
        interaction = await self.server.press_button(user, post["id"], custom_id)
        if not answered:
            self.unsure.add((index, user.id))
            return
        reply = (await interaction.wait_response())["data"]["content"]
        if reply.startswith("Your rating:"):
            self.acked.append((index, user.id, float(value)))
        elif reply.startswith("Your vote is withdrawn") or reply.startswith("You had no vote"):
            self.acked.append((index, user.id, None))
        else:
            raise AssertionError(f"lane {self.number}: unexpected answer {reply!r}")
        self.unsure.discard((index, user.id))

    def standing_acked(self, index: int) -> dict[int, float | None]:
        standing: dict[int, float | None] = {}
        for round_index, user_id, value in self.acked:
            if round_index == index:
                standing[user_id] = value
        return standing

    async def make_sure_someone_voted(self, index: int, post: dict) -> None:
        if self.style == "reactions":
            if not self.reactions_of(post["id"]):
                await self.server.react(self.voters[0], post["id"], self.rng.choice(KEYCAPS))
        elif not any(v is not None for v in self.standing_acked(index).values()):
            await self.press(index, post, self.voters[0], str(self.rng.randint(1, 10)))

    async def finish_closes(self) -> None:
        """/close until it is acknowledged, for every round a close was asked for: as a person would
        when a kill swallowed the answer (one acknowledged while the round was being posted closes it once posted)."""
        for index in sorted(self.closing):
            while rows(self.db, "SELECT status FROM rounds WHERE idx = ?", (index,)) == [("open",)]:
                reply = await self.slash("close")
                if reply["data"]["content"].startswith(("Closing", "The next round is being posted; I'll close it")):
                    break
                await asyncio.sleep(0.1)

    async def settle_unsure(self, index: int, post: dict) -> None:
        for round_index, user_id in sorted(self.unsure):
            if round_index == index:
                user = next(u for u in self.voters if u.id == user_id)
                await self.press(index, post, user, str(self.rng.randint(1, 10)))

    async def check_after_restart(self, index: int, post: dict) -> None:
        """Right after a restart, before anyone votes again: the open round holds every vote."""
        if self.style == "reactions":
            await eventually(lambda: self.stored_votes(index) == self.reactions_of(post["id"]), f"round {index + 1} reconciled")
            self.checked_at_restarts += len(self.reactions_of(post["id"]))
        else:
            events = set(rows(self.db, "SELECT r.idx, e.voter, e.rating FROM vote_events e JOIN rounds r ON r.id = e.round_id"))
            acked = [(i, f"user:{u}", v) for i, u, v in self.acked if i == index and v is not None]
            assert set(acked) <= events, f"lane {self.number}: an acknowledged vote is missing after a restart"
            self.checked_at_restarts += len(acked)

    # -- one cycle: start, act, kill at a random point

    async def cycle(self) -> None:
        point = self.rng.choice(BOT_KILL_POINTS)
        self.kill_points[point] = self.kill_points.get(point, 0) + 1
        await self.start()
        if point == "startup":  # while it resumes: reconciling, adopting a post, rendering
            await asyncio.sleep(self.rng.uniform(0.0, 1.2))
            await self.kill()
            return
        await self.finish_closes()
        index, post = await self.current_post()
        await self.check_after_restart(index, post)
        if self.style == "buttons":
            await self.settle_unsure(index, post)
        if point == "votes":
            for _ in range(self.rng.randint(1, 6)):
                await self.vote_once(index, post)
            await self.vote_once(index, post, answered=False)
            await self.kill()
            return
        for _ in range(self.rng.randint(0, 3)):
            await self.vote_once(index, post)
        await self.make_sure_someone_voted(index, post)
        self.closing.add(index)
        if point == "close":  # while the round closes and the Q-table updates
            await self.server.slash(self.mod, self.channel, "close", check_permissions=False)
            await asyncio.sleep(self.rng.uniform(0.0, 0.25))
            await self.kill()
            return
        await self.finish_closes()
        if point == "render":  # the summary is out, the next round renders
            await self.server.wait_until(
                lambda: any(m["content"].startswith(f"**Round {index + 1} closed") for m in self.server.messages(self.channel)),
                what="the close summary",
            )
        else:  # "post": the next round's message is on Discord; the bot may not have recorded it yet
            await self.server.wait_until(lambda: self.posts().get(index + 1), what="the next round posted")
        await self.kill()

    async def finish(self) -> dict:
        """The last start: the session goes on (a round closes and the next is posted), then the checks."""
        await self.start()
        await self.finish_closes()
        index, post = await self.current_post()
        await self.check_after_restart(index, post)
        if self.style == "buttons":
            await self.settle_unsure(index, post)
        await self.vote_once(index, post)
        await self.make_sure_someone_voted(index, post)
        self.closing.add(index)
        await self.finish_closes()
        await self.server.wait_until(lambda: self.posts().get(index + 1), what="the session going on")
        await eventually(
            lambda: rows(self.db, "SELECT message_ids FROM rounds WHERE idx = ?", (index + 1,)) not in ([], [("[]",)]),
            "the new round's post recorded",
        )
        if self.style == "reactions":
            next_post = self.posts()[index + 1][0]
            await self.server.react(self.voters[1], next_post["id"], "7️⃣")  # a vote on the new round, still open
            await eventually(
                lambda: self.stored_votes(index + 1) == self.reactions_of(next_post["id"]), "the open round's vote"
            )
        await self.stop()
        return self.verify()

    def stored_votes(self, index: int) -> dict[str, float]:
        return dict(
            rows(
                self.db,
                "SELECT v.voter, v.rating FROM votes v JOIN rounds r ON r.id = v.round_id "
                "WHERE r.idx = ? AND v.retracted = 0 AND v.voided = 0",
                (index,),
            )
        )

    def verify(self) -> dict:
        rounds = rows(self.db, "SELECT id, idx, status, message_ids FROM rounds ORDER BY idx")
        posts = self.posts()
        # Every round posted once, and the post is the one the database knows.
        assert all(len(found) == 1 for found in posts.values()), {i: len(p) for i, p in posts.items() if len(p) > 1}
        for _, index, status, message_ids in rounds:
            if index in posts:
                assert json.loads(message_ids) == [str(posts[index][0]["id"])], f"round {index + 1}: post not recorded"
        assert not [r for r in rounds if r[2] == "cancelled"]
        checked = 0
        for _, index, status, _ in rounds:
            if index not in posts:
                continue
            stored = self.stored_votes(index)
            if self.style == "reactions":
                expected = self.reactions_of(posts[index][0]["id"])
                assert stored == expected, f"lane {self.number} round {index + 1}: stored {stored}, reactions {expected}"
                checked += len(expected)
            else:
                for user_id, value in self.standing_acked(index).items():
                    if (index, user_id) not in self.unsure:
                        assert stored.get(f"user:{user_id}") == value, f"lane {self.number} round {index + 1} user {user_id}"
        if self.style == "buttons":
            events = set(rows(self.db, "SELECT r.idx, e.voter, e.rating FROM vote_events e JOIN rounds r ON r.id = e.round_id WHERE e.kind != 'retract'"))
            for index, user_id, value in self.acked:
                if value is not None:
                    assert (index, f"user:{user_id}", value) in events, f"acknowledged vote lost: round {index + 1}, {value}"
                    checked += 1
        closed = [r for r in rounds if r[2] == "closed"]
        voted = rows(self.db, "SELECT COUNT(DISTINCT v.round_id) FROM votes v JOIN rounds r ON r.id = v.round_id "
                              "WHERE r.status = 'closed' AND v.retracted = 0 AND v.voided = 0")[0][0]
        assert voted == len(closed), "every closed round had a vote"
        # Rewarded exactly once: each closed rating round after the first (which measures the new track) adds
        # one observation to the scope's model.
        assert learned(self.db) == max(0, len(closed) - 1)
        assert rows(self.db, "SELECT rounds_done, status FROM sessions") == [(len(closed), "active")]
        assert len(closed) >= len(self.closing) - 1 and len([r for r in rounds if r[2] == "open"]) == 1
        return {"kills": self.kills, "rounds_closed": len(closed), "votes_checked": checked,
                "votes_checked_after_restarts": self.checked_at_restarts}


async def make_bot_lane(stack, number: int, style: str, tmp_path: Path, location: str | None = None) -> BotLane:
    server = await stack.enter_async_context(FakeDiscord())
    mod = server.add_user("mod")
    guild = server.add_guild(f"Lab {number}", owner=mod)
    channel = server.add_text_channel(guild, "music")
    voters = [server.add_user(f"voter{i}") for i in range(6)]
    for user in voters:
        server.add_member(guild, user)
    folder = tmp_path / f"lane{number}"
    folder.mkdir()
    return BotLane(number, style, server, guild, channel, mod, voters, folder, random.Random(SEED * 100 + number), location)


async def run_lanes(lanes: list, kills: int, run_lane) -> tuple[list[dict], dict[str, int]]:
    """Share the kills between the lanes and run them at once (one lane failing stops the others);
    each lane's results, and how often each kill point was hit over all of them."""
    shares = [kills // len(lanes) + (1 if n < kills % len(lanes) else 0) for n in range(len(lanes))]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run_lane(lane, share)) for lane, share in zip(lanes, shares)]
    points: dict[str, int] = {}
    for lane in lanes:
        for point, count in lane.kill_points.items():
            points[point] = points.get(point, 0) + count
    return [task.result() for task in tasks], points


async def run_bot_lane(lane: BotLane, kills: int) -> dict:
    async with lane.watched():
        await lane.start()
        if lane.style == "buttons":
            assert "Updated" in (await lane.slash("config", vote_style="buttons"))["data"]["content"]
        assert "Composing" in (await lane.slash("compose", rounds=0))["data"]["content"]
        await lane.kill()  # the first kill: right after /compose, before the first round is out
        while lane.kills < kills:
            await lane.cycle()
        return await lane.finish()


async def test_sigkill_the_bot_at_random_points_loses_no_vote_and_rewards_each_round_once(tmp_path, postgres_server):
    started = time.monotonic()
    # Both vote styles on both backends: a SQLite file in the lane's folder, or a PostgreSQL database.
    lanes_wanted = [("reactions", None), ("buttons", None), ("reactions", "postgresql"), ("buttons", "postgresql")]
    async with contextlib.AsyncExitStack() as stack:
        lanes = [
            await make_bot_lane(stack, n, style, tmp_path, postgres_server.new_database() if backend else None)
            for n, (style, backend) in enumerate(lanes_wanted)
        ]
        results, points = await run_lanes(lanes, BOT_KILLS, run_bot_lane)
    kills = sum(r["kills"] for r in results)
    assert kills >= BOT_KILLS
    record_figures(
        "bot_sigkill",
        kills=kills,
        kill_points=points,
        rounds_closed=sum(r["rounds_closed"] for r in results),
        votes_checked=sum(r["votes_checked"] for r in results),
        votes_checked_after_restarts=sum(r["votes_checked_after_restarts"] for r in results),
        votes_lost=0,
        seconds=round(time.monotonic() - started, 1),
    )


# -- the terminal -------------------------------------------------------------------------------

TERMINAL_KILL_POINTS = ("startup", "render", "vote", "vote", "between")


@dataclass
class TerminalLane:
    """`crowdtune run` in the terminal with ratings from a pipe, killed over and over."""

    number: int
    folder: Path
    rng: random.Random
    kills: int = 0
    runs: int = 0
    acked: dict[int, float] = field(default_factory=dict)  # round index -> the rating whose summary was printed
    resumed: int = 0
    kill_points: dict[str, int] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.folder / "ct.db"

    async def spawn(self, audio: bool):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
        args = ["run", "--rounds", "10000", "--db", str(self.db), "--out", str(self.folder / "rounds")]
        self.runs += 1
        return await asyncio.create_subprocess_exec(
            CROWDTUNE, *args, *([] if audio else ["--no-audio"]), cwd=self.folder, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )

    async def cycle(self, final: bool = False) -> None:
        point = "final" if final else self.rng.choice(TERMINAL_KILL_POINTS)
        self.kill_points[point] = self.kill_points.get(point, 0) + 1
        process = await self.spawn(audio=self.rng.random() < 0.5)
        screen = Screen(process.stdout)
        try:
            if point == "startup":
                await asyncio.sleep(self.rng.uniform(0.0, 0.6))
                return
            rate_first = 2 if final else self.rng.randint(0, 2)
            for rated in range(rate_first + 1):
                number = await screen.next_round()
                if rated == rate_first and point == "render":  # the round's files are being written
                    await asyncio.sleep(self.rng.uniform(0.0, 0.15))
                    return
                await screen.prompt()
                if rated == rate_first and final:
                    process.stdin.write(b"q\n")  # stop cleanly: the round stays open
                    await process.stdin.drain()
                    assert await asyncio.wait_for(process.wait(), 30) == 0, (await process.stderr.read()).decode()
                    return
                rating = self.rng.randint(1, 10)
                process.stdin.write(f"{rating}\n".encode())
                await process.stdin.drain()
                if rated == rate_first and point == "vote":  # storing the vote, closing, updating the Q-table
                    await asyncio.sleep(self.rng.uniform(0.0, 0.06))
                    return
                await screen.summary()
                self.acked[number - 1] = float(rating)
            # "between": the summary is out; the next round is being planned and rendered
        finally:
            if screen.resumed:
                self.resumed += 1
            if process.returncode is None:
                process.kill()  # SIGKILL
                await process.wait()
                self.kills += 1

    def verify(self) -> dict:
        rounds = rows(self.db, "SELECT id, idx, status FROM rounds ORDER BY idx")
        assert [r[1] for r in rounds] == list(range(len(rounds)))
        closed = [r for r in rounds if r[2] == "closed"]
        assert len([r for r in rounds if r[2] == "open"]) == 1 and not [r for r in rounds if r[2] == "cancelled"]
        votes = dict(rows(self.db, "SELECT r.idx, v.rating FROM votes v JOIN rounds r ON r.id = v.round_id "
                                   "WHERE r.status = 'closed' AND v.retracted = 0"))
        for index, rating in self.acked.items():
            assert votes.get(index) == rating, f"terminal lane {self.number}: the acknowledged rating of round {index + 1} is lost"
        assert len(votes) == len(closed), "every closed round holds its one rating"
        assert learned(self.db) == max(0, len(closed) - 1)  # each rating learned once
        assert rows(self.db, "SELECT rounds_done, status FROM sessions") == [(len(closed), "active")], "one session, resumed every time"
        for path in (self.folder / "rounds").rglob("*"):
            if path.name.startswith("."):
                continue  # a temporary the kill left; the next run writes the file again
            if path.suffix == ".png":
                assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{path} is cut short"
            elif path.suffix == ".wav":
                data = path.read_bytes()
                assert int.from_bytes(data[4:8], "little") == len(data) - 8, f"{path} is cut short"
        return {"kills": self.kills, "rounds_closed": len(closed), "votes_checked": len(self.acked)}


class Screen:
    """What `crowdtune run` prints, read as it comes."""

    def __init__(self, stdout: asyncio.StreamReader) -> None:
        self.stdout = stdout
        self.buffer = ""
        self.resumed = False

    async def _until(self, pattern: str) -> re.Match:
        while True:
            match = re.search(pattern, self.buffer, re.MULTILINE)
            if match:
                self.buffer = self.buffer[match.end():]
                return match
            chunk = await asyncio.wait_for(self.stdout.read(4096), 30)
            if not chunk:
                raise EOFError(f"crowdtune run ended; waiting for {pattern!r} in {self.buffer!r}")
            self.buffer += chunk.decode()
            self.resumed = self.resumed or "resuming session" in self.buffer

    async def next_round(self) -> int:
        return int((await self._until(r"^round (\d+):\n"))[1])

    async def prompt(self) -> None:
        await self._until(r"your rating, 1-10\? ")

    async def summary(self) -> None:
        line = (await self._until(r"^\d+\n  (.+)\n"))[1]  # the echoed rating, then the round's summary
        assert not line.startswith("sorry"), line


async def run_terminal_lane(lane: TerminalLane, kills: int) -> dict:
    while lane.kills < kills:
        await lane.cycle()
    await lane.cycle(final=True)
    assert lane.resumed >= 1
    return lane.verify()


async def test_sigkill_crowdtune_run_in_the_terminal_loses_no_rating_and_rewards_each_round_once(tmp_path):
    started = time.monotonic()
    lanes = []
    for number in range(3):
        (tmp_path / f"terminal{number}").mkdir()
        lanes.append(TerminalLane(number, tmp_path / f"terminal{number}", random.Random(SEED * 100 + 50 + number)))
    results, points = await run_lanes(lanes, TERMINAL_KILLS, run_terminal_lane)
    kills = sum(r["kills"] for r in results)
    assert kills >= TERMINAL_KILLS
    record_figures(
        "terminal_sigkill",
        kills=kills,
        kill_points={k: v for k, v in points.items() if k != "final"},
        rounds_closed=sum(r["rounds_closed"] for r in results),
        votes_checked=sum(r["votes_checked"] for r in results),
        votes_lost=0,
        seconds=round(time.monotonic() - started, 1),
    )
