"""Settings from the environment or a `.env` file. The token is a SecretStr: it prints as '**********'."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWDTUNE_", env_file=".env", extra="ignore")

    discord_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "CROWDTUNE_DISCORD_TOKEN"))
    db: str | None = None
    soundfont: str | None = None
    dev_guild_id: int | None = None  # sync commands to this guild only: instant, for development
    api_base: str | None = None  # a Discord-compatible REST base, e.g. http://127.0.0.1:8080/api/v10
    gateway_url: str | None = None  # a Discord-compatible gateway, e.g. ws://127.0.0.1:8080/
    round_seconds: float = 300.0
    quorum: int | None = None
    rounds: int | None = 10
    preset: str = "default"


def load_settings(**overrides) -> Settings:
    return Settings(**overrides)
