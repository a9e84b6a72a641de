"""What a person's copy of their data says of their personal agent: one answer for /forget-me and
`crowdtune forget-user`, which both write it with storage.export.write_person_copy."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.conductor import Conductor
from bot.progress import plural
from core.agent import preset as agent_preset


async def personal_agent(conductor: Conductor, scope_id: str, preset: str) -> dict | None:
    """The personal agent of the scope `scope_id` (its agent learning by the preset named `preset`, the scope's
    setting), for the copy: `{"scope", "preset", "learned"` (Conductor.learned_so_far's words, "has learned from
    2 judged edits"), the count in the units the preset learns in (`"judged_edits"` or `"q_values"`; neither
    for one that learns nothing), `"lessons"` (Conductor.lessons: what it is most sure the person likes and
    dislikes, in words; empty before it is sure of anything), `"sessions"` (the scope's, deleted with it: each its
    number, status, start in UTC (ISO 8601), rounds done and track as it stands)`}`; None when the scope is not stored."""
    if not await conductor.store.has_scope(scope_id):
        return None
    config = agent_preset(preset)
    learned = await conductor.learned(scope_id, config)
    sessions = [
        {"session": s.id, "status": s.status, "started": datetime.fromtimestamp(s.created_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "rounds_done": s.rounds_done, "track": s.track}
        for s in await conductor.store.all_sessions() if s.scope_id == scope_id
    ]
    return {
        "scope": scope_id, "preset": preset, "learned": await conductor.learned_so_far(scope_id, config),
        **(dict([learned]) if learned is not None else {}), "lessons": await conductor.lessons(scope_id, preset), "sessions": sessions,
    }


def agent_words(copied: dict | None, whose: str, learned: bool = True, sessions: int | None = None) -> str | None:
    """The personal agent `personal_agent` copied, as the question before deleting it names it, with the sessions that
    go with it ("their personal agent, which has learned from 2 judged edits, with its 2 sessions and their
    compositions"; `whose`: "their", "your"; `learned` False: without what it learned, as once deleted; `sessions`: how
    many, as a deletion found them, else the copy's); None when there is none."""
    if copied is None and sessions is None:
        return None
    count = len(copied["sessions"]) if sessions is None else sessions
    which = f", which {copied['learned']}," if learned else ""
    # The compositions are the sessions': "its" for one session, "their" for several.
    tail = f"{which} with its {plural(count, 'session')} and {'its' if count == 1 else 'their'} compositions" if count else which.rstrip(",")
    return f"{whose} personal agent{tail}"
