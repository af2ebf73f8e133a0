"""Sizes of bundles as browsers download them: raw, gzip and brotli bytes (the published encodings)."""

from __future__ import annotations

from collections.abc import Iterable

from bosco.assetset import Output
from bosco.publish.compress import BROTLI, GZIP, CompressionCache
from bosco.publish.target import request_pool

ENCODINGS = ("raw", "gzip", "br")


def compressed_sizes(outputs: Iterable[Output], cache: CompressionCache) -> dict[str, dict[str, int]]:
    """Asset key -> ``{"raw", "gzip", "br"}`` sizes in bytes of each of ``outputs``, compressed as
    ``s3push`` stores them (through ``cache``, so a later push reuses the bodies). Ctrl-C cancels the
    measurements not started (``request_pool``)."""
    outputs = list(outputs)

    def measure(output: Output) -> dict[str, int]:
        return {"raw": len(output.data),
                "gzip": len(cache.body(output.data, output.sha256, GZIP, output.key)),
                "br": len(cache.body(output.data, output.sha256, BROTLI, output.key))}

    with request_pool(8) as pool:
        return dict(zip((o.key for o in outputs), pool.map(measure, outputs), strict=True))


def stored_sizes(entry: dict) -> dict[str, int | None]:
    """``{"raw", "gzip", "br"}`` sizes of one release index object entry (None for an encoding it
    was not stored in, e.g. ``build --out`` stores raw bytes only)."""
    sizes: dict[str, int | None] = {"raw": entry.get("size"), "gzip": None, "br": None}
    for stored in entry.get("stored", []):
        if isinstance(stored, dict) and stored.get("encoding") in ("gzip", "br"):
            sizes[stored["encoding"]] = stored.get("size")
    return sizes
