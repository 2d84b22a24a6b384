"""template.yaml, evaluated locally: SAM translation, parameters, intrinsics.

moto's CloudFormation cannot take our template (it skips SAM resources and
schedule groups), so the local provisioner evaluates the template itself. This
module knows nothing about services: the provisioner hands the resolver the
values of parameters and pseudo-parameters and every resource's Ref and
attributes (through ``ref`` / ``get_att`` callbacks).
"""

from __future__ import annotations

import base64
import copy
import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse


class TemplateError(RuntimeError):
    """template.yaml cannot be evaluated locally."""


class IntrinsicError(TemplateError, ValueError):
    """The template uses an intrinsic (or a value) we cannot resolve locally."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


# Marks values to drop, as CloudFormation drops properties set to AWS::NoValue.
NO_VALUE: Any = _NoValue()

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def _getatt_parts(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
    elif isinstance(value, list) and len(value) == 2:
        logical_id, attribute = value
    else:
        raise IntrinsicError(f"malformed Fn::GetAtt: {value!r}")
    if not isinstance(logical_id, str) or not isinstance(attribute, str) or not attribute:
        raise IntrinsicError(f"malformed Fn::GetAtt: {value!r}")
    return logical_id, attribute


def references(node: Any) -> set[str]:
    """Names (resources or parameters) a node refers to via Ref/GetAtt/Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(_getatt_parts(value)[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                local = set(variables) if isinstance(variables, dict) else set()
                for name in _SUB_VAR.findall(text):
                    if not name.startswith("!"):
                        head = name.split(".", 1)[0]
                        if name not in local and head not in local:
                            found.add(head)
                found |= references(variables)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def creation_order(resources: Mapping[str, Any], wanted: list[str]) -> list[str]:
    """``wanted`` resources ordered so each comes after those it refers to (or DependsOn)."""
    pending: dict[str, set[str]] = {}
    for lid in wanted:
        depends = resources[lid].get("DependsOn", [])
        depends = {depends} if isinstance(depends, str) else set(depends)
        pending[lid] = (references(resources[lid].get("Properties", {})) | depends) & set(wanted) - {lid}
    order: list[str] = []
    while pending:
        ready = [lid for lid, deps in pending.items() if not deps]
        if not ready:
            raise TemplateError(f"dependency cycle among {sorted(pending)}")
        order.extend(ready)
        for lid in ready:
            del pending[lid]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


class Resolver:
    """Evaluates intrinsics against known values.

    ``ref(name)`` returns the Ref value of a resource; ``get_att(name, attr)``
    an attribute. Parameters and pseudo-parameters live in ``values``.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        conditions: Mapping[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
        mappings: Mapping[str, Any] | None = None,
        region: str = "us-east-1",
    ) -> None:
        self._values = dict(values)
        self._condition_defs = dict(conditions)
        self._condition_cache: dict[str, bool] = {}
        self._ref = ref
        self._get_att = get_att
        self._mappings = dict(mappings or {})
        self._region = region

    # -- conditions ---------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            if name not in self._condition_defs:
                raise IntrinsicError(f"unknown condition {name!r}")
            # Poison the cache first so a self-referencing condition fails
            # instead of recursing forever.
            self._condition_cache[name] = False
            result = self.resolve(self._condition_defs[name])
            if not isinstance(result, bool):
                raise IntrinsicError(f"condition {name!r} is not a boolean: {result!r}")
            self._condition_cache[name] = result
        return self._condition_cache[name]

    # -- evaluation ---------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = (self.resolve(item) for item in node)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            handler = self._FUNCTIONS.get(key)
            # "Condition" is also an ordinary key (IAM statements), so it is a
            # function only when it names a condition.
            if handler is not None and (key != "Condition" or isinstance(arg, str)):
                return handler(self, arg)
            if key.startswith("Fn::"):
                raise IntrinsicError(f"unsupported intrinsic {key}")
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _fn_ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise IntrinsicError(f"malformed Ref: {name!r}")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._values:
            return self._values[name]
        return self._ref(name)

    def _fn_get_att(self, arg: Any) -> Any:
        logical_id, attribute = _getatt_parts(self.resolve(arg))
        return self._get_att(logical_id, attribute)

    def _fn_sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str):
            text, variables = arg[0], self.resolve(arg[1])
        else:
            raise IntrinsicError(f"malformed Fn::Sub: {arg!r}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stays literally as ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return _text(self._get_att(logical_id, attribute))
            return _text(self._fn_ref(name))

        return _SUB_VAR.sub(substitute, text)

    def _fn_join(self, arg: Any) -> str:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise IntrinsicError(f"malformed Fn::Join: {arg!r}")
        delimiter, items = arg[0], self.resolve(arg[1])
        if not isinstance(items, list):
            raise IntrinsicError(f"Fn::Join needs a list, got {items!r}")
        return str(delimiter).join(_text(item) for item in items)

    def _fn_select(self, arg: Any) -> Any:
        index, items = self.resolve(arg[0]), self.resolve(arg[1])
        try:
            return items[int(index)]
        except (IndexError, ValueError, TypeError) as exc:
            raise IntrinsicError(f"Fn::Select {index!r} out of {items!r}") from exc

    def _fn_split(self, arg: Any) -> list[str]:
        delimiter, text = arg[0], self.resolve(arg[1])
        return str(text).split(delimiter)

    def _fn_if(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise IntrinsicError(f"malformed Fn::If: {arg!r}")
        # Only the chosen branch is resolved, as CloudFormation does: the other
        # may refer to resources that do not exist under this condition.
        return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self.resolve(item) for item in arg)
        return _text(left) == _text(right)

    def _fn_not(self, arg: Any) -> bool:
        return not self._truth(arg[0])

    def _fn_and(self, arg: Any) -> bool:
        return all(self._truth(item) for item in arg)

    def _fn_or(self, arg: Any) -> bool:
        return any(self._truth(item) for item in arg)

    def _fn_condition(self, arg: Any) -> bool:
        return self.condition(arg)

    def _truth(self, node: Any) -> bool:
        value = self.resolve(node)
        if not isinstance(value, bool):
            raise IntrinsicError(f"not a condition: {node!r}")
        return value

    def _fn_find_in_map(self, arg: Any) -> Any:
        name, top, second = (self.resolve(item) for item in arg[:3])
        try:
            return self._mappings[name][top][second]
        except KeyError as exc:
            raise IntrinsicError(f"Fn::FindInMap: no {name}/{top}/{second}") from exc

    def _fn_base64(self, arg: Any) -> str:
        return base64.b64encode(_text(self.resolve(arg)).encode()).decode()

    def _fn_get_azs(self, arg: Any) -> list[str]:
        region = self.resolve(arg) or self._region
        return [f"{region}{zone}" for zone in "abc"]

    _FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Base64": _fn_base64,
        "Fn::GetAZs": _fn_get_azs,
    }


def parameter_values(declared: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Template parameter values: overrides, else defaults; checked as CloudFormation checks them."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise IntrinsicError(f"unknown template parameters: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = as_text(overrides[name])
        elif "Default" in spec:
            value = as_text(spec["Default"])
        else:
            raise IntrinsicError(f"parameter {name} has no default; pass it in parameters")
        # Check what CloudFormation would check, so a bad override fails here
        # rather than only on `sam deploy`.
        if "AllowedValues" in spec and value not in [as_text(v) for v in spec["AllowedValues"]]:
            raise IntrinsicError(f"parameter {name}={value!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise IntrinsicError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise IntrinsicError(f"parameter {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise IntrinsicError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise IntrinsicError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")
        values[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
    return values


def _text(value: Any) -> str:
    """CloudFormation's string form: numbers as written, booleans lowercase."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise IntrinsicError(f"expected a scalar, got {value!r}")


def as_text(value: Any) -> str:
    return _text(value)


# ------------------------------------------------------------- SAM translation
# SAM maps managed policy *names* in Policies to ARNs through this map; the
# real loader calls IAM. Names not listed here must be given as ARNs.
_MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in [
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("service-role/", "AWSLambdaSQSQueueExecutionRole"),
        ("service-role/", "AWSLambdaDynamoDBExecutionRole"),
        ("service-role/", "AWSLambdaVPCAccessExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
        ("", "AWSXRayDaemonWriteAccess"),
    ]
}


@contextmanager
def _quiet_translator() -> Iterator[None]:
    # The translator warns about feature toggles and unpublished metrics on
    # every call; that is noise on a CLI whose stderr the user reads.
    logger = logging.getLogger("samtranslator")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _stage_local_paths(sam: dict[str, Any], base: Path) -> None:
    """Stand in for `sam package`: the translator only accepts S3 code locations."""
    placeholder = "s3://loopline-local-artifacts/code.zip"
    function_globals = sam.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str) and not function_globals["CodeUri"].startswith("s3://"):
        function_globals["CodeUri"] = placeholder
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            if isinstance(props.get("CodeUri"), str) and not props["CodeUri"].startswith("s3://"):
                props["CodeUri"] = placeholder
        elif kind == "AWS::Serverless::LayerVersion":
            if isinstance(props.get("ContentUri"), str) and not props["ContentUri"].startswith("s3://"):
                props["ContentUri"] = placeholder
        elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props["DefinitionBody"] = yaml_parse((base / uri).read_text())
                del props["DefinitionUri"]


def translate(
    template_path: str | Path,
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """SAM template -> CloudFormation template (dict), with no AWS call."""
    path = Path(template_path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, region, tuple(sorted((parameters or {}).items())))
    # Tests provision once per test: parsing and translating each time would
    # cost more than the AWS calls. Callers get a copy they may mutate.
    return copy.deepcopy(_translate_cached(*key))


@functools.lru_cache(maxsize=16)
def _translate_cached(path: str, _mtime: int, _size: int, region: str,
                      parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    sam = _load_cached(path, _mtime, _size)
    _stage_local_paths(sam, Path(path).parent)
    # The session only carries the region: the translator reads it, never calls AWS.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        with _quiet_translator():
            result = translator.translate(
                sam,
                parameter_values=dict(parameters),
                get_managed_policy_map=lambda: dict(_MANAGED_POLICIES),
            )
            translator.metrics.publish()
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"{path}: invalid SAM template: {causes}") from exc
    return result


@functools.lru_cache(maxsize=16)
def _parse_cached(path: str, _mtime: int, _size: int) -> dict[str, Any]:
    return dict(yaml_parse(Path(path).read_text()))


def _load_cached(path: str, mtime: int, size: int) -> dict[str, Any]:
    return copy.deepcopy(_parse_cached(path, mtime, size))


def read_parameters(path: str | Path) -> dict[str, Any]:
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size).get("Parameters") or {}
