"""Which round a message is (the ballot box's cache of message id -> RoundRef), for the rounds that are live only.

Why only those: a reaction, press or deletion on an ended round's post (months old, maybe) is looked up in the
database each time and answered as before, but not cached, so what is held grows with the open rounds, never with
a server's history. A round leaves it when it ends (`ended`, however it ended: the ballot box's `round_ended`)."""

from __future__ import annotations

from bot.discord.votes import RoundRef, round_style
from storage import RoundRow, SessionRow


class RoundRefs:
    def __init__(self, store) -> None:
        self.store = store
        self._refs: dict[int, RoundRef] = {}  # message id -> its live round
        self._settings_changes = 0  # scope_settings_changed calls so far
        self._ends = 0  # `ended` calls so far: a look-up during one does not cache the round it may have ended

    async def of(self, row: RoundRow, session: SessionRow) -> RoundRef:
        changes, settings = -1, {}
        while changes != self._settings_changes:  # read again after a /config during the read: none caches older settings
            changes = self._settings_changes
            settings = await self.store.scope_settings(session.scope_id)
        return RoundRef(
            row.id, session.id, row.mode, session.scope_id, round_style(session.options), row.opened_at,
            bool(settings.get("anti_brigade")), int(settings.get("member_days") or 0),
        )

    async def remember(self, row: RoundRow, session: SessionRow) -> None:
        """Map the open round's messages to it."""
        ref = await self.of(row, session)
        for message_id in row.message_ids:
            self._refs[int(message_id)] = ref

    def ended(self, round_id: int, message_ids=()) -> set[int]:
        """The round ended: it is mapped no more. Its message ids (`message_ids`, its recorded ones, and those cached: a
        change of the scope's settings drops them from the cache, not from its row) for what else is held for them."""
        self._ends += 1
        ended = {int(m) for m in message_ids} | {m for m, ref in self._refs.items() if ref.round_id == round_id}
        for message_id in ended:
            self._refs.pop(message_id, None)
        return ended

    def rounds_of(self, session_id: int) -> set[int]:
        """The session's rounds cached (its open one, and any that ended while its runner did not see it)."""
        return {ref.round_id for ref in self._refs.values() if ref.session_id == session_id}

    def scope_settings_changed(self, scope_id: str) -> None:
        """Forget cached rounds of a scope, so votes see its new settings (anti-brigading) or, once the
        scope is deleted, find no round."""
        self._settings_changes += 1  # a look-up whose read began before this reads again (`of`)
        self._refs = {message_id: ref for message_id, ref in self._refs.items() if ref.scope_id != scope_id}

    def cached(self, message_id: int) -> RoundRef | None:
        return self._refs.get(message_id)

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._refs

    async def ref_for(self, message_id: int) -> RoundRef | None:
        """The message's round, looked up if not cached, and cached only while open: one not cached once this returns
        has ended (`ended_round`). Looked up again if a round ended meanwhile (it may be this one, cached for good)."""
        ref = self._refs.get(message_id)
        while ref is None:
            ends = self._ends
            row = await self.store.round_for_message(str(message_id))
            if row is None:
                return None
            ref = await self.of(row, await self.store.session(row.session_id))
            if ends != self._ends:
                ref = None  # read again
            elif row.status == "open":
                self._refs[message_id] = ref
        return ref

    def ended_round(self, message_id: int, ref: RoundRef | None) -> bool:
        """Whether `ref`, as `ref_for` just returned it for the message (no await since), is an ended round's."""
        return ref is not None and message_id not in self._refs

    async def unrecorded(self, round_id: int, message_id: int) -> RoundRef | None:
        """The round a button names when its post is out but was not recorded when the vote was looked
        up (just posted, or posted before a crash and not adopted yet). A round whose recorded post is
        another message does not take votes from this one."""
        row = await self.store.round(round_id)
        if row is None or (row.message_ids and str(message_id) not in row.message_ids):
            return None
        return await self.of(row, await self.store.session(row.session_id))
