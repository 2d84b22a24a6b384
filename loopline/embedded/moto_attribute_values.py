"""moto's JSON answers holding DynamoDB items, built without its generic walk, with the same bytes.

moto 5 turns a result into its JSON answer by walking the operation's output shape
(``moto/core/serialize.py``): for every member of every structure it builds a context and asks six
alias providers which key of the Python object holds the member, then looks each alias up. A
DynamoDB attribute value is a structure of ten members (S, N, B, SS, NS, BS, M, L, NULL, BOOL) of
which one is set, so an item of twenty attributes costs a few hundred such look-ups, and a stream
record carries two images. bench/profile_transition.py put this walk at the top of moto's own time:
UpdateItem answers with the item it wrote (ReturnValues=ALL_NEW) and GetRecords with every record's
old and new image (22 % of an embedded transition's wall time, at ~12 ms a call).

Here an attribute value that is a one-key dict of the plain kinds (S and N strings, NULL and BOOL
booleans, SS and NS lists of strings, M and L of such values, no empty map key) is copied as the
walk would have built it: the same keys in the same order, the same values (see
``_plain_copy``). Anything else — binary values (B, BS: base64), any other Python type, a serializer
or picker that is not moto's default for DynamoDB — takes moto's walk, unchanged. A map of such values
(an item, a key, a stream record's two images) is copied whole, so its members do not each go through
the walk's dispatch either. Installed once per process (EmbeddedAws), not taken back;
tests/component/test_moto_dynamodb_speedups.py compares the answers of both paths value for value.
"""

from __future__ import annotations

from typing import Any

from .moto_patching import install_once

_SERVICES = ("dynamodb", "dynamodbstreams")
_SHAPE = "AttributeValue"
_NOT_PLAIN = object()


def install_attribute_value_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.core import serialize

    original = serialize.BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        # ``key`` empty: the structure is the answer itself (its members go into ``serialized``).
        if key and shape.name == _SHAPE and _plain_picker(self) \
                and self.operation_model.service_model.service_name in _SERVICES:
            copied = _plain_copy(value)
            if copied is not _NOT_PLAIN:
                serialized[shape.serialization.get("name", key)] = copied
                return
        original(self, serialized, value, shape, key)

    original_map = serialize.BaseJSONSerializer._serialize_type_map

    def serialize_map(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        # A map of attribute values (an item, a key, a stream record's images): copied whole where every
        # value is plain, as the walk would have built it member by member (the map first, under its name,
        # then each value under its own key); a map holding anything else is walked as moto walks it.
        if getattr(shape.value, "name", None) == _SHAPE and type(value) is dict and _plain_picker(self) \
                and self.operation_model.service_model.service_name in _SERVICES:
            copied = _plain_members(value)
            if copied is not _NOT_PLAIN:
                self._default_serialize(serialized, copied, shape, key)
                return
        original_map(self, serialized, value, shape, key)

    serialize.BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]
    serialize.BaseJSONSerializer._serialize_type_map = serialize_map  # type: ignore[method-assign]


def _plain_picker(serializer: Any) -> bool:
    """The walk this copies is the one of moto's default picker with no response transformer
    (ActionResult.execute_result's, for DynamoDB and DynamoDB Streams)."""
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, XFormedAttributePicker

    picker = serializer._value_picker
    return type(picker) is XFormedAttributePicker and picker.alias_providers is DEFAULT_ALIAS_PROVIDERS \
        and not picker.response_transformers and type(serializer).MAP_TYPE is dict


def _plain_copy(value: Any) -> Any:
    """What moto's walk makes of ``value``, an AttributeValue, or _NOT_PLAIN when this cannot tell.

    The walk, for a dict holding one of the AttributeValue members: looks the member up by its own
    name (its other aliases — ``ListAttributeValue``, ``list_attribute_value``... — are not keys of
    such a dict); S and N: ``str(v)`` of a string is the string; NULL and BOOL (boolean shapes) as
    they are; SS and NS: a new list of the strings; M: a new dict, each value walked as an
    AttributeValue under its key (an empty key would be merged into the map instead: not copied
    here); L: a new list, each item walked as an AttributeValue."""
    if type(value) is not dict or len(value) != 1:
        return _NOT_PLAIN
    (tag, inner), = value.items()
    if tag == "S" or tag == "N":
        return {tag: inner} if type(inner) is str else _NOT_PLAIN
    if tag == "BOOL" or tag == "NULL":
        return {tag: inner} if type(inner) is bool else _NOT_PLAIN
    if tag == "SS" or tag == "NS":
        if type(inner) is list and all(type(member) is str for member in inner):
            return {tag: list(inner)}
        return _NOT_PLAIN
    if tag == "M":
        members = _plain_members(inner) if type(inner) is dict else _NOT_PLAIN
        return _NOT_PLAIN if members is _NOT_PLAIN else {"M": members}
    if tag == "L":
        if type(inner) is not list:
            return _NOT_PLAIN
        items = []
        for member in inner:
            copied = _plain_copy(member)
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(copied)
        return {"L": items}
    return _NOT_PLAIN


def _plain_members(value: dict[str, Any]) -> Any:
    """A new dict of ``value``'s attribute values, each as ``_plain_copy`` makes it, or _NOT_PLAIN where one
    cannot be copied or a key is empty (the walk would merge its members into the map)."""
    members: dict[str, Any] = {}
    for name, member in value.items():
        copied = _plain_copy(member) if type(name) is str and name else _NOT_PLAIN
        if copied is _NOT_PLAIN:
            return _NOT_PLAIN
        members[name] = copied
    return members
