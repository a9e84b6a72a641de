"""Bad input, generated (hypothesis) for every command-line argument and every slash-command option:
out of range, wrong type, huge, empty, unicode. Each gets one clear error, nothing crashes, and the
database does not change (or is never created)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import logging
import math
import os
import sqlite3
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
from fakediscord import FakeDiscord
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_security import raw_slash

from test_reliability_kill import record_figures

from bot.bench import PERF_BENCHMARKS
from bot.cli import _one_of, main
from bot.errors import ExitCode
from core.agent import PRESETS
from core.music import SCALES, parse_base

TRIED: Counter[str] = Counter()  # bad inputs tried, for docs/RELIABILITY.md


@pytest.fixture(scope="module", autouse=True)
def report_tried():
    yield
    record_figures("bad_input", **TRIED)

# Text as argv can carry it: any character but NUL (a C string ends there), including the lone
# surrogates Python makes of bytes that are not UTF-8.
ARGV_TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)) | st.sampled_from("\udc80\udcff"), max_size=300
)
HUGE = st.integers(min_value=10**18, max_value=10**80)


def _is_int_in(text: str, low: int, high: int) -> bool:
    try:
        return low <= int(text) <= high
    except ValueError:
        return False


def bad_int(low: int, high: int):
    return st.one_of(
        st.integers(max_value=low - 1).map(str),
        st.integers(min_value=high + 1).map(str),
        HUGE.map(str),
        HUGE.map(lambda n: str(-n)),
        st.floats(allow_nan=True).map(str),
        st.just(""),
        ARGV_TEXT,
    ).filter(lambda text: not _is_int_in(text, low, high))


def bad_choice(valid):
    """Text the option refuses: not one of `valid`, nor read as one (in any case: bot.cli._one_of, every such option's type)."""
    parse = _one_of("the option", valid)

    def refused(text: str) -> bool:
        try:
            parse(text)
        except argparse.ArgumentTypeError:
            return True
        return False

    return st.one_of(st.just(""), ARGV_TEXT, st.sampled_from([v.upper() + "!" for v in valid] + [v.upper() + " " for v in valid])).filter(refused)


def _is_note(text: str) -> bool:
    try:
        parse_base(text)
        return True
    except ValueError:
        return False


def _is_float_in(text: str, low: float, high: float) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and low <= value <= high


MUSIC = {
    "--base": st.one_of(st.just(""), ARGV_TEXT, st.integers(min_value=128).map(str), st.integers(max_value=-1).map(str)).filter(
        lambda t: not _is_note(t)
    ),
    "--scale": bad_choice(list(SCALES)),
    "--length": bad_int(4, 64),
    "--tempo": bad_int(40, 240),
    "--mode": bad_choice(["rating", "ab"]),
    "--preset": bad_choice(list(PRESETS)),
    "--rounds": bad_int(1, 10_000),
    "--seed": bad_int(0, 2**31 - 1),
}
# (the command and its required arguments, the option, bad values)
ARGUMENTS = (
    # `run --rounds 0` is an endless session (as CROWDTUNE_ROUNDS=0 is); a simulation must end.
    [(["run"], option, values) for option, values in {**MUSIC, "--rounds": bad_int(0, 10_000)}.items()]
    + [(["simulate", "--out", "sim"], option, values) for option, values in MUSIC.items()]
    + [
        (["run"], "--db", st.just("")),
        (["run"], "--out", st.just("")),
        (["simulate", "--out", "sim"], "--db", st.just("")),
        (["simulate"], "--out", st.just("")),
        (["simulate", "--out", "sim"], "--noise", st.one_of(st.just(""), ARGV_TEXT, st.sampled_from(["nan", "inf", "-1", "1e400"])).filter(
            lambda t: not _is_float_in(t, 0.0, 10.0)
        )),
        (["simulate", "--out", "sim"], "--rater", st.one_of(st.just(""), ARGV_TEXT.filter(lambda t: ":" not in t)).filter(
            lambda t: t.strip() not in ("crowd", "theorist", "calm", "energetic", "harmonist", "groove", "melodist", "troll", "brigader")
        )),
        (["render", "--out-dir", "audio"], "FILE", st.one_of(st.just(""), ARGV_TEXT)),
        (["render", "missing.mid"], "--out-dir", st.just("")),
        (["render", "missing.mid", "--out-dir", "audio"], "--format", bad_choice(["ogg", "wav"])),
        (["export", "--out", "x.zip"], "--db", st.one_of(st.just(""), ARGV_TEXT)),
        (["export", "--db", "existing.db"], "--out", st.just("")),
        (["export", "--db", "existing.db", "--out", "x.zip"], "--scope", st.one_of(st.just(""), ARGV_TEXT)),
        # every benchmark's name is valid: hypothesis draws text from the source's string constants too, and a
        # valid name would run that benchmark (minutes) instead of being refused
        (["bench"], "WHICH", bad_choice(["learning", *PERF_BENCHMARKS])),
        (["bench", "learning"], "--seeds", bad_int(1, 1000)),
        (["bench", "learning"], "--rounds", bad_int(1, 10_000)),
        (["bench", "learning"], "--out", st.just("")),
        # (and no option that is valid without a command: --help, --version)
        ([], "COMMAND", bad_choice(["run", "sessions", "simulate", "render", "export", "copy-db", "bench", "-h", "--help", "--version"])),
    ]
)


@contextlib.contextmanager
def in_empty_folder():
    """A fresh working folder, no token, no CROWDTUNE_* settings, no input: what the command
    writes (a database, rounds) would show up here."""
    saved_env, saved_cwd, saved_stdin = dict(os.environ), os.getcwd(), sys.stdin
    with tempfile.TemporaryDirectory() as folder:
        for key in [k for k in os.environ if k.startswith("CROWDTUNE_") or k == "DISCORD_TOKEN"]:
            del os.environ[key]
        os.chdir(folder)
        sys.stdin = io.StringIO("")
        try:
            yield Path(folder)
        finally:
            os.chdir(saved_cwd)
            sys.stdin = saved_stdin
            os.environ.clear()
            os.environ.update(saved_env)


def run_cli(argv: list[str]) -> tuple[int, str]:
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, stderr.getvalue()


def make_existing_db(folder: Path) -> str:
    """A crowdtune database with a scope in it; returns the file's digest."""
    from storage import open_store

    async def create():
        store = await open_store(folder / "existing.db")
        await store.ensure_scope("guild:1", "guild")
        await store.close()

    asyncio.run(create())
    return hashlib.sha256((folder / "existing.db").read_bytes()).hexdigest()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@example(case=(["export", "--out", "x.zip"], "--db", "/"))  # a folder without a name: once a traceback
@given(case=st.sampled_from(ARGUMENTS).flatmap(lambda c: c[2].map(lambda value: (c[0], c[1], value))))
def test_every_command_line_argument_rejects_bad_values_clearly_and_writes_nothing(case):
    command, option, value = case
    if option in ("FILE", "WHICH", "COMMAND"):
        argv = [*command[:1], value, *command[1:]] if command else [value]
    else:
        argv = [*command, option, value]
    assume(not (option == "FILE" and value.startswith("-")))  # an option, not a file
    with in_empty_folder() as folder:
        digest = make_existing_db(folder) if "existing.db" in command else None
        code, stderr = run_cli(argv)
        TRIED["command_line_arguments"] += 1
        lines = stderr.strip().splitlines()
        assert code in (ExitCode.USAGE, ExitCode.DATABASE, ExitCode.FILE, ExitCode.NO_SOUNDFONT), (argv, code, stderr)
        assert len(lines) == 1 and "Traceback" not in stderr, (argv, stderr)  # splitlines: \\x85, \\u2028 too
        assert any(word in lines[0] for word in ("error", "cannot", "no such", "is a folder", "no database")), (argv, stderr)
        created = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "existing.db")
        assert created == [], (argv, created)
        if digest:
            assert hashlib.sha256((folder / "existing.db").read_bytes()).hexdigest() == digest


# -- slash-command options ----------------------------------------------------------------------


class LiveBot:
    """The bot and the local Discord server on an event loop of their own, in a thread, so that
    hypothesis (synchronous) can send it one malformed command after another."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.errors: list[logging.LogRecord] = []
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    def __enter__(self) -> LiveBot:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the bot did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(30)

    def call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _main(self) -> None:
        from bot.conductor import Conductor
        from bot.discord.app import CrowdtuneBot
        from bot.media.render import Renderer
        from bot.settings import Settings
        from storage import open_store

        handler = logging.Handler(logging.ERROR)
        handler.emit = self.errors.append
        for name in ("crowdtune", "discord"):
            logging.getLogger(name).addHandler(handler)
        self._stop = self.loop.create_future()
        async with FakeDiscord() as server:
            self.server = server
            self.mod = server.add_user("mod")
            self.guild = server.add_guild("Lab", owner=self.mod)
            self.channel = server.add_text_channel(self.guild, "music")
            self.role = server.add_role(self.guild, "helpers")
            self.dm = server.dm_channel(self.mod)
            self.db = self.folder / "bot.db"
            store = await open_store(self.db)
            with Renderer.open() as renderer:
                bot = CrowdtuneBot(Settings(_env_file=None), Conductor(store), renderer, guild_ready_timeout=0.05)
                try:
                    async with server.connect(bot):
                        await bot.wait_until_commands_synced()
                        self._ready.set()
                        await self._stop
                finally:
                    await store.close()
                    for name in ("crowdtune", "discord"):
                        logging.getLogger(name).removeHandler(handler)

    def fingerprint(self) -> dict:
        with sqlite3.connect(self.db) as raw:
            tables = [t for (t,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: sorted(map(repr, raw.execute(f"SELECT * FROM {t}"))) for t in tables}

    def command(self, name: str, options: list[dict], where=None) -> dict:
        async def send():
            interaction = await raw_slash(self.server, self.mod, where or self.channel, name, options)
            return await interaction.wait_response()

        return self.call(send())


@pytest.fixture(scope="module")
def live_bot(tmp_path_factory):
    with LiveBot(tmp_path_factory.mktemp("live")) as live:
        yield live


STRING, INTEGER, BOOLEAN, USER, ROLE, NUMBER = 3, 4, 5, 6, 8, 10
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def bad_option_values(spec: dict):
    """Values the option's declaration forbids: a wrong type, out of range, too long or empty, not a choice."""
    kind, choices = spec["type"], [c["value"] for c in spec.get("choices") or []]
    if kind in (INTEGER, NUMBER):
        low, high = spec.get("min_value", -(2**53)), spec.get("max_value", 2**53)
        numbers = st.one_of(
            st.integers(max_value=math.floor(low) - 1), st.integers(min_value=math.ceil(high) + 1),
            st.floats(max_value=low, exclude_max=True), st.floats(min_value=high, exclude_min=True),
            st.sampled_from([math.nan, math.inf, -math.inf]),
        )
        wrong = JUNK.filter(lambda v: isinstance(v, bool) or not isinstance(v, (int, float)))
        if kind == INTEGER:
            wrong = st.one_of(wrong, st.floats().filter(lambda f: not f.is_integer()))
        return st.one_of(numbers, wrong)
    if kind == STRING:
        low, high = spec.get("min_length", 0), spec.get("max_length", 6000)
        lengths = st.one_of(st.text(min_size=high + 1, max_size=high + 200), st.just("" if low > 0 else "x" * 6001))
        wrong_type = JUNK.filter(lambda v: not isinstance(v, str))
        if choices:
            return st.one_of(lengths, wrong_type, st.text(max_size=40).filter(lambda t: t not in choices))
        return st.one_of(lengths, wrong_type)
    if kind == BOOLEAN:
        return JUNK.filter(lambda v: not isinstance(v, bool))
    # a user or a role: not a snowflake at all, or one that names nobody
    return st.one_of(JUNK.filter(lambda v: not (isinstance(v, str) and v.isdigit())), st.integers(min_value=1, max_value=10**19).map(str))


def slash_cases(live: LiveBot):
    commands = live.server.commands[None]
    return [(command["name"], spec) for command in commands for spec in command.get("options") or []]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_slash_option_rejects_bad_values_clearly_and_changes_nothing(live_bot, data):
    name, spec = data.draw(st.sampled_from(slash_cases(live_bot)), label="option")
    value = data.draw(bad_option_values(spec), label="value")
    options = [{"name": spec["name"], "type": spec["type"], "value": value}]
    if name == "strike" and spec["name"] != "user":
        options.append({"name": "user", "type": USER, "value": str(live_bot.mod.id)})
    before = live_bot.fingerprint()
    reply = live_bot.command(name, options)
    TRIED["slash_options"] += 1
    text = reply["data"]["content"]
    assert reply["type"] == 4 and reply["data"]["flags"] & 64, reply  # answered at once, privately
    assert text.startswith("Sorry") and "went wrong" not in text, text
    assert len(text) < 400 and "\n" not in text
    assert live_bot.fingerprint() == before
    assert not live_bot.errors, [r.getMessage() for r in live_bot.errors]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=st.text(min_size=1, max_size=8).filter(lambda t: not _is_note(t)), where=st.sampled_from(["server", "dm"]))
def test_compose_refuses_a_base_note_that_is_not_a_note(live_bot, base, where):
    """Within the declared length, so Discord's client lets it through: the bot's own check answers."""
    async def compose():
        channel = live_bot.channel if where == "server" else live_bot.dm
        interaction = await live_bot.server.slash(live_bot.mod, channel, "compose", {"base": base}, check_permissions=False)
        return await interaction.wait_response()

    before = live_bot.fingerprint()
    reply = live_bot.call(compose())
    TRIED["base_notes_through_discord"] += 1
    assert reply["data"]["flags"] & 64 and reply["data"]["content"].startswith("Sorry, I can't start that"), reply
    assert live_bot.fingerprint() == before
    assert not live_bot.errors


@pytest.mark.parametrize("base", ["200", "127", "0", "C9", "A0"])
def test_compose_refuses_a_base_note_out_of_range_stating_the_range_its_option_declares(live_bot, base):
    """The base's valid range (room for an octave below and two above) is narrower than MIDI's 0-127: the
    refusal states it, and so does the option's description, from the same constants."""
    from core.music import BASE_MAX, BASE_MIN, note_name

    valid = f"{note_name(BASE_MIN)}-{note_name(BASE_MAX)} (MIDI {BASE_MIN}-{BASE_MAX})"
    [declared] = [o for c in live_bot.server.commands[None] if c["name"] == "compose" for o in c["options"] if o["name"] == "base"]
    assert valid in declared["description"], declared

    async def compose():
        interaction = await live_bot.server.slash(live_bot.mod, live_bot.channel, "compose", {"base": base}, check_permissions=False)
        return await interaction.wait_response()

    before = live_bot.fingerprint()
    reply = live_bot.call(compose())
    text = reply["data"]["content"]
    assert reply["data"]["flags"] & 64 and text.startswith("Sorry, I can't start that") and valid in text and "0-127" not in text, text
    assert live_bot.fingerprint() == before
    assert not live_bot.errors


def test_after_all_that_the_bot_still_works(live_bot):
    reply = live_bot.command("compose", [{"name": "rounds", "type": INTEGER, "value": 2}])
    assert reply["data"]["content"].startswith("Composing")
    assert not live_bot.errors
