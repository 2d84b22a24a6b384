"""moto's look-up of a request's handler method, without listing the handler class's methods.

For every request moto 5 lists the methods of the service's response class
(``method_names_from_class``: ``inspect.getmembers`` over ``dir()``, a few hundred names) only to
ask whether the action's name is one of them: about an eighth of a PutItem's CPU, timed in a loop of
PutItems on moto. The list holds a name when ``getattr(class, name)`` is a plain function; that is
asked of the one name instead. The answer is the same for every name: ``getmembers`` takes its names
from ``dir(class)``, and a name ``dir`` does not list but ``getattr`` finds could only come from the
metaclass, where it would be a bound method, not a function. Installed once per process
(EmbeddedAws), not taken back.
"""

from __future__ import annotations

import inspect
from typing import Any

from .moto_patching import install_once


class MethodNames:
    """Stands for ``method_names_from_class(clazz)`` where moto only asks ``action in method_names``."""

    def __init__(self, clazz: Any):
        self._clazz = clazz

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self._clazz, name, None))


def install_dispatch_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.core import responses

    responses.method_names_from_class = MethodNames  # type: ignore[assignment]  # the name BaseResponse.call_action calls
