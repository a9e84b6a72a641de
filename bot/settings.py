"""Settings from the environment or a `.env` file. The token is a SecretStr: it prints as '**********'."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import StartupError


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
    round_seconds: float = 300.0
    quorum: int | None = None
    rounds: int | None = 10
    preset: str = "default"
    # Per person: this many vote changes at once, then one more every vote_refill_seconds.
    vote_burst: int = Field(default=6, ge=1, le=1000)
    vote_refill_seconds: float = Field(default=5.0, gt=0.0, le=3600.0)
    # Sharding (bot/discord/shards.py): how many shards in all, and which this process runs ("0,1").
    shard_count: int | None = None
    shard_ids: str | None = None


def load_settings(**overrides) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as problem:
        # One line per bad setting, naming the variable; the value is not echoed (it may be the token).
        details = "; ".join(f"CROWDTUNE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in problem.errors())
        raise StartupError(f"bad setting: {details}") from None
