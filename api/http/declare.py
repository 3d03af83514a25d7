"""What a responder reads, declared once: the Field specs that validate it also document it.

``@takes(SPEC, ...)`` puts the merged specs on the responder as ``responder.spec``; the
OpenAPI document turns them into query parameters (GET, DELETE) or a JSON body (POST, PUT).
The specs are the engine's own dicts, the very objects its ``check()`` calls use.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from engine.store.validate import INT64, Field

Spec = Mapping[str, Field]
Schema = dict[str, Any]
R = TypeVar("R", bound=Callable[..., Any])


def takes(
    *specs: Spec,
    nested: Mapping[str, Schema] | None = None,
    free: Schema | None = None,
    upload: Spec | None = None,
    header: Mapping[str, Field] | None = None,
    answers: Iterable[int | str] = (),
    produces: Iterable[str] = (),
) -> Callable[[R], R]:
    """Declare the parameters a responder reads.

    ``nested`` maps a field to the spec of its object (or of each item of its list);
    ``free`` is the value schema of an object of free-form keys; ``upload`` is the spec of
    the form fields next to multipart file parts; ``header`` maps header names to Fields;
    ``answers`` lists statuses beyond those the role and method imply; ``produces`` lists
    the media types of a success when it is not only JSON.
    """
    merged: dict[str, Field] = {}
    for spec in specs:
        merged.update(spec)

    def decorate(responder: Any) -> Any:
        responder.spec = merged
        responder.nested = dict(nested or {})
        responder.free = free
        responder.upload = upload
        responder.header = dict(header or {})
        responder.answers = tuple(str(code) for code in answers)
        responder.produces = tuple(produces)
        return responder

    return decorate


def reads_nothing(responder: R) -> R:
    """Declare that a responder reads no parameters beyond its path."""
    return takes()(responder)


def field_schema(field: Field) -> Schema:
    """Return the JSON schema of one :class:`Field`."""
    if field.kind is int:
        schema: Schema = {"type": "integer", "minimum": -INT64, "maximum": INT64 - 1}
        if field.minimum is not None:
            schema["minimum"] = field.minimum
        if field.maximum is not None:
            schema["maximum"] = field.maximum
        return schema
    if field.kind is bool:
        return {"type": "boolean"}
    if field.kind is list:
        return {"type": "array"}
    if field.kind is dict:
        return {"type": "object"}
    if field.kind is not str:
        return {}
    if field.choices is not None:
        return {"type": "string", "enum": list(field.choices)}
    schema = {"type": "string", "maxLength": field.max_len}
    if field.pattern is not None:
        schema["pattern"] = f"^(?:{field.pattern.pattern})$"
    if not field.allow_empty:
        schema["minLength"] = 1
    return schema


def object_schema(
    spec: Mapping[str, Field | Mapping[str, Any]],
    nested: Mapping[str, Schema] | None = None,
    free: Schema | None = None,
) -> Schema:
    """Return the JSON schema of an object checked against ``spec`` (name -> Field)."""
    nested = nested or {}
    properties = {}
    for name, field in spec.items():
        schema = field_schema(field) if isinstance(field, Field) else dict(field)
        inner = nested.get(name)
        if inner is not None:
            if all(isinstance(f, Field) for f in inner.values()):
                inner = object_schema(inner)
            if schema.get("type") == "array":
                schema["items"] = inner
            else:
                schema = inner
        properties[name] = schema
    schema = {"type": "object", "properties": properties}
    required = [n for n, f in spec.items() if isinstance(f, Field) and f.required]
    if required:
        schema["required"] = required
    if free is not None:
        schema["additionalProperties"] = free
    return schema
