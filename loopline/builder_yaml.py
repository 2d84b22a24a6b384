"""Plain workflow data as YAML text that loopline's YAML 1.2 loader reads back as the same data.

PyYAML writes YAML 1.1: it quotes ``yes`` and ``0755`` (booleans and octal there) but would write
``1e3`` plain, which loopline's loader (statemachine/yaml_source.py, YAML 1.2) reads as a number. So
the dumper here knows both sets of rules and quotes a string that either would read as something
else. Multi-line strings (a python task's code) are written as ``|`` blocks, as a person would.
"""

from __future__ import annotations

from typing import Any

import yaml

from statemachine.yaml_source import _BOOL_RE, _FLOAT_RE, _INT_RE, _NULL_RE

_T = "tag:yaml.org,2002:"


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # list items indented under their key, as the docs write them


for _tag, _pattern, _first in ((_T + "bool", _BOOL_RE, list("tTfF")), (_T + "null", _NULL_RE, ["~", "n", "N", ""]),
                               (_T + "int", _INT_RE, list("-+0123456789")),
                               (_T + "float", _FLOAT_RE, list("-+0123456789."))):
    _Dumper.add_implicit_resolver(_tag, _pattern, _first)


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A block keeps code readable; PyYAML falls back to quotes by itself where a block cannot say it.
    style = "|" if "\n" in value and value == value.rstrip(" ") else None
    return dumper.represent_scalar(_T + "str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120,
                     default_flow_style=False)
