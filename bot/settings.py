"""Settings from the environment or a `.env` file (a variable in the environment wins over the same one in
`.env`: pydantic-settings' order). The token is a SecretStr: it prints as '**********'.

Every setting is checked at start (`load_settings`), so a bad value is one line and an exit code then, not a
failure at the first command (bot.errors.ExitCode). The line names the variable, the value given and where
(the environment or .env) and what the setting expects (each field's description), never a secret: not the
token, nor a URL's password. Every command that reads settings checks them all this one way, whichever it
uses; only the bot reads the token (`load_settings(CommandSettings)` leaves it out). A blank value (empty or spaces
only) is unset, in the environment and in .env alike (`_blank`), but for the token. Names are case-sensitive, as the
environment's are on Linux; one in another case, or near a setting's, or a setting given twice in .env, is refused
before any value is read (`_unread`)."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from typing import TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.discord.shards import MAX_SHARDS, ids_problem, parse_shard_ids
from bot.errors import ExitCode, StartupError, user_path, why_unreadable
from core.agent import PRESET_NAMES
from core.engine import QUORUM_MAX, ROUND_SECONDS_MAX, ROUND_SECONDS_MIN, ROUNDS_MAX
from core.words import one_of
from storage import IN_MEMORY, IN_MEMORY_GONE

_TOKEN_VARIABLES = ("DISCORD_TOKEN", "CROWDTUNE_DISCORD_TOKEN")


class Unusable(ValueError):
    """A setting's value refused for a reason the line gives after what the setting expects."""


class CommandSettings(BaseSettings):
    """Every setting but the token: what each command reads and checks. The database (CROWDTUNE_DB) and
    soundfont (CROWDTUNE_SOUNDFONT) are paths (~ expanded: user_path) or, for the database, a postgresql:// URL."""

    model_config = SettingsConfigDict(env_prefix="CROWDTUNE_", env_file=".env", extra="ignore")

    # Each description is what the setting expects, as a bad value's line says it ("expected ...").
    db: str | None = Field(default=None, description="a SQLite file's path or a postgresql:// URL")
    # `crowdtune bench scaling`'s PostgreSQL database (unset: a private server, in a source checkout).
    bench_db: str | None = Field(default=None, description="a postgresql:// URL of a database crowdtune bench scaling may fill")
    soundfont: str | None = Field(default=None, description="a .sf2 soundfont file's path")
    # Sync commands to this guild only: instant, for development.
    dev_guild_id: int | None = Field(default=None, description="a whole number (a server's id)")
    # discord.py adds paths to the API base, its query to the gateway's, the token as Authorization (no URL's user:pw@).
    api_base: str | None = Field(default=None, description="an http or https URL with a host, without user:password@, ?query or #fragment, such as http://127.0.0.1:8080/api/v10")
    gateway_url: str | None = Field(default=None, description="a ws or wss URL with a host, without user:password@, ?query or #fragment, such as ws://127.0.0.1:8080/")
    # discord.py waits this long after the last server arrives before it calls itself ready.
    guild_ready_timeout: float = Field(default=2.0, ge=0.0, le=60.0, description="a number of seconds from 0 to 60")
    # How long to keep trying to reach Discord at start (pauses of 1, 2, 4 ... 30 s) before giving up.
    connect_retry_seconds: float = Field(default=60.0, ge=0.0, le=3600.0, description="a number of seconds from 0 to 3600")
    # Round defaults for new sessions; checked as /compose would check them (core.engine.SessionSpec), its
    # round_minutes in seconds.
    round_seconds: float = Field(
        default=300.0, description=f"a number of seconds from {ROUND_SECONDS_MIN} to {ROUND_SECONDS_MAX} (7 days)"
    )
    quorum: int | None = Field(default=None, description=f"a whole number from 1 to {QUORUM_MAX}, or 0 for none")
    rounds: int | None = Field(default=10, description=f"a whole number from 1 to {ROUNDS_MAX}, or 0 for endless")
    preset: str = Field(default="default", description=f"one of: {', '.join(PRESET_NAMES)}")
    # Per person: this many vote changes at once, then one more every vote_refill_seconds.
    vote_burst: int = Field(default=6, ge=1, le=1000, description="a whole number from 1 to 1000")
    vote_refill_seconds: float = Field(default=5.0, gt=0.0, le=3600.0, description="a number of seconds above 0, up to 3600")
    # Sharding (bot/discord/shards.py): how many shards in all, and which this process runs ("0,1").
    shard_count: int | None = Field(default=None, ge=1, le=MAX_SHARDS, description=f"a whole number from 1 to {MAX_SHARDS}")
    shard_ids: str | None = Field(default=None, description="shard numbers separated by commas, such as 0,1")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        """pydantic-settings' sources in its order, a blank value in the environment or .env dropped (`_blank`)."""
        return init_settings, _unblanked(env_settings), _unblanked(dotenv_settings), file_secret_settings

    @field_validator("db", "soundfont")
    @classmethod
    def _as_meant(cls, value: str | None) -> str | None:
        return user_path(value) if value else value

    @field_validator("db", "bench_db")
    @classmethod
    def _a_database(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A URL that names no database crowdtune can use (storage.location_problem) is a bad setting, checked by
        every command, the ones that never open the database too, as --db's is checked by those that do. The
        benchmark's is a server's: a file's path is refused (no reason but what it expects)."""
        from storage import is_postgres_url, location_problem

        if value and (why := location_problem(value)) is not None:
            raise Unusable(why)  # check_location's own line says "the database"; this one names the setting
        if value and info.field_name == "bench_db" and not is_postgres_url(value):
            raise ValueError("a file's path")
        return value

    @field_validator("preset")
    @classmethod
    def _a_preset(cls, value: str) -> str:
        """In any case, as --preset (core.words.one_of); no preset is left to the round defaults' check, which words it."""
        with contextlib.suppress(ValueError):
            return one_of(value, PRESET_NAMES, "CROWDTUNE_PRESET")
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shard_ids(cls, value: str | None) -> str | None:
        """Checked as --shard-ids is (parse_shard_ids), whether or not the bot runs; with the count: load_settings."""
        if value is not None:
            parse_shard_ids(value)
        return value


class Settings(CommandSettings):
    """Every setting, the token too: what `crowdtune run` reads (the bot, or a terminal session)."""

    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(*_TOKEN_VARIABLES),
        description="the bot's token, from the Discord Developer Portal",
    )


def _blank(variable: str, value: str | None) -> bool:
    """True for a setting given as empty or spaces only, which counts as unset, in the environment and in .env alike
    (python-dotenv strips a .env line's value; the environment's is taken as it is): `CROWDTUNE_DB=` is the default
    database, and .env's value is read under an environment's blank one. Not the token: DISCORD_TOKEN set but empty is
    the bot's mistake (its own line, ExitCode.NO_TOKEN), not a terminal session."""
    return isinstance(value, str) and not value.strip() and variable.upper() not in _TOKEN_VARIABLES


def _unblanked(source):
    """`source` (a pydantic-settings source: a field's or alias's name to its value) without its blank values."""
    return lambda: {key: value for key, value in source().items() if not _blank(key, value)}


URLS = {"api_base": ("http", "https"), "gateway_url": ("ws", "wss")}  # the URL settings, the schemes each accepts
_HIDDEN = "(not shown)"


S = TypeVar("S", bound=CommandSettings)


def load_settings(kind: type[S] = Settings, **overrides) -> S:
    """The settings (`kind`: Settings, or CommandSettings for a command that does not run the bot), every one checked:
    StartupError naming each bad variable, its value (no secret: `_shown`) and what it expects, with exit code BAD_URL
    for a URL and SETTING for anything else (also for a .env that cannot be read, a CROWDTUNE_SOUNDFONT naming no file
    that can be read and a CROWDTUNE_DB of ":memory:", unless `overrides`, the options, replace them: render's --soundfont,
    --db; the shard ids and count together, unless either is an option: bot.cli checks them then, naming it)."""
    settings = _read(kind, **overrides)
    problems = [setting_problem(name, getattr(settings, name)) for name in _round_default_problems(settings)]
    if "db" not in overrides and settings.db == IN_MEMORY:  # every command's default database; most could not use it
        problems.append(setting_problem("db", settings.db, reason=IN_MEMORY_GONE))
    if not {"shard_count", "shard_ids"} & set(overrides) and (why := ids_problem(settings.shard_count, settings.shard_ids)):
        problems.append(setting_problem("shard_ids", settings.shard_ids, reason=why))
    if "soundfont" not in overrides and settings.soundfont and (why := why_unreadable(settings.soundfont)) is not None:
        # A stat and an open: whether it is a soundfont FluidSynth can load is found by what renders (NO_SOUNDFONT).
        problems.append(setting_problem("soundfont", settings.soundfont, reason=why))
    if problems:
        raise StartupError(_bad(problems), ExitCode.SETTING)
    problems = [setting_problem(n, v, reason=why or None) for n in URLS if (why := _url_problem(n, v := getattr(settings, n))) is not None]
    if problems:
        raise StartupError(_bad(problems, "bad URL"), ExitCode.BAD_URL)
    return settings


def _read(kind: type[S], **overrides) -> S:
    """`kind`'s settings from the environment and .env; StartupError (SETTING) for an unreadable .env, a line of it
    that cannot be parsed or a CROWDTUNE_ name that is no setting (`_unread`), or a bad value."""
    if problems := _unread():
        raise StartupError(_bad(problems), ExitCode.SETTING)
    try:
        return kind(**overrides)
    except UnicodeDecodeError:
        # Windows PowerShell 5's `echo ... > .env` writes UTF-16: say what to do, not a traceback.
        raise StartupError(
            "the .env file is not UTF-8 text (PowerShell 5's > writes UTF-16): save it as UTF-8, for example with "
            "Out-File -Encoding utf8, or set the variables in the environment", ExitCode.SETTING) from None
    except ValidationError as problem:
        named = [(_field(kind, e["loc"]), e["input"], e.get("ctx", {}).get("error")) for e in problem.errors()]
        # An override is an option's value (checked by the command line first): shown as given, not looked up.
        problems = [
            setting_problem(name, value, look_up=name not in overrides, reason=str(why) if isinstance(why, Unusable) else None)
            for name, value, why in named
        ]
        raise StartupError(_bad(problems), ExitCode.SETTING) from None


# A .env line's variable name, shown when the line cannot be parsed (its value never is: it may be the token).
_NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def _unread() -> list[str]:
    """What would be dropped or overridden silently as the settings are read, each in words: a line of .env that
    python-dotenv cannot parse (it would only log a warning of its own and skip it), a setting's name given twice in
    .env (the last would win unseen; both lines named), and a name that is no setting's but close to one (`_misnamed`)."""
    from dotenv.parser import parse_stream

    env_file = str(CommandSettings.model_config["env_file"])
    try:
        with open(env_file, encoding="utf-8") as lines:
            bindings = list(parse_stream(lines))
    except (OSError, UnicodeDecodeError):  # none, or one _read's own handler explains
        bindings = []
    variables = [*(variable_name(field) for field in Settings.model_fields if field != "discord_token"), *_TOKEN_VARIABLES]
    # A word without = (DISCORD_TOKEN, or a token pasted alone) python-dotenv reads as a name without a value, and
    # the setting would be left unset unseen: it cannot be parsed either. Its word is shown only if it is a setting's
    # name: any other may be a value, the token itself.
    unparsed = [b for b in bindings if b.error or (b.key and b.value is None)]
    bindings = [b for b in bindings if b not in unparsed]
    problems = []
    for binding in unparsed:
        name = _NAME.match(binding.original.string.lstrip())
        name = name[1] if name else binding.key if binding.key in variables else None
        problems.append(f"line {_line_of(binding)} of {env_file}{f' ({name})' if name else ''} cannot be parsed: write "
                        "NAME=VALUE, quoting a value that holds spaces or # (and closing each quote)")
    at: dict[str, list[str]] = {}
    for binding in (b for b in bindings if b.key in variables):
        at.setdefault(binding.key, []).append(str(_line_of(binding)))
    problems += [f"{name} is set {'twice' if len(lines) == 2 else f'{len(lines)} times'} in {env_file} (lines "
                 f"{', '.join(lines[:-1])} and {lines[-1]}): keep one" for name, lines in at.items() if len(lines) > 1]
    given = [(key, False) for key in os.environ] + [(b.key, True) for b in bindings if b.key]
    for key, in_env_file in dict.fromkeys(given):
        if (meant := _misnamed(key, variables, in_env_file)) is not None:
            where = f"in {env_file}" if in_env_file else "in the environment"
            problems.append(f"{key} ({where}) is no setting" + (f": did you mean {meant}?" if meant else ""))
    return problems


def _line_of(binding) -> int:
    """The line number of a python-dotenv binding's own line (its text starts at the end of the line before, blank
    lines first, if any)."""
    text = binding.original.string
    return binding.original.line + text[:len(text) - len(text.lstrip())].count("\n")


_PREFIX = "CROWDTUNE_"


def _misnamed(key: str, variables: list[str], in_env_file: bool) -> str | None:
    """The variable (of `variables`, exact names) a name that is none of them was likely meant to be, "" for a
    CROWDTUNE_ name in .env like none, else None (not taken for a mistake). Names are case-sensitive, as the environment's
    are on Linux: crowdtune_rounds is not read, so it is refused as CROWDTUNE_ROUNDS misspelled, in .env and in the
    environment alike. A name near a setting's (difflib; cut-offs from trying typos such as ROUND, SOUNDFONTS,
    GATEWAY, DISCORD_TOKN and the tests' own variables, which must not match) is one too: compared without the prefix
    they share, or whole for the token's; in the environment, where other programs may use the prefix (the tests'
    CROWDTUNE_KILL_SEED) or a DISCORD_ name, only a closer one. In .env every CROWDTUNE_ name is crowdtune's."""
    upper = key.upper()
    if key in variables:
        return None
    if upper in variables:
        return upper
    if upper.startswith(_PREFIX):
        near = difflib.get_close_matches(upper.removeprefix(_PREFIX), [v.removeprefix(_PREFIX) for v in variables], n=1,
                                         cutoff=0.7 if in_env_file else 0.75)
        return _PREFIX + near[0] if near else "" if in_env_file else None
    near = difflib.get_close_matches(upper, _TOKEN_VARIABLES[:1], n=1, cutoff=0.8 if in_env_file else 0.9)
    return near[0] if near else None


def round_defaults(settings: CommandSettings) -> dict:
    """The round defaults as SessionSpec takes them (0 quorum: none; 0 rounds: endless)."""
    return {"preset": settings.preset, "round_seconds": settings.round_seconds, "quorum": settings.quorum or None, "rounds": settings.rounds or None}


def open_renderer(settings: CommandSettings, option: str | None = None):
    """A bot.media.render.Renderer with the soundfont `settings` name (a context manager; render.Renderer.open's
    errors). `option`: the command-line option that named it ("--soundfont", render's), if one did, as the advice on
    a file that cannot be read names it; else that advice names CROWDTUNE_SOUNDFONT. A SoundfontError (exit code
    NO_SOUNDFONT: a file there that FluidSynth cannot load) for one that CROWDTUNE_SOUNDFONT named, not an option,
    says where it was set, as a bad setting's line does: "CROWDTUNE_SOUNDFONT (in .env): FluidSynth could not load ..."."""
    from bot.media.render import SOUNDFONT_SETTING, Renderer, SoundfontError

    try:
        return Renderer.open(settings.soundfont, named_by=option or SOUNDFONT_SETTING)
    except SoundfontError as problem:
        variable = variable_name("soundfont")
        if option or not settings.soundfont or (given := _given(variable)) is None:
            raise
        raise SoundfontError(f"{variable} ({given[1]}): {problem}") from None


def expected(name: str) -> str:
    """What the setting `name` (a Settings field) expects, in words: "a whole number from 1 to 1000"."""
    return Settings.model_fields[name].description


def variable_name(field: str) -> str:
    """The environment variable (or .env line) that sets a Settings field: "rounds" is CROWDTUNE_ROUNDS."""
    return "DISCORD_TOKEN" if field == "discord_token" else f"CROWDTUNE_{field.upper()}"


def _round_default_problems(settings: CommandSettings) -> list[str]:
    """The round defaults /compose would refuse (core.engine.SessionSpec's checks)."""
    from core.engine import SessionSpec

    problems = []
    for name, value in round_defaults(settings).items():
        try:
            SessionSpec(**{name: value})
        except ValueError:
            problems.append(name)
    return problems


def _url_problem(name: str, value: str | None) -> str | None:
    """Why the URL setting `name` cannot be used: its port, its fragment, or "" (what it expects says why); None if it can."""
    import yarl

    if (port := re.match(r"[^:/]*://[^/?#]*:([0-9]+)(?:[/?#]|$)", (value or "").strip())) and not 1 <= int(port[1]) <= 65535:
        return "its port is not a number from 1 to 65535"
    if value is None or "#" in value:  # the fragment itself is never shown (storage.postgres.public_url)
        return None if value is None else "a #fragment has no meaning in it: leave it out"
    with contextlib.suppress(ValueError, TypeError):
        if (url := yarl.URL(value.strip())).scheme in URLS[name] and url.host and url.port is not None and "?" not in value and url.user is url.password is None:
            return None
    return ""


def _field(kind: type[CommandSettings], loc: tuple) -> str:
    """The field a validation error's location names (a field, or the alias it was read by: DISCORD_TOKEN)."""
    name = str(loc[0]) if loc else ""
    return name if name in kind.model_fields else next(
        (field for field in kind.model_fields if variable_name(field) == name.upper()), name
    )


def _bad(problems: list[str], kind: str = "bad setting") -> str:
    """The line for `problems`, begun by what its exit code means (README "Exit codes"): "bad setting(s)" or "bad URL(s)"."""
    return f"{kind}{'s' if len(problems) > 1 else ''}: {'; '.join(problems)}"


def setting_problem(name: str, parsed: object, look_up: bool = True, reason: str | None = None) -> str:
    """One bad setting in words: "CROWDTUNE_ROUNDS is 'abc' (in .env), expected a whole number from 1 to 10000,
    or 0 for endless", then `reason` if given (after a colon). With `look_up` the value is shown as it was
    given, where it was found (else as `parsed`)."""
    given = _given(variable_name(name)) if look_up else None
    value, where = given if given is not None else (parsed, None)
    shown = _HIDDEN if name == "discord_token" else _shown(str(value))
    return f"{variable_name(name)} is {shown}{f' ({where})' if where else ''}, expected {expected(name)}{f': {reason}' if reason else ''}"


def _given(variable: str) -> tuple[str, str] | None:
    """The text `variable` was given as and where: in the environment, which wins (any case, as pydantic-settings
    reads it), else in .env; None if neither has it. A blank value is unset (`_blank`)."""
    environment = {key.upper(): value for key, value in os.environ.items()}
    if variable in environment and not _blank(variable, environment[variable]):
        return environment[variable], "in the environment"
    from dotenv import dotenv_values

    env_file = str(CommandSettings.model_config["env_file"])
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for key, value in dotenv_values(env_file).items():
            if key.upper() == variable and value is not None and not _blank(variable, value):
                return value, "in .env"
    return None


def _token_given() -> tuple[str, str, str] | None:
    """(variable, text, where) of the bot token as it is read (DISCORD_TOKEN before CROWDTUNE_DISCORD_TOKEN), or None."""
    for variable in _TOKEN_VARIABLES:
        if (given := _given(variable)) is not None:
            return variable, *given
    return None


# A bot token is three base64url parts joined by dots (the bot's id, a timestamp, a signature): anything else
# would be refused by Discord after a minute of retries as if Discord were unreachable.
BOT_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def bot_token(settings: Settings) -> str:
    """The bot token of `settings`, stripped; StartupError (NO_TOKEN) when it is empty or malformed (BOT_TOKEN), which
    the bot would otherwise learn from Discord only after a minute of retries. Checked first when the bot is to run,
    before any option is judged (an option for a terminal session is no mistake when the bot cannot run anyway)."""
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if not BOT_TOKEN.fullmatch(token):
        raise StartupError(f"{token_origin()} is empty or malformed: paste the bot token from the Developer Portal", ExitCode.NO_TOKEN)
    return token


def token_origin() -> str:
    """The bot token's variable and where it was set, for a line about it ("DISCORD_TOKEN (in the environment)"):
    an environment's empty token hides a good one in .env, which the line must not leave a person to guess."""
    given = _token_given()
    return f"{given[0]} ({given[2]})" if given else "DISCORD_TOKEN"


def _shown(value: str, longest: int = 80) -> str:
    """A bad value as a line may show it: quoted, without a URL's password (storage.postgres.public_url), never
    holding the token, and cut short past `longest` characters."""
    token = (_token_given() or ("", "", ""))[1].strip()
    if token and token in value:
        return f"{_HIDDEN[:-1]}: it holds DISCORD_TOKEN)"
    from storage import looks_like_url

    if looks_like_url(value):
        from storage.postgres import public_url

        value = public_url(value.strip())
    return f"'{value if len(value) <= longest else value[:longest - 3] + '...'}'"
