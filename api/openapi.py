"""The OpenAPI 3 description of every route, built from the registered resources."""

import re

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
ERRORS = {
    "400": "bad input; `info` names the field",
    "401": "no or unknown credentials",
    "403": "the caller lacks the role",
    "404": "unknown id or route",
    "409": "conflicts with existing state",
    "503": "the database or the queue is unreachable (a launched task is stored)",
    "507": "the disk is full",
}


def path_of(template):
    """Turn a Falcon template such as ``/jobs/{projectid:int}`` into an OpenAPI path."""
    return FIELD.sub(r"{\1}", template)


def operation(responder, fields):
    doc = (responder.__doc__ or "").strip()
    role = getattr(responder, "role", "public")
    op = {
        "summary": doc.splitlines()[0] if doc else responder.__name__,
        "description": f"{doc}\n\nRequires: {role}.",
        "parameters": [
            {
                "name": f,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if f == "projectid" else "string"},
            }
            for f in fields
        ],
        "responses": {
            "200": {
                "description": "success",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}
                },
            },
            **{
                code: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}
                    },
                }
                for code, text in ERRORS.items()
            },
        },
    }
    if role == "public":
        op["security"] = []
    return op


def build(groups):
    """Return the OpenAPI document for the resources of ``groups``."""
    paths = {}
    for group in groups:
        for template, resource in group.ROUTES:
            path = path_of(template)
            fields = FIELD.findall(template)
            item = paths.setdefault(path, {})
            for method in METHODS:
                responder = getattr(resource, f"on_{method}", None)
                if responder is not None:
                    item[method] = operation(responder, fields)
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

    def __init__(self, groups):
        self.document = build(groups)

    def on_get(self, req, resp):
        """Describe every route of this API (OpenAPI 3)."""
        resp.media = self.document
