"""The OpenAPI 3 description of every route, built from the registered resources."""

import re
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import falcon

from api.http.declare import Schema, field_schema, object_schema

METHODS = ("get", "post", "put", "delete")
FIELD = re.compile(r"{(\w+)(?::[^}]*)?}")

ENVELOPE = {
    "type": "object",
    "required": ["stat"],
    "properties": {
        "stat": {"type": "boolean"},
        "data": {},
        "info": {"type": "string"},
        "uuid": {"type": "string"},
    },
}
STATUS_TEXT = {
    "400": "bad input; `info` names the field",
    "401": "no or unknown credentials",
    "403": "the caller lacks the role",
    "404": "unknown id or route",
    "409": "conflicts with existing state",
    "411": "an upload sent without a Content-Length",
    "413": "the body is too large",
    "503": "the database or the queue is unreachable (a launched task is stored)",
    "507": "the disk is full",
}
# Roles that change state, so a request can conflict with it or find the disk full.
CHANGING = ("write", "delete", "control", "admin")
QUERY_METHODS = ("get", "delete")


def path_of(template: str) -> str:
    """Turn a Falcon template such as ``/jobs/{projectid:int}`` into an OpenAPI path."""
    return FIELD.sub(r"{\1}", template)


def _json(schema: Schema | None = None) -> dict[str, Schema]:
    return {"application/json": {"schema": schema or {"$ref": "#/components/schemas/Envelope"}}}


def statuses(responder: Callable[..., Any], method: str, fields: Sequence[str]) -> list[str]:
    """Return the statuses ``responder`` can answer: those of every request (a bad or too
    large body, a database outage), of its role, its method and its own declaration."""
    role = getattr(responder, "role", "public")
    codes = {"400", "413", "503"}
    if fields or getattr(responder, "spec", None) or role != "public":
        codes.add("404")
    if role != "public":
        codes |= {"401", "403"}
    if method != "get" or role in CHANGING:
        codes |= {"409", "507"}
    if getattr(responder, "upload", None) is not None:
        codes |= {"411", "507"}
    codes |= set(getattr(responder, "answers", ()))
    return sorted(codes)


def _path_parameter(template: str, name: str) -> Schema:
    converter = re.search(r"{" + name + r":(\w+)", template)
    schema = {"type": "string", "minLength": 1}
    if converter and converter.group(1) == "int":
        schema = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _requests(
    op: Schema, responder: Callable[..., Any], method: str, fields: Sequence[str]
) -> None:
    """Describe what ``responder`` reads: query parameters, a JSON body or an upload."""
    spec = {k: v for k, v in (getattr(responder, "spec", None) or {}).items() if k not in fields}
    nested = getattr(responder, "nested", {})
    for name, field in getattr(responder, "header", {}).items():
        schema = field_schema(field)
        op["parameters"].append(
            {"name": name, "in": "header", "required": field.required, "schema": schema}
        )
    upload = getattr(responder, "upload", None)
    if upload is not None:
        schema = object_schema(upload)
        schema["properties"]["file"] = {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
        }
        schema["required"] = ["file"]
        content = {"multipart/form-data": {"schema": schema}}
        op["requestBody"] = {"required": True, "content": content}
        return
    if method in QUERY_METHODS:
        for name, field in spec.items():
            schema = field_schema(field)
            if name in nested:
                schema = object_schema({name: field}, nested)["properties"][name]
            op["parameters"].append(
                {"name": name, "in": "query", "required": field.required, "schema": schema}
            )
    elif spec or getattr(responder, "free", None) is not None:
        schema = object_schema(spec, nested, getattr(responder, "free", None))
        op["requestBody"] = {"required": bool(schema.get("required")), "content": _json(schema)}


def operation(
    responder: Callable[..., Any], method: str, template: str, fields: Sequence[str]
) -> Schema:
    doc = (responder.__doc__ or "").strip()
    role = getattr(responder, "role", "public")
    op: Schema = {
        "summary": doc.splitlines()[0] if doc else responder.__name__,
        "description": f"{doc}\n\nRequires: {role}.",
        "parameters": [_path_parameter(template, f) for f in fields],
        "responses": {
            code: {"description": STATUS_TEXT.get(code, "success"), "content": _json()}
            for code in ["200", *statuses(responder, method, fields)]
        },
    }
    produces = getattr(responder, "produces", None)
    if produces:
        op["responses"]["200"]["content"] = {
            media: _json()[media] if media == "application/json" else {"schema": {"type": "string"}}
            for media in produces
        }
    _requests(op, responder, method, fields)
    if role == "public":
        op["security"] = []
    return op


def build(groups: Sequence[ModuleType]) -> Schema:
    """Return the OpenAPI document for the resources of ``groups``."""
    paths: dict[str, dict[str, Schema]] = {}
    for group in groups:
        for template, resource in group.ROUTES:
            path = path_of(template)
            fields = FIELD.findall(template)
            item = paths.setdefault(path, {})
            for method in METHODS:
                responder = getattr(resource, f"on_{method}", None)
                if responder is not None:
                    item[method] = operation(responder, method, template, fields)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "opsjob",
            "version": "0.1.0",
            "description": "The OpenC3 JOB module API, served by opsjob.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Envelope": ENVELOPE},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "appkey": {"type": "apiKey", "in": "header", "name": "appkey"},
            },
        },
        "security": [{"bearer": []}, {"appkey": []}],
    }


class Document:
    """Serve the OpenAPI document."""

    def __init__(self, groups: Sequence[ModuleType]) -> None:
        self.document = build(groups)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Describe every route of this API (OpenAPI 3)."""
        resp.media = self.document
