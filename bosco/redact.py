"""Keeping secrets out of everything bosco prints (configuration values, messages, URLs) and
private paths out of the pages it serves and publishes (``public_paths``).

One rule set, used by ``bosco config``, configuration errors, S3 retry lines and every error or
warning line the CLI prints:

- a configuration key *looks secret* when its name, lower-cased without ``_``/``-``, contains one
  of ``SECRET_WORDS`` (``secret``, ``password``, ``token``, ``apikey``, ``privatekey``, …) or is
  one of ``SECRET_NAMES`` (``key``, ``auth``, ``pass``, ``pwd``, …); every value under such a key,
  at any depth and inside lists, is shown as ``"****"``;
- the userinfo of a URL (``scheme://user:password@host``, RFC 3986 §3.2.1, which deprecates a
  password there) is replaced by ``****``: ``https://****@host/``; this covers DSNs such as
  ``postgres://user:pass@db/app`` and Sentry's ``https://<key>@o1.ingest.sentry.io/1``;
- a ``name=value`` pair whose name looks secret (a URL query such as ``?token=…``, a connection
  string such as ``Password=…;``) shows ``name=****``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "****"
# Substrings of a normalised key name (lower case, no "_" or "-") that make its value secret.
SECRET_WORDS = ("secret", "password", "passwd", "passphrase", "token", "credential", "apikey", "privatekey",
                "accesskey", "signingkey", "sessionkey", "signature", "authorization", "cookie")
# Whole normalised key names that make their value secret.
SECRET_NAMES = frozenset({"key", "auth", "pass", "pwd", "pin", "sig"})

_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^\s/?#@\"'<>]+@", re.IGNORECASE)
_PAIR = re.compile(r"([A-Za-z][\w.-]*)=([^\s&;,\"'<>]+)")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_secret_key(name: str) -> bool:
    """True when the key ``name`` (one segment, e.g. ``apiKey`` or ``aws_secret``; a dotted path is
    judged by its last segment) names a secret."""
    leaf = _normal(name.rsplit(".", 1)[-1])
    return leaf in SECRET_NAMES or any(word in leaf for word in SECRET_WORDS)


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL replaced by ``****`` and the value of every
    ``name=value`` pair whose name looks secret replaced by ``****``; other text unchanged."""
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _PAIR.sub(lambda m: f"{m.group(1)}={MASK}" if is_secret_key(m.group(1)) else m.group(0), text)


def mask_values(node: Any, secret: bool = False) -> Any:
    """A copy of the JSON value ``node`` fit for printing: below a key that looks secret every
    string and number becomes ``"****"`` (``true``/``false``/``null`` and empty strings stay, they
    hold nothing); every other string is ``redact``-ed. Objects and lists keep their shape."""
    if isinstance(node, Mapping):
        return {k: mask_values(v, secret or is_secret_key(str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [mask_values(v, secret) for v in node]
    if secret and node != "" and isinstance(node, (str, int, float)) and not isinstance(node, bool):
        return MASK
    return redact(node) if isinstance(node, str) else node


def shown_value(dotted: str, value: Any) -> str:
    """How a configuration error shows the rejected ``value`` of key ``dotted``: ``"****"`` (never
    the value) when the key looks secret, else its JSON with URLs' userinfo masked."""
    if is_secret_key(dotted):
        return MASK
    return json.dumps(mask_values(value))


def public_paths(text: str, repo: str | os.PathLike[str] | None = None,
                 roots: Iterable[str | os.PathLike[str]] = ()) -> str:
    """``text`` fit for a page anyone can load (the cdn pages are served with
    ``Access-Control-Allow-Origin: *`` and ``index.html`` is published): a path inside ``repo``
    becomes repo-relative (``/ws/app/bosco-service.json:1:2`` -> ``bosco-service.json:1:2``), one
    inside a folder of ``roots`` (the workspace) relative to it (``app/x.js``), one inside the
    home folder starts with ``~``; ``repo`` and the roots themselves show as ``.``. Both the given
    and the symlink-resolved form of each folder are recognised."""
    folders = [(repo, "")] if repo else []
    folders += [(root, "") for root in roots]
    home = os.path.expanduser("~")
    if home not in ("", "/", "~"):
        folders.append((home, "~/"))
    for folder, replacement in folders:
        for form in dict.fromkeys((os.fspath(folder).rstrip("/"), os.path.realpath(folder))):
            if not form or form == "/":
                continue
            pattern = re.compile(r"(?<![\w.~/-])" + re.escape(form) + r"(/|(?![\w.~-]))")
            text = pattern.sub(lambda m, r=replacement: r if m.group(1) == "/" else (r.rstrip("/") or "."), text)
    return text
