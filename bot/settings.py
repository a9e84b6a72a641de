"""Settings from the environment or a `.env` file. The token is a SecretStr: it prints as '**********'."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import StartupError
from core.agent import PRESETS
from core.engine import ROUND_SECONDS_MAX, ROUND_SECONDS_MIN, ROUNDS_MAX


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWDTUNE_", env_file=".env", extra="ignore")

    discord_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "CROWDTUNE_DISCORD_TOKEN"))
    db: str | None = None
    soundfont: str | None = None
    dev_guild_id: int | None = None  # sync commands to this guild only: instant, for development
    api_base: str | None = None  # a Discord-compatible REST base, e.g. http://127.0.0.1:8080/api/v10
    gateway_url: str | None = None  # a Discord-compatible gateway, e.g. ws://127.0.0.1:8080/
    # discord.py waits this long after the last server arrives before it calls itself ready.
    guild_ready_timeout: float = Field(default=2.0, ge=0.0, le=60.0)
    # Round defaults: bounded as a session's own (core.engine.SessionSpec), so a value no session could
    # start with is refused at start, not at the first /compose. rounds 0 is endless.
    round_seconds: float = Field(default=300.0, ge=ROUND_SECONDS_MIN, le=ROUND_SECONDS_MAX)
    quorum: int | None = Field(default=None, ge=1, le=100_000)
    rounds: int | None = Field(default=10, ge=0, le=ROUNDS_MAX)
    preset: str = "default"
    # Per person: this many vote changes at once, then one more every vote_refill_seconds.
    vote_burst: int = Field(default=6, ge=1, le=1000)
    vote_refill_seconds: float = Field(default=5.0, gt=0.0, le=3600.0)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"one of {', '.join(PRESETS)}")
        return value


def load_settings(**overrides) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as problem:
        # One line per bad setting, naming the variable; the value is not echoed (it may be the token).
        details = "; ".join(f"CROWDTUNE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in problem.errors())
        raise StartupError(f"bad setting: {details}") from None
