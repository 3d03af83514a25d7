"""The OpenAPI document is valid and names every route the app serves."""

from openapi_spec_validator import validate

from api.openapi import path_of
from api.routes import GROUPS

METHODS = ("get", "post", "put", "delete")


def registered():
    for group in GROUPS:
        for template, resource in group.ROUTES:
            for method in METHODS:
                if hasattr(resource, f"on_{method}"):
                    yield path_of(template), method, getattr(resource, f"on_{method}")


def test_document_is_valid_and_complete(api):
    r = api.get("/openapi.json", key=None)
    assert r.status_code == 200
    doc = r.json
    validate(doc)
    routes = list(registered())
    assert len(routes) > 20
    for path, method, _responder in routes:
        assert method in doc["paths"][path], (method, path)
        assert doc["paths"][path][method]["summary"], (method, path)


def test_every_responder_declares_its_role():
    for path, method, responder in registered():
        assert getattr(responder, "role", None), f"{method} {path} has no @requires"
        assert responder.__doc__, f"{method} {path} has no docstring"


def test_served_routes_match_the_document(app, api):
    """Walk Falcon's own router: every template it serves is in the document."""
    served = set()

    def walk(nodes):
        for node in nodes:
            if node.resource is not None and node.uri_template:
                served.add(path_of(node.uri_template))
            walk(node.children)

    walk(app._router._roots)
    assert served - {"/openapi.json"} == set(api.get("/openapi.json", key=None).json["paths"]) - {
        "/openapi.json"
    }
