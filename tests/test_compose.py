"""compose.yaml (PostgreSQL and two bot shards from the Dockerfile's image) parses and describes a bot
that can run: Docker is not on the test machines, so this checks the file, not a running stack."""

from pathlib import Path

import yaml

from bot.discord.shards import ShardPlan
from storage import is_postgres_url

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_every_shard_once_against_its_postgres_service():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    database = services["postgres"]
    assert "healthcheck" in database and any(v.endswith(":/var/lib/postgresql/data") for v in database["volumes"])
    bots = {name: s for name, s in services.items() if name != "postgres"}
    assert len(bots) >= 2
    shards: list[int] = []
    counts = set()
    for name, bot in bots.items():
        assert bot["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = bot["environment"]
        url = env["CROWDTUNE_DB"]
        assert is_postgres_url(url) and "@postgres:5432/" in url and "${POSTGRES_PASSWORD" in url  # no password in the file
        plan = ShardPlan.make(int(env["CROWDTUNE_SHARD_COUNT"]), env["CROWDTUNE_SHARD_IDS"])
        counts.add(plan.count)
        shards += plan.ids
    (count,) = counts  # every process agrees on the shard count
    assert sorted(shards) == list(range(count))  # each shard run by exactly one process
