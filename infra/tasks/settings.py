"""Which provider serves which task type: chosen by the deployment's configuration, never by the workflow.

``LOOPLINE_PROVIDERS`` names providers per type (``"email=ses,sms=sns,llm=bedrock"``);
a type it does not name gets the default of the environment named by
``LOOPLINE_PROVIDER_DEFAULTS`` (``aws`` or ``local``; unset means ``local``).
template.yaml sets ``aws`` for the functions; the local runtime and local mode
run with ``local``. Types whose real implementation needs nothing outside the
machine (http, shell, database, file, custom) have one provider, used in both.

Provider modules register a factory per (type, name) with :func:`register`;
a deployment may register its own (e.g. a Twilio voice provider) the same way.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from .base import TaskFailure

PROVIDER_CONFIG_ERROR = "ProviderConfigError"
ENVIRONMENTS = ("aws", "local")

_lock = threading.Lock()
_factories: dict[str, dict[str, Callable[[], Any]]] = {}
# Per environment: type -> provider name, or a callable choosing one at use time.
_defaults: dict[str, dict[str, str | Callable[[], str]]] = {"aws": {}, "local": {}}


def register(kind: str, name: str, factory: Callable[[], Any], *, aws_default: bool = False,
             local_default: bool = False) -> None:
    with _lock:
        _factories.setdefault(kind, {})[name] = factory
        if aws_default:
            _defaults["aws"][kind] = name
        if local_default:
            _defaults["local"][kind] = name


def unregister(kind: str, name: str) -> None:
    with _lock:
        _factories.get(kind, {}).pop(name, None)
        for defaults in _defaults.values():
            if defaults.get(kind) == name:
                del defaults[kind]


def set_default(kind: str, environment: str, choose: str | Callable[[], str]) -> None:
    with _lock:
        _defaults[environment][kind] = choose


def environment() -> str:
    value = (os.environ.get("LOOPLINE_PROVIDER_DEFAULTS") or "local").strip().lower()
    if value not in ENVIRONMENTS:
        raise TaskFailure(PROVIDER_CONFIG_ERROR,
                          f"LOOPLINE_PROVIDER_DEFAULTS={value!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return value


def configured() -> dict[str, str]:
    """``LOOPLINE_PROVIDERS`` as type -> provider name."""
    chosen: dict[str, str] = {}
    for part in (os.environ.get("LOOPLINE_PROVIDERS") or "").split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, name = part.partition("=")
        if not sep or not kind.strip() or not name.strip():
            raise TaskFailure(PROVIDER_CONFIG_ERROR,
                              f"LOOPLINE_PROVIDERS: {part!r} is not of the form type=provider")
        chosen[kind.strip().lower()] = name.strip().lower()
    return chosen


def provider_name(kind: str) -> str:
    name = configured().get(kind)
    if name is not None:
        return name
    env = environment()
    choice = _defaults[env].get(kind)
    if choice is None:
        known = sorted(_factories.get(kind, {}))
        if len(known) == 1:
            return known[0]
        raise TaskFailure(PROVIDER_CONFIG_ERROR,
                          f"no default '{kind}' provider for {env}; set LOOPLINE_PROVIDERS={kind}=<one of "
                          f"{', '.join(known) or 'none'}>")
    return choice() if callable(choice) else choice


def available(kind: str) -> list[str]:
    return sorted(_factories.get(kind, {}))


def create(kind: str) -> Any:
    """A provider instance for ``kind`` as configured now (instances are cheap; AWS clients are cached)."""
    name = provider_name(kind)
    factory = _factories.get(kind, {}).get(name)
    if factory is None:
        raise TaskFailure(PROVIDER_CONFIG_ERROR,
                          f"unknown '{kind}' provider {name!r}; available: {', '.join(available(kind)) or 'none'}")
    return factory()


def describe() -> dict[str, str]:
    """type -> provider name as configured now (for the dev server and diagnostics)."""
    out = {}
    for kind in sorted(_factories):
        try:
            out[kind] = provider_name(kind)
        except TaskFailure as exc:
            out[kind] = f"error: {exc.message}"
    return out
