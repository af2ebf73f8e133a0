"""Layered configuration (reference: docs/configuration.md).

Layers, lowest to highest: built-in ``DEFAULTS``; the user file; ``<root>/.bosco/bosco.json``;
``<root>/.bosco/<environment>.json``; ``BOSCO_*`` environment variables; command-line options.
Objects deep-merge (``deepmerge``), the higher layer winning per key.

Each section bosco reads is one frozen dataclass (``CdnSection``, ``AwsSection``, ...) whose fields
hold the built-in defaults and the check of a configured value; ``Config.cdn``, ``Config.aws``, ...
return them, and ``Config.origins`` records which file, variable or option set each dotted key.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from deepmerge import Merger

from bosco import userdirs
from bosco.errors import BoscoError, ConfigError
from bosco.files import read_text
from bosco.jsonfile import json_type, load_json, locate
from bosco.redact import mask_values, shown_value
from bosco.typos import close_match

MAX_TIMEOUT_MS = 86_400_000  # one day: a build (or watch build) that needs longer is stuck
TIMEOUT_MS_RANGE = f"a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}"


def valid_timeout_ms(value: Any) -> bool:
    """True for a timeout bosco accepts: a whole number of milliseconds from 1 to one day."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TIMEOUT_MS


CSS_MINIFIERS = ("rcssmin", "csscompressor")  # css.minifier values; rcssmin first: the default
LEGAL_COMMENTS = ("inline", "eof", "linked", "none")  # minify.legalcomments (esbuild's --legal-comments)


def _int_from(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _optional_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def setting(default: Any, check: Callable[[Any], bool], valid: str, shown: bool = True) -> Any:
    """A field of a configuration section: its built-in ``default``, the ``check`` a configured value
    must pass and what a valid value is (``valid``, for the error). ``shown=False`` keeps it out of
    ``DEFAULTS`` (a key accepted for compatibility that ``bosco config`` lists only when set)."""
    return field(default=default, repr=shown, metadata={"check": check, "valid": valid, "shown": shown})


@dataclass(frozen=True)
class CdnSection:
    """``cdn``: the interface and port ``bosco cdn`` listens on and the URL prefix of its links
    (``url`` None: ``http://localhost:<port>``)."""

    host: str = setting("127.0.0.1", lambda v: isinstance(v, str) and v != "", "a host name or IP address")
    port: int = setting(7334, _int_from(0, 65535), "a whole number from 0 to 65535")
    url: str | None = setting(None, _optional_str, "a URL string")


@dataclass(frozen=True)
class CssSection:
    """``css``: the CSS minifier (one of ``CSS_MINIFIERS``)."""

    minifier: str = setting(CSS_MINIFIERS[0], lambda v: v in CSS_MINIFIERS,
                            " or ".join(f'"{m}"' for m in CSS_MINIFIERS))


@dataclass(frozen=True)
class MinifySection:
    """``minify``: where legal comments of minified files go (``LEGAL_COMMENTS``, esbuild's
    ``--legal-comments``)."""

    legalcomments: str = setting("inline", lambda v: v in LEGAL_COMMENTS, " or ".join(f'"{m}"' for m in LEGAL_COMMENTS))


@dataclass(frozen=True)
class FragmentsSection:
    """``fragments``: whether published fragments carry Subresource Integrity attributes."""

    sri: bool = setting(True, lambda v: isinstance(v, bool), "true or false")


@dataclass(frozen=True)
class AwsSection:
    """``aws``: the bucket and CDN of published releases, ``Cache-Control`` values (``maxage`` in
    seconds, RFC 9111) and S3 client settings (``attempts`` per request, timeouts in seconds).
    ``key``/``secret`` are Bosco's credentials, accepted for compatibility and never printed."""

    bucket: str | None = setting(None, lambda v: v is None or (isinstance(v, str) and v != ""), "a bucket name")
    region: str | None = setting(None, _optional_str, "a region name")
    cdn: str | None = setting(None, _optional_str, "a URL string")
    endpoint: str | None = setting(None, lambda v: v is None or (isinstance(v, str) and v.startswith(
        ("http://", "https://"))), "an http:// or https:// URL")
    maxage: int = setting(31536000, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                          "a whole number of seconds")
    shortcache: str = setting("public, max-age=60, must-revalidate", lambda v: isinstance(v, str) and v != "",
                              "a Cache-Control header value")
    attempts: int = setting(5, _int_from(1, 20), "a whole number of attempts from 1 to 20")
    connecttimeout: int = setting(5, _int_from(1, 600), "a whole number of seconds from 1 to 600")
    readtimeout: int = setting(30, _int_from(1, 600), "a whole number of seconds from 1 to 600")
    key: str | None = setting(None, _optional_str, "a string (an AWS access key id)", shown=False)
    secret: str | None = setting(None, _optional_str, "a string (an AWS secret access key)", shown=False)


@dataclass(frozen=True)
class BrotliSection:
    """``brotli``: the brotli quality (0-11, RFC 7932) of published text and of source maps."""

    quality: int = setting(11, _int_from(0, 11), "a brotli quality from 0 to 11")
    mapquality: int = setting(5, _int_from(0, 11), "a brotli quality from 0 to 11")


@dataclass(frozen=True)
class CacheSection:
    """``cache``: the shared cache (``remote``, ``s3://bucket/prefix``) and the size of the local
    cache folder (``maxsize``, MB)."""

    remote: str | None = setting(None, lambda v: v is None or (isinstance(v, str) and v.startswith("s3://")
                                                                and len(v) > 5), "an s3://bucket/prefix URL")
    maxsize: int = setting(2048, _int_from(1, 10**7), "a whole number of MB")


@dataclass(frozen=True)
class BuildSection:
    """``build``: how long (ms) a ``build.command`` may run when its manifest sets no timeout."""

    timeout: int = setting(600000, valid_timeout_ms, TIMEOUT_MS_RANGE)


# The typed sections, in the order ``bosco config`` lists them; ``types`` (".ext" -> media type, on
# top of bosco's table: bosco.assetset.use_types) is a free-form object between cache and build.
SECTIONS: dict[str, type] = {"cdn": CdnSection, "css": CssSection, "minify": MinifySection,
                             "fragments": FragmentsSection, "aws": AwsSection, "brotli": BrotliSection,
                             "cache": CacheSection, "build": BuildSection}


def _defaults(section: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(section) if f.metadata["shown"]}


DEFAULTS: dict[str, Any] = {
    **{name: _defaults(cls) for name, cls in SECTIONS.items() if name != "build"},
    "types": {},
    "build": _defaults(BuildSection),
}
# Keys bosco reads: every field of a section ("types" holds any extension).
KNOWN_KEYS: dict[str, tuple[str, ...]] = {name: tuple(f.name for f in fields(cls)) for name, cls in SECTIONS.items()}
TOP_LEVEL = (*DEFAULTS, "repos", "budgets")
OTHER_VARIABLES = ("BOSCO_CACHE",)  # BOSCO_* variables that are not configuration keys

S = TypeVar("S")


class SectionOf(Generic[S]):
    """``Config.<name>``: the section ``<name>`` of the configuration as its typed dataclass
    (``Config.section``), made once per ``Config``."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, config: Config | None, owner: type) -> S:
        if config is None:  # looked up on the class (documentation tools)
            return self  # type: ignore[return-value]
        cached = config.__dict__.get(self.name)
        if cached is None:
            cached = config.__dict__[self.name] = config.section(self.name, self.cls)
        return cached

# Objects merge key by key; lists and scalars from the higher layer replace the lower one.
_merger = Merger([(dict, ["merge"])], ["override"], ["override"])


@dataclass(frozen=True)
class Config:
    """The resolved configuration: ``values`` is the merged JSON object, ``sources`` the files read,
    ``warnings`` readable lines about keys and variables bosco does not know (see ``unknown_keys``),
    ``origins`` the layer that set each dotted key."""

    values: dict[str, Any]
    sources: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, dotted: str) -> str:
        """The file, variable or option that set ``dotted`` (else ``"configuration"``)."""
        return self.origins.get(dotted) or "configuration"

    def section(self, name: str, cls: type[S]) -> S:
        """Section ``name`` of ``values`` as its typed ``cls``: keys absent or null take the field's
        default (values were checked when loading; keys bosco does not read are left out)."""
        node = self.values.get(name)
        node = node if isinstance(node, Mapping) else {}
        return cls(**{f.name: node[f.name] for f in fields(cls) if node.get(f.name) is not None})  # type: ignore[arg-type]

    cdn = SectionOf(CdnSection)
    css = SectionOf(CssSection)
    minify = SectionOf(MinifySection)
    fragments = SectionOf(FragmentsSection)
    aws = SectionOf(AwsSection)
    brotli = SectionOf(BrotliSection)
    cache = SectionOf(CacheSection)
    build = SectionOf(BuildSection)

    @property
    def types(self) -> dict[str, str]:
        """``types``: extra media types by extension (``{".glb": "model/gltf-binary"}``)."""
        value = self.values.get("types")
        return value if isinstance(value, dict) else {}

    @property
    def budgets(self) -> Any:
        """``budgets`` as configured (None when unset; parsed by ``budgets.rules_for``)."""
        return self.values.get("budgets")

    @property
    def repos(self) -> Any:
        """``repos``: the service folders of the workspace file, in order (None when unset)."""
        return self.values.get("repos")

    def masked(self) -> dict[str, Any]:
        """A copy of ``values`` fit for printing (``redact.mask_values``): every value under a key
        that looks secret, at any depth and inside lists, is ``"****"``; URLs lose their userinfo."""
        return mask_values(self.values)


def user_config_files(env: Mapping[str, str]) -> list[Path]:
    """The user-level files, lowest precedence first: ``~/.bosco/bosco.json`` then the XDG one."""
    home, xdg = userdirs.home(env), userdirs.xdg_home("XDG_CONFIG_HOME", env)
    return [home / ".bosco" / "bosco.json", xdg / "bosco" / "bosco.json"]


def env_overrides(env: Mapping[str, str], values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Turn ``BOSCO_<SECTION>_<KEY>=value`` variables into ``{section: {key: value}}``.

    ``BOSCO_CDN_PORT=8000`` gives ``{"cdn": {"port": 8000}}``; values are parsed as JSON when they
    parse (numbers, booleans), else kept as strings. Section and key match the existing keys of
    ``values`` case-insensitively (``BOSCO_AWS_SECRETACCESSKEY`` overrides ``aws.secretAccessKey``),
    else they are lower-cased.
    """
    values = values or {}
    result: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("BOSCO_") or name.count("_") < 2:
            continue
        section, key = name[len("BOSCO_"):].split("_", 1)
        section = _existing(values, section)
        key = _existing(values.get(section) if isinstance(values.get(section), Mapping) else {}, key)
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        result.setdefault(section, {})[key] = value
    return result


def _existing(node: Mapping[str, Any], name: str) -> str:
    return next((k for k in node if k.lower() == name.lower()), name.lower())


def _record(layer: Mapping[str, Any], origin: str, origins: dict[str, str], prefix: str = "") -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = origin
        if isinstance(value, Mapping):
            _record(value, origin, origins, dotted + ".")


def _at(origin: str, dotted: str) -> str:
    """``origin`` followed by the ``line:column`` where a JSON file ``origin`` sets ``dotted``
    (``/ws/.bosco/bosco.json:3:5``, as manifest errors say it); a variable or option as it is."""
    if origin.endswith(".json"):
        try:
            where = locate(read_text(Path(origin)), dotted)
        except (BoscoError, OSError, ValueError):  # changed since it was read: the file alone
            where = None
        if where:
            return f"{origin}:{where}"
    return origin


def validate(values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    """Check the keys bosco reads (the ``check`` of every field of ``SECTIONS``); raise
    ``ConfigError`` naming the file, variable or option that set a bad value, what a valid value is,
    and the value found (``"****"`` for a key that looks secret, ``redact.shown_value``)."""
    for section, default in DEFAULTS.items():
        if not isinstance(values.get(section), Mapping):
            origin = origins.get(section, "configuration")
            raise ConfigError(f"{_at(origin, section)}: {section} must be an object like {json.dumps(default)}",
                              f"fix {section} in {origin}")
    from bosco.assetset import parse_types  # the asset set's type table imports more than config needs

    try:
        parse_types(values["types"])
    except ValueError as exc:
        origin = origins.get("types", "configuration")
        raise ConfigError(f"{_at(origin, 'types')}: types: {exc}", f"fix types in {origin}") from exc
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            dotted = f"{section}.{f.name}"
            value = values[section].get(f.name)
            if dotted not in origins or f.metadata["check"](value):
                continue
            origin = origins[dotted]
            raise ConfigError(f"{_at(origin, dotted)}: {dotted} must be {f.metadata['valid']}, "
                              f"not {shown_value(dotted, value)}",
                              f"fix {dotted} in {origin}")


def _variable(dotted: str) -> str:
    return "BOSCO_" + dotted.replace(".", "_").upper()


def unknown_keys(values: Mapping[str, Any], origins: Mapping[str, str], env: Mapping[str, str],
                 strict: bool = False) -> list[str]:
    """Readable lines about configuration keys bosco does not read, each naming the file, variable
    or option that set it: a key one typo away from a known one (``cdn.prot``, ``aws.buckett``,
    ``BOSCO_AWS_BUCKETT``, a top-level ``fragment``), with the key it probably means. With
    ``strict``, also every other unknown key inside bosco's own sections (``SECTIONS``). Other
    top-level keys are left alone: Bosco's configuration
    files hold settings of its other commands."""
    lines = []

    def report(dotted: str, meant: str | None) -> None:
        origin = origins.get(dotted, "configuration")
        if origin.startswith("environment variable"):
            hint = f"; did you mean {_variable(meant)}?" if meant else ""
        else:
            hint = f"; did you mean {meant}?" if meant else ""
        lines.append(f"{origin}: unknown key {dotted}{'' if strict else ' ignored'}{hint}")  # strict: an error

    for section, node in values.items():
        if section not in TOP_LEVEL:
            meant = close_match(section, TOP_LEVEL)
            if meant:
                report(section, meant)
        elif section in KNOWN_KEYS and isinstance(node, Mapping):
            for key in node:
                if key not in KNOWN_KEYS[section]:
                    meant = close_match(key, KNOWN_KEYS[section])
                    if meant or strict:
                        report(f"{section}.{key}", f"{section}.{meant}" if meant else None)
    variables = [*OTHER_VARIABLES, *(_variable(f"{s}.{k}") for s, keys in KNOWN_KEYS.items() for k in keys)]
    for name in env:
        if name.startswith("BOSCO_") and name.count("_") < 2 and name not in OTHER_VARIABLES:
            meant = close_match(name, variables)
            if meant:
                lines.append(f"environment variable {name} is not one bosco reads; did you mean {meant}?")
    return lines


def environment_warning(root: Path | None, environment: str) -> str | None:
    """A line when ``environment`` (not ``local``) has no ``<root>/.bosco/<environment>.json``: its
    settings (the bucket, above all) then come from the other layers only. Names the environments
    that have a file, and the closest one."""
    if root is None or environment == "local" or (root / ".bosco" / f"{environment}.json").is_file():
        return None
    folder = root / ".bosco"
    known = sorted(p.stem for p in folder.glob("*.json") if p.stem != "bosco") if folder.is_dir() else []
    meant = close_match(environment, known)
    return (f"environment {environment}: no {folder / (environment + '.json')}; its settings come from the other "
            "layers only" + (f"; did you mean -e {meant}?" if meant else "")
            + (f" (environments with a file: {', '.join(known)})" if known else ""))


def _layer(path: Path) -> dict[str, Any]:
    data = load_json(path, ConfigError, "fix the JSON or remove the file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a JSON object, not {json_type(data)}",
                          'write the settings as one object, e.g. {"cdn": {"port": 7334}} (docs/configuration.md)')
    return data


def load_config(
    root: Path | None,
    environment: str,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Config:
    """Resolve the configuration for the workspace at ``root`` and ``environment``.

    ``overrides`` are command-line values as a nested object (highest layer); ``env`` defaults to
    ``os.environ``. Raises ``ConfigError`` naming the file (with line:column) when a layer is not
    valid JSON or not an object, and naming the layer that set a value of the wrong type. Unknown
    keys and a missing environment file are ``warnings`` (``unknown_keys``, ``environment_warning``);
    with ``strict`` an unknown key raises ``ConfigError`` listing them all.
    """
    env = os.environ if env is None else env
    values = copy.deepcopy(DEFAULTS)
    origins: dict[str, str] = {}
    files = list(user_config_files(env))
    if root is not None:
        files += [root / ".bosco" / "bosco.json", root / ".bosco" / f"{environment}.json"]
    sources = []
    for path in files:
        if os.path.lexists(path):  # a FIFO or broken symlink is an error naming it, never skipped or opened
            layer = _layer(path)
            _record(layer, str(path), origins)
            _merger.merge(values, layer)
            sources.append(str(path))
    from_env = env_overrides(env, values)
    for section, keys in from_env.items():
        for key in keys:
            origins[f"{section}.{key}"] = f"environment variable BOSCO_{section.upper()}_{key.upper()}"
    _merger.merge(values, from_env)
    if overrides:
        _record(overrides, "command line", origins)
        _merger.merge(values, copy.deepcopy(dict(overrides)))
    validate(values, origins)
    from bosco import budgets  # budgets measure asset sets: far more than loading needs

    budgets.parse(values.get("budgets"), lambda key: origins.get(f"budgets.{key}" if key else "budgets", "budgets"))
    unknown = unknown_keys(values, origins, env, strict)
    if strict and unknown:
        raise ConfigError("; ".join(unknown), "fix or remove these keys (reference: docs/configuration.md)")
    missing_env = environment_warning(root, environment)
    return Config(values, tuple(sources), warnings=tuple(unknown) + ((missing_env,) if missing_env else ()),
                  origins=origins)
