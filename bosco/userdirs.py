"""The user's folders bosco reads and writes, by the XDG Base Directory Specification: one place
for ``$XDG_CONFIG_HOME``/``$XDG_CACHE_HOME`` and their defaults, and for ``BOSCO_CACHE=0``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULTS = {"XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache"}  # relative to the home folder


def home(env: Mapping[str, str] | None = None) -> Path:
    """``$HOME``, else the account's home folder."""
    env = os.environ if env is None else env
    return Path(env.get("HOME") or Path.home())


def xdg_home(variable: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME`` or ``$XDG_CACHE_HOME`` (``variable``) when set to an absolute path (the
    specification says to ignore a relative one), else ``~/.config`` or ``~/.cache``."""
    env = os.environ if env is None else env
    value = env.get(variable, "")
    return Path(value) if os.path.isabs(value) else home(env) / DEFAULTS[variable]


def cache_enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``BOSCO_CACHE=0``: nothing is cached on disk (verified minification, source maps,
    compressed bodies)."""
    env = os.environ if env is None else env
    return env.get("BOSCO_CACHE") != "0"
