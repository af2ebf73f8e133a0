"""The outcome of a push: one ``Result`` per stored object and the ``PublishReport`` that sums them
(what ``s3push`` and ``build --out`` print, ``--json`` included)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACTIONS = ("upload", "copy", "skip")


@dataclass(frozen=True)
class Result:
    """What was done (or, in a dry run, would be done) with one object. ``size`` is the stored size
    in bytes (None when unknown in a dry run), ``sent`` the bytes uploaded."""

    key: str
    asset_key: str
    kind: str
    service: str | None
    encoding: str
    action: str
    raw_size: int
    size: int | None
    sent: int = 0


@dataclass(frozen=True)
class PublishReport:
    """The outcome of a push, in publish order."""

    environment: str
    build: str
    target: str
    results: tuple[Result, ...]
    dry_run: bool = False

    def totals(self) -> dict[str, int]:
        """``objects``, ``upload``, ``copy``, ``skip`` counts, ``raw_bytes`` (uncompressed bytes of the
        distinct assets, each counted once however many encodings are stored) and ``sent_bytes``
        (bytes uploaded). A dry run adds ``estimated_objects``: uploads whose compressed size is not
        cached, counted in ``sent_bytes`` at their uncompressed size (an upper bound)."""
        totals = {a: sum(1 for r in self.results if r.action == a) for a in ACTIONS}
        totals["objects"] = len(self.results)
        totals["raw_bytes"] = sum({r.asset_key: r.raw_size for r in self.results}.values())
        totals["sent_bytes"] = sum(r.sent for r in self.results)
        if self.dry_run:
            totals["estimated_objects"] = sum(1 for r in self.results if r.action == "upload" and r.size is None)
        return totals

    def bundles(self) -> list[dict[str, Any]]:
        """One row per bundle: ``key``, ``raw`` size and ``gzip``/``br`` stored sizes (None when not
        stored in that form or unknown) and ``action``: ``upload`` if any of its objects was uploaded,
        else ``copy`` if any was copied, else ``skip``."""
        rows: dict[str, dict[str, Any]] = {}
        for r in self.results:
            if r.kind != "bundle":
                continue
            row = rows.setdefault(r.asset_key, {"key": r.asset_key, "raw": r.raw_size, "gzip": None, "br": None,
                                                "actions": set()})
            row[r.encoding or "raw"] = r.size if r.encoding else r.raw_size
            row["actions"].add(r.action)
        for row in rows.values():
            actions = row.pop("actions")
            row["action"] = next(a for a in ACTIONS if a in actions)
        return list(rows.values())

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready object (what ``--json`` prints)."""
        return {
            "ok": True, "environment": self.environment, "build": self.build, "target": self.target,
            "dry_run": self.dry_run, "bundles": self.bundles(), "totals": self.totals(),
            "objects": [{"key": r.key, "action": r.action, "encoding": r.encoding or None, "size": r.size,
                         "sent": r.sent} for r in self.results],
        }
