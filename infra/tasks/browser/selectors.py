"""The CSS selector subset the http stand-in supports: tag, .class, #id, their compounds,
the descendant combinator and commas. Anything else is refused as InvalidConfig, never guessed at."""

from __future__ import annotations

import re

from ..base import TaskFailure
from ..common import INVALID_CONFIG
from .html import Element

_COMPOUND = re.compile(r"^(?P<tag>[A-Za-z][A-Za-z0-9-]*|\*)?(?P<rest>(?:[.#][A-Za-z_-][\w-]*)*)$")


def _compound(text: str) -> tuple[str | None, str | None, set[str]]:
    match = _COMPOUND.match(text)
    if not match or not text:
        raise TaskFailure(INVALID_CONFIG, f"selector part {text!r} is not supported by the http browser stand-in "
                                          "(tag, .class, #id, their combinations, descendants and commas are)")
    tag = match["tag"] if match["tag"] not in (None, "*") else None
    ident, classes = None, set()
    for kind, name in re.findall(r"([.#])([\w-]+)", match["rest"]):
        if kind == "#":
            ident = name
        else:
            classes.add(name)
    return (tag.lower() if tag else None), ident, classes


def _matches(element: Element, part: tuple[str | None, str | None, set[str]]) -> bool:
    tag, ident, classes = part
    if tag and element.tag != tag:
        return False
    if ident is not None and element.attrs.get("id") != ident:
        return False
    return not classes or classes <= set(element.attrs.get("class", "").split())


def select_all(root: Element, selector: str) -> list[Element]:
    """The elements matching ``selector`` (tag, .class, #id, compounds, descendant combinator, commas)."""
    groups = []
    for group in selector.split(","):
        parts = [_compound(p) for p in group.split()]
        if not parts:
            raise TaskFailure(INVALID_CONFIG, f"selector {selector!r} has an empty part")
        groups.append(parts)
    found = []
    for element in root.iter():
        for parts in groups:
            if not _matches(element, parts[-1]):
                continue
            node, wanted = element.parent, len(parts) - 2
            while node is not None and wanted >= 0:
                if _matches(node, parts[wanted]):
                    wanted -= 1
                node = node.parent
            if wanted < 0:
                found.append(element)
                break
    return found
