"""Size budgets of bundles (README "Size budgets").

A ``budgets`` object, in the configuration (``.bosco/bosco.json``, ``.bosco/<env>.json``) and in
a service's ``bosco-service.json``, maps bundle patterns to limits::

    {"budgets": {"js/*": "150 kB br", "app-home:css/main": "40 kB gzip", "growth": "10%"}}

A pattern is ``[SERVICE:]TYPE/TAG`` with shell-style wildcards (``fnmatch``: ``*``, ``?``,
``[...]``); without ``SERVICE:`` it applies to every service (in a manifest: to that service only,
where a ``SERVICE:`` part is an error). A limit is ``<number> <unit> <encoding>``: units ``B``,
``kB``/``MB`` (1000) and ``KiB``/``MiB`` (1024, IEC 80000-13), encoding ``raw``, ``gzip`` or
``br`` (the bytes stored by ``s3push``). ``growth`` is ``"<number>%"`` with an optional encoding
(default ``br``): a bundle may not grow more than that against the same bundle of the previous
release. For each bundle and encoding the last matching entry wins, configuration entries first
and the manifest's after them, so specific entries written after general ones override them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bosco.errors import BoscoError, ConfigError, ManifestError
from bosco.jsonfile import load_json

if TYPE_CHECKING:  # loading the configuration parses budgets: measuring them loads the publish modules
    from bosco.assetset import AssetSet, ServiceResult
    from bosco.publish.compress import CompressionCache

ENCODINGS = ("raw", "gzip", "br")
UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "kib": 1024, "mib": 1024**2}
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s+([a-z]+)\s*$", re.IGNORECASE)
_GROWTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*([a-z]*)\s*$", re.IGNORECASE)
_PATTERN = re.compile(r"^(?:([^:/]+):)?([^:/]+)/([^:/]+)$")
EXAMPLE = '{"budgets": {"js/*": "150 kB br", "app-home:css/main": "40 kB gzip", "growth": "10%"}}'


@dataclass(frozen=True)
class Rule:
    """One budget entry: ``service`` and ``bundle`` (``TYPE/TAG``) patterns, ``encoding``, ``limit``
    in bytes (or, for growth rules, ``percent``), the entry as written and where it was read."""

    service: str
    bundle: str
    encoding: str
    limit: int | None
    percent: float | None
    text: str
    origin: str

    def matches(self, service: str, bundle: str) -> bool:
        return fnmatchcase(service, self.service) and fnmatchcase(bundle, self.bundle)


@dataclass(frozen=True)
class Violation:
    """A bundle over its budget: ``key`` (asset key), ``encoding``, ``size`` and ``limit`` in bytes,
    the ``rule`` that set the limit."""

    key: str
    encoding: str
    size: int
    limit: int
    rule: Rule

    @property
    def excess(self) -> int:
        return self.size - self.limit

    def describe(self) -> str:
        """``app-home/55/js/top.js: 160,000 bytes br, limit 150,000 (js/*: "150 kB br" in FILE), 10,000 over``."""
        return (f"{self.key}: {self.size:,} bytes {self.encoding}, limit {self.limit:,} ({self.rule.text} in "
                f"{self.rule.origin}), {self.excess:,} over")

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.key, "encoding": self.encoding, "size": self.size, "limit": self.limit,
                "excess": self.excess, "rule": self.rule.text, "origin": self.rule.origin}


def parse(budgets: Any, origin: Callable[[str], str], error: type[BoscoError] = ConfigError,
          service: str | None = None) -> tuple[Rule, ...]:
    """The rules of one ``budgets`` object. ``origin(key)`` names the file an entry came from;
    ``service`` is set for a manifest's budgets (patterns then name no service). Raises ``error``
    naming the file, the entry and the expected format."""
    if budgets is None:
        return ()
    if not isinstance(budgets, Mapping):
        raise error(f"{origin('')}: budgets must be an object like {EXAMPLE}", "see the README, Size budgets")
    rules = []
    for key, value in budgets.items():
        where = origin(key)
        text = f'{key}: {value!r}'
        if not isinstance(value, str):
            raise error(f"{where}: budgets.{key} must be a string like \"150 kB br\", not {value!r}",
                        "see the README, Size budgets")
        if key == "growth":
            found = _GROWTH.match(value)
            encoding = (found.group(2).lower() or "br") if found else ""
            if not found or encoding not in ENCODINGS:
                raise error(f"{where}: budgets.growth must be a percentage like \"10%\" or \"10% gzip\", not "
                            f"{value!r}", "see the README, Size budgets")
            rules.append(Rule(service or "*", "*/*", encoding, None, float(found.group(1)), text, where))
            continue
        pattern = _PATTERN.match(key)
        if not pattern or (service and pattern.group(1)):
            shape = "TYPE/TAG (this service's bundles)" if service else "[SERVICE:]TYPE/TAG"
            raise error(f"{where}: budgets key {key!r} must be {shape}, e.g. \"js/*\" or \"css/main\"",
                        "see the README, Size budgets")
        limit = _LIMIT.match(value)
        unit = limit.group(2).lower() if limit else ""
        if not limit or unit not in UNITS or limit.group(3).lower() not in ENCODINGS:
            raise error(f"{where}: budgets.{key} must be <number> <B|kB|MB|KiB|MiB> <raw|gzip|br>, e.g. "
                        f"\"150 kB br\", not {value!r}", "see the README, Size budgets")
        rules.append(Rule(service or pattern.group(1) or "*", f"{pattern.group(2)}/{pattern.group(3)}",
                          limit.group(3).lower(), round(float(limit.group(1)) * UNITS[unit]), None, text, where))
    return tuple(rules)


def manifest_rules(path: Path, service: str) -> tuple[Rule, ...]:
    """The ``budgets`` of the manifest at ``path`` (none when it has no such key). Raises
    ``ManifestError`` naming the file for an invalid entry."""
    data = load_json(path, ManifestError, "fix the JSON")
    return parse(data.get("budgets") if isinstance(data, dict) else None, lambda key: str(path), ManifestError,
                 service)


def check(bundles: Mapping[str, tuple[str, str, dict[str, int]]], rules: tuple[Rule, ...],
          previous: Mapping[str, dict[str, int | None]]) -> list[Violation]:
    """The bundles over budget. ``bundles`` maps an asset key to ``(service, "TYPE/TAG", sizes)``
    (sizes: ``{"raw", "gzip", "br"}`` bytes), ``rules`` are in precedence order (later wins per
    encoding), ``previous`` maps an asset key to the sizes of the same bundle in the previous
    release (growth rules are skipped for bundles without one, or without that encoding there)."""
    violations = []
    for key, (service, bundle, sizes) in bundles.items():
        limits: dict[str, Rule] = {}
        growth: Rule | None = None
        for rule in rules:
            if rule.matches(service, bundle):
                if rule.percent is None:
                    limits[rule.encoding] = rule
                else:
                    growth = rule
        for encoding, rule in limits.items():
            if rule.limit is not None and sizes[encoding] > rule.limit:
                violations.append(Violation(key, encoding, sizes[encoding], rule.limit, rule))
        before = previous.get(key, {}).get(growth.encoding) if growth else None
        if growth and growth.percent is not None and before:
            limit = int(before * (1 + growth.percent / 100))
            if sizes[growth.encoding] > limit:
                violations.append(Violation(key, growth.encoding, sizes[growth.encoding], limit,
                                            Rule(growth.service, growth.bundle, growth.encoding, None, growth.percent,
                                                 f"{growth.text}, previous {before:,}", growth.origin)))
    return violations


def rules_for(config_budgets: Any, config_origin: Callable[[str], str],
              services: list[tuple[str, Path]]) -> tuple[tuple[Rule, ...], list[str]]:
    """Every rule in precedence order (the configuration's, then each manifest's) and the problems
    of manifests whose ``budgets`` are invalid (``"<service>: <error>"``). ``services`` are
    ``(name, folder)`` pairs; the configuration was validated by ``config.load_config``."""
    rules = list(parse(config_budgets, config_origin))
    problems = []
    for name, folder in services:
        try:
            rules += manifest_rules(folder / "bosco-service.json", name)
        except BoscoError as exc:
            problems.append(f"{name}: {exc}")
    return tuple(rules), problems


def evaluate(asset_set: AssetSet, rules: tuple[Rule, ...], sizes: Mapping[str, dict[str, int]],
             previous: Mapping[str, dict[str, Any] | None], build: str) -> list[Violation]:
    """``check`` the bundles of ``asset_set`` measured in ``sizes`` (asset key -> raw/gzip/br bytes)
    against ``rules``; ``previous`` maps a service to its previous release index (growth rules)."""
    from bosco.sizes import stored_sizes

    bundles = {b.key: (s.name, f"{b.type}/{b.tag}", sizes[b.key]) for s in asset_set.services for b in s.bundles
               if b.key in sizes}
    before = {}
    for service, index in previous.items():
        for entry in (index or {}).get("objects", []):
            if isinstance(entry, dict) and entry.get("kind") == "bundle" and str(entry.get("key")).count("/") >= 2:
                path = str(entry["key"]).split("/", 2)[2]
                before[f"{service}/{build}/{path}"] = stored_sizes(entry)
    return check(bundles, rules, before)


@dataclass(frozen=True)
class BundleSizes:
    """What the index page shows of one bundle: ``sizes`` (``{"raw", "gzip", "br"}`` bytes) and the
    ``violations`` of its budgets."""

    sizes: dict[str, int]
    violations: tuple[Violation, ...]


def measure_service(build: ServiceResult, rules: tuple[Rule, ...], cache: CompressionCache) -> dict[str, BundleSizes]:
    """``"TYPE/TAG"`` -> sizes and budget violations of every bundle of ``build`` (growth rules
    are skipped: there is no previous release). A bundle served as one file is measured as that
    file; a bundle served file by file (``bosco cdn`` without minify) as the sums of its files'
    sizes, each compressed alone. Compressed through ``cache`` (``s3push`` reuses the bodies)."""
    from bosco.sizes import compressed_sizes

    outputs = {o.key: o for o in build.outputs}
    keys = {f"{b.type}/{b.tag}": [k for k in ((b.key,) if b.key else b.files) if k in outputs] for b in build.bundles}
    measured = compressed_sizes({k: outputs[k] for ks in keys.values() for k in ks}.values(), cache)
    totals = {name: {e: sum(measured[k][e] for k in ks) for e in ENCODINGS} for name, ks in keys.items()}
    violations = check({name: (build.name, name, sizes) for name, sizes in totals.items()}, rules, {})
    return {name: BundleSizes(sizes, tuple(v for v in violations if v.key == name)) for name, sizes in totals.items()}
