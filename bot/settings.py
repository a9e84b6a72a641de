"""Settings from the environment or a `.env` file (a variable in the environment wins over the same one in
`.env`: pydantic-settings' order). The token is a SecretStr: it prints as '**********'.

Every setting is checked at start (`load_settings`), each problem named by its variable, so a bad value
is one line and an exit code then, not a failure at the first command (bot.errors.ExitCode). Commands
other than the bot read only the files every command uses (`load_locations`), the same way."""

from __future__ import annotations

from typing import TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ExitCode, StartupError, user_path


class Locations(BaseSettings):
    """The settings every command reads, not only the bot: its database (CROWDTUNE_DB) and soundfont
    (CROWDTUNE_SOUNDFONT), each a path (~ expanded: user_path) or, for the database, a postgresql:// URL.
    Read without the token or anything else in .env."""

    model_config = SettingsConfigDict(env_prefix="CROWDTUNE_", env_file=".env", extra="ignore")

    db: str | None = None
    soundfont: str | None = None

    @field_validator("db", "soundfont")
    @classmethod
    def _as_meant(cls, value: str | None) -> str | None:
        return user_path(value) if value else value


class Settings(Locations):
    discord_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "CROWDTUNE_DISCORD_TOKEN"))
    dev_guild_id: int | None = None  # sync commands to this guild only: instant, for development
    api_base: str | None = None  # a Discord-compatible REST base, e.g. http://127.0.0.1:8080/api/v10
    gateway_url: str | None = None  # a Discord-compatible gateway, e.g. ws://127.0.0.1:8080/
    # discord.py waits this long after the last server arrives before it calls itself ready.
    guild_ready_timeout: float = Field(default=2.0, ge=0.0, le=60.0)
    # How long to keep trying to reach Discord at start (pauses of 1, 2, 4 ... 30 s) before giving up.
    connect_retry_seconds: float = Field(default=60.0, ge=0.0, le=3600.0)
    # Round defaults for new sessions; checked as /compose would check them (core.engine.SessionSpec).
    round_seconds: float = 300.0
    quorum: int | None = None  # 0: none
    rounds: int | None = 10  # 0: endless
    preset: str = "default"
    # Per person: this many vote changes at once, then one more every vote_refill_seconds.
    vote_burst: int = Field(default=6, ge=1, le=1000)
    vote_refill_seconds: float = Field(default=5.0, gt=0.0, le=3600.0)
    # Sharding (bot/discord/shards.py): how many shards in all, and which this process runs ("0,1").
    shard_count: int | None = None
    shard_ids: str | None = None


# The URL settings, the schemes each accepts and an example.
URLS = {
    "api_base": (("http", "https"), "http://127.0.0.1:8080/api/v10"),
    "gateway_url": (("ws", "wss"), "ws://127.0.0.1:8080/"),
}


def load_settings(**overrides) -> Settings:
    """The settings, every one checked: StartupError naming each bad variable (the value is not echoed:
    it may be the token), with exit code BAD_URL for a URL and SETTING for anything else."""
    settings = _read(Settings, **overrides)
    problems = [f"{variable_name(name)}: {problem}" for name, problem in _round_default_problems(settings)]
    if problems:
        raise StartupError(f"bad setting: {'; '.join(problems)}", ExitCode.SETTING)
    problems = [problem for name in URLS if (problem := _url_problem(name, getattr(settings, name))) is not None]
    if problems:
        raise StartupError(f"bad URL: {'; '.join(problems)}", ExitCode.BAD_URL)
    return settings


def load_locations() -> Locations:
    """The database and soundfont settings, for a command that needs nothing else of them (StartupError, exit
    code SETTING, when .env cannot be read)."""
    return _read(Locations)


S = TypeVar("S", bound=Locations)


def _read(kind: type[S], **overrides) -> S:
    """`kind`'s settings from the environment and .env; StartupError (SETTING) for an unreadable .env or a bad value."""
    try:
        return kind(**overrides)
    except UnicodeDecodeError:
        # Windows PowerShell 5's `echo ... > .env` writes UTF-16: say what to do, not a traceback.
        raise StartupError(
            "the .env file is not UTF-8 text (PowerShell 5's > writes UTF-16): save it as UTF-8, for example with "
            "Out-File -Encoding utf8, or set the variables in the environment",
            ExitCode.SETTING,
        ) from None
    except ValidationError as problem:
        details = "; ".join(f"{variable_name('_'.join(map(str, e['loc'])))}: {e['msg']}" for e in problem.errors())
        raise StartupError(f"bad setting: {details}", ExitCode.SETTING) from None


def round_defaults(settings: Settings) -> dict:
    """The round defaults as SessionSpec takes them (0 quorum: none; 0 rounds: endless)."""
    return {"preset": settings.preset, "round_seconds": settings.round_seconds, "quorum": settings.quorum or None, "rounds": settings.rounds or None}


def _round_default_problems(settings: Settings) -> list[tuple[str, str]]:
    from core.engine import SessionSpec

    problems = []
    for name, value in round_defaults(settings).items():
        try:
            SessionSpec(**{name: value})
        except ValueError as problem:
            problems.append((name, str(problem)))
    return problems


def _url_problem(name: str, value: str | None) -> str | None:
    import yarl

    if value is None:
        return None
    schemes, example = URLS[name]
    try:
        url = yarl.URL(value.strip())
        usable = url.scheme in schemes and bool(url.host) and url.port is not None
    except (ValueError, TypeError):
        usable = False
    if usable:
        return None
    return f"{variable_name(name)} must be a {' or '.join(schemes)} URL with a host, such as {example}"


def variable_name(field: str) -> str:
    """The environment variable (or .env line) that sets a Settings field: "rounds" is CROWDTUNE_ROUNDS."""
    return "DISCORD_TOKEN" if field == "discord_token" else f"CROWDTUNE_{field.upper()}"
