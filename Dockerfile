FROM python:3.11-slim

# FluidSynth and a General MIDI soundfont: everything rendering needs (PyAV's wheel brings the Opus encoder);
# libatomic1 for pedalboard's wheel (the limiter that levels every clip), which links it without bundling it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fluidsynth libfluidsynth3 timgm6mb-soundfont libatomic1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY storage ./storage
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 crowdtune && mkdir -p /data && chown crowdtune /data
USER crowdtune
# Commands run in the container (`docker compose exec shard-0 crowdtune export ... --out export.zip`) start
# in the volume, which this user owns: a relative path is written there, and kept.
WORKDIR /data
ENV CROWDTUNE_DB=/data/crowdtune.db \
    CROWDTUNE_SOUNDFONT=/usr/share/sounds/sf2/TimGM6mb.sf2 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]

# DISCORD_TOKEN comes from the environment (docker run -e DISCORD_TOKEN=... or --env-file).
CMD ["crowdtune", "run"]
