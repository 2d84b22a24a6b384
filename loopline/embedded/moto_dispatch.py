"""moto's look-ups of a request's handler: its method without listing the class's methods, and its
backend's URLs without building them anew.

For every request moto 5 lists the methods of the service's response class
(``method_names_from_class``: ``inspect.getmembers`` over ``dir()``, a few hundred names) only to
ask whether the action's name is one of them: about an eighth of a PutItem's CPU, timed in a loop of
PutItems on moto. The list holds a name when ``getattr(class, name)`` is a plain function; that is
asked of the one name instead. The answer is the same for every name: ``getmembers`` takes its names
from ``dir(class)``, and a name ``dir`` does not list but ``getattr`` finds could only come from the
metaclass, where it would be a bound method, not a function.

And for every request moto builds the backend's ``urls`` (its url_bases times its urls module's
url_paths, each formatted and again with every alternative DNS suffix: about 45 us, a few per cent
of a PutItem) to find the handler of the request's URL. They depend on the backend's class and on
whether ISO regions are enabled (an environment variable, read each time as moto reads it), so they
are kept per (class, flag), and each caller gets a copy of its own; a backend with a urls module of
its own (S3's, which reloads it for its settings) has them built as before. Installed once per process
(EmbeddedAws), not taken back; tests/component/test_moto_dispatch_speedups.py compares every
backend's URLs with moto's.
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
    install_urls_cache()


def install_urls_cache() -> None:
    from moto.core.base_backend import BaseBackend
    from moto.settings import enable_iso_regions

    original: Any = BaseBackend.urls
    base_module = BaseBackend._url_module
    kept: dict[tuple[type, bool], dict[str, Any]] = {}

    def urls(self: Any) -> dict[str, Any]:
        if type(self)._url_module is not base_module:
            return original.fget(self)  # its own module (S3's reloads it, for its settings): as moto builds them
        key = (type(self), bool(enable_iso_regions()))
        found = kept.get(key)
        if found is None:
            found = kept[key] = original.fget(self)
        return dict(found)

    BaseBackend.urls = property(urls)  # type: ignore[method-assign, assignment]
