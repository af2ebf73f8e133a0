"""bosco's user reference (Markdown pages) and the JSON Schema of ``bosco-service.json``, shipped in
the package as ``bosco.docs`` (the ``docs/`` folder of the source tree)."""

from __future__ import annotations

from importlib import resources

SCHEMA_NAME = "bosco-service.schema.json"
TOPICS = {
    "manifest": "bosco-service.json: every key, sections, basePath, globs, build commands",
    "configuration": "configuration layers, keys and defaults, environment variables",
    "commands": "every command and its options",
    "layout": "published keys, S3 objects and headers, publish order, release indexes",
    "api": "calling bosco from Python",
}


def page(topic: str) -> str:
    """The Markdown text of reference page ``topic`` (a key of ``TOPICS``). Raises ``KeyError`` for
    an unknown topic."""
    if topic not in TOPICS:
        raise KeyError(topic)
    return resources.files(__name__).joinpath(f"{topic}.md").read_text(encoding="utf-8")


def schema() -> str:
    """The JSON Schema (draft 2020-12) of ``bosco-service.json``, as JSON text."""
    return resources.files(__name__).joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
