"""The read-only, streaming `Reader` (storage/protocol.py) both backends share: its queries and the rows
they become. A backend's reader (storage/sqlite.py `SqliteReader`, storage/postgres.py
`PostgresReader`) opens one read-only snapshot and supplies `_rows`; the SQL here is written once, with
`?` placeholders, so an export reads the same from either database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator


class RowReader:
    """The Reader's queries over a backend's `_rows(sql, params)` (one snapshot, `?` placeholders)."""

    BATCH = 500  # rows fetched from the database at a time
    ROUND_IN_DETAIL = "json_extract(a.detail, '$.round')"  # SQL: the round id an audit row's detail names

    def _rows(self, sql: str, params: Iterable = ()) -> Iterator[tuple]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _one(self, sql: str, params: Iterable = ()) -> tuple:
        """The single row a query returns (an aggregate), read to the end."""
        (row,) = list(self._rows(sql, params))
        return row

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def export_rows(self, scope_id: str | None) -> dict[str, list[dict]]:
        """Everything an export holds, as lists (small scopes and tests; an export streams instead)."""
        return {part: list(getattr(self, part)(scope_id)) for part in ("rounds", "votes", "sessions", "audit", "qvalues", "models")}

    @staticmethod
    def _where(column: str, scope_id: str | None) -> tuple[str, tuple]:
        return (f"WHERE {column} = ?", (scope_id,)) if scope_id else ("", ())

    def scopes(self, scope_id: str | None) -> list[str]:
        """The scopes that have sessions (all, or just `scope_id`)."""
        where, params = self._where("scope_id", scope_id)
        return [r[0] for r in self._rows(f"SELECT DISTINCT scope_id FROM sessions {where} ORDER BY scope_id", params)]

    def rounds(self, scope_id: str | None) -> Iterator[dict]:
        where, params = self._where("s.scope_id", scope_id)
        for r in self._rows(
            "SELECT s.scope_id, r.session_id, r.idx, r.status, r.mode, r.plan, r.reward, r.outcome, r.opened_at, r.closed_at "
            f"FROM rounds r JOIN sessions s ON s.id = r.session_id {where} ORDER BY s.scope_id, r.session_id, r.idx",
            params,
        ):
            plan = json.loads(r[5])
            yield {
                "scope": r[0], "session": r[1], "round": r[2] + 1, "status": r[3], "mode": r[4],
                "actions": [p["action"] for p in plan["proposals"]],
                "descriptions": [p["description"] for p in plan["proposals"]],
                "reward": r[6], "outcome": json.loads(r[7]) if r[7] else None,
                "opened_at": r[8], "closed_at": r[9], "plan": plan,
            }

    def votes(self, scope_id: str | None) -> Iterator[dict]:
        where, params = self._where("s.scope_id", scope_id)
        for v in self._rows(
            "SELECT s.scope_id, r.session_id, r.idx, v.voter, v.rating, v.choice, v.cast_at, v.retracted, v.voided, v.aspects "
            f"FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id {where} "
            "ORDER BY r.id, v.cast_at, v.voter",
            params,
        ):
            yield {
                "scope": v[0], "session": v[1], "round": v[2] + 1, "voter": v[3], "rating": v[4], "choice": v[5],
                "at": v[6], "retracted": bool(v[7]), "voided": bool(v[8]),
                **({"aspects": json.loads(v[9])} if v[9] else {}),
            }

    def sessions(self, scope_id: str | None) -> Iterator[dict]:
        where, params = self._where("s.scope_id", scope_id)
        for s in self._rows(f"SELECT s.scope_id, s.id, s.spec, s.status, s.track, s.rounds_done FROM sessions s {where} ORDER BY s.id", params):
            yield {"scope": s[0], "session": s[1], "spec": json.loads(s[2]), "status": s[3], "track": json.loads(s[4]), "rounds_done": s[5]}

    def audit(self, scope_id: str | None) -> Iterator[dict]:
        """The audit log; a round it names (the database's round id) is given as its session and its
        number from 1, as people see it ("round 3", round-0003.mid), when it is a round of the scope; a round deleted
        since (with its scope: /forget-me) as `"round": null, "round_deleted": true`, never by its id."""
        where, params = self._where("a.scope_id", scope_id)
        for a in self._rows(
            "SELECT a.at, a.scope_id, a.actor, a.action, a.detail, r.session_id, r.idx, s.scope_id FROM audit a "
            f"LEFT JOIN rounds r ON r.id = {self.ROUND_IN_DETAIL} LEFT JOIN sessions s ON s.id = r.session_id "
            f"{where} ORDER BY a.id",
            params,
        ):
            detail = json.loads(a[4])
            if a[5] is not None and scope_id in (None, a[7]):
                detail["session"], detail["round"] = a[5], a[6] + 1
            elif a[5] is None and type(detail.get("round")) is int:
                # Deleted with its scope (/forget-me, forget-user): its id is no number anyone saw (ids are never reused).
                detail["round"], detail["round_deleted"] = None, True
            yield {"at": a[0], "scope": a[1], "actor": a[2], "action": a[3], "detail": detail}

    def qvalues(self, scope_id: str | None) -> Iterator[dict]:
        """Ordered by scope, so a scope's entries come together."""
        where, params = self._where("scope_id", scope_id)
        for q in self._rows(f"SELECT scope_id, state, action, value, visits FROM qvalues {where} ORDER BY scope_id, state, action", params):
            yield {"scope": q[0], "state": q[1], "action": q[2], "value": q[3], "visits": q[4]}

    def models(self, scope_id: str | None) -> Iterator[dict]:
        """The scopes' learned models (fixed-size statistics), ordered by scope."""
        where, params = self._where("scope_id", scope_id)
        for m in self._rows(f"SELECT scope_id, name, data FROM models {where} ORDER BY scope_id, name", params):
            yield {"scope": m[0], "name": m[1], "data": json.loads(m[2])}

    def votes_of(self, voter: str) -> Iterator[dict]:
        """Every vote a person cast, anywhere (their copy of their data)."""
        for v in self._rows(
            "SELECT r.session_id, r.idx + 1, s.scope_id, v.rating, v.choice, v.cast_at, v.retracted, v.aspects, v.joined_at "
            "FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id WHERE v.voter = ? "
            "ORDER BY v.cast_at",
            (voter,),
        ):
            vote = dict(zip(("session", "round", "scope", "rating", "choice", "at", "retracted"), v))
            # When they joined the server, as Discord said with the vote (the membership rule reads it): theirs too.
            yield {**vote, **({"aspects": json.loads(v[7])} if v[7] else {}), **({"joined_server_at": v[8]} if v[8] is not None else {})}

    # --- what benchmarks count while a bot runs (storage is the only code that reads SQL) ---------------

    def activity(self) -> dict[str, int]:
        """How far a bot has got: vote events stored, rounds closed, and audio files posted (one per rating
        round posted, two per A/B round)."""
        (votes,) = self._one("SELECT COUNT(*) FROM vote_events")
        (rounds,) = self._one("SELECT COUNT(*) FROM rounds WHERE status = 'closed'")
        (posted,) = self._one("SELECT COALESCE(SUM(CASE mode WHEN 'ab' THEN 2 ELSE 1 END), 0) FROM rounds WHERE message_ids != '[]'")
        return {"votes": votes, "rounds": rounds, "renders": posted}

    def round_votes(self, round_ids: list[int], rating: float) -> tuple[dict[str, int], int]:
        """The vote events of these rounds by kind, and how many standing votes among them give `rating`."""
        marks = ",".join("?" * len(round_ids))
        kinds = dict(self._rows(f"SELECT kind, COUNT(*) FROM vote_events WHERE round_id IN ({marks}) GROUP BY kind", round_ids))
        (standing,) = self._one(
            f"SELECT COUNT(*) FROM votes WHERE round_id IN ({marks}) AND retracted = 0 AND voided = 0 AND rating = ?",
            (*round_ids, float(rating)),
        )
        return kinds, standing
