"""What a person's copy of their data says of their personal agent: one answer for /forget-me and
`crowdtune forget-user`, which both write it with storage.export.write_person_copy."""

from __future__ import annotations

from bot.conductor import Conductor
from core.agent import preset as agent_preset


async def personal_agent(conductor: Conductor, scope_id: str, preset: str) -> dict | None:
    """The personal agent of the scope `scope_id` (its agent learning by the preset named `preset`, the scope's
    setting), for the copy: `{"scope", "preset", "learned"` (Conductor.learned_so_far's words, "has learned from
    2 judged edits"), the count in the units the preset learns in (`"judged_edits"` or `"q_values"`; neither
    for one that learns nothing), `"lessons"` (Conductor.lessons: what it is most sure the person likes and
    dislikes, in words; empty before it is sure of anything)`}`; None when the scope is not stored."""
    if not await conductor.store.has_scope(scope_id):
        return None
    config = agent_preset(preset)
    learned = await conductor.learned(scope_id, config)
    return {
        "scope": scope_id, "preset": preset, "learned": await conductor.learned_so_far(scope_id, config),
        **(dict([learned]) if learned is not None else {}), "lessons": await conductor.lessons(scope_id, preset),
    }
