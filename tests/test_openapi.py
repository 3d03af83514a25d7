"""The OpenAPI document is valid and names every route the app serves."""

import inspect
import re

from openapi_spec_validator import validate

from api.server.openapi import path_of
from api.server.routing import GROUPS
from engine.catalog import jobs
from engine.machines import nodelist
from engine.run import tasks

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


READS = re.compile(
    r"\bparams\(req\)|req\.get_param|req\.params|req\.get_header\(\"token|parts\(req\)"
)


def test_every_responder_that_reads_parameters_declares_them():
    """A responder reading the query, body, an upload or a token header names its spec."""
    for path, method, responder in registered():
        assert hasattr(responder, "spec"), f"{method} {path} has no @takes"
        source = inspect.getsource(inspect.unwrap(responder))
        helpers = re.findall(r"self\.(_\w+)\(", source)
        owner = responder.__qualname__.split(".")[0]
        for group in GROUPS:
            cls = getattr(group, owner, None)
            for name in helpers:
                if cls is not None and hasattr(cls, name):
                    source += inspect.getsource(getattr(cls, name))
        if READS.search(source):
            declared = responder.spec or responder.free is not None or responder.upload is not None
            assert declared, f"{method} {path} reads parameters but declares none"


def test_parameters_come_from_the_engine_specs(api):
    """The document shows the limits of the very Field objects the engine checks with."""
    doc = api.get("/openapi.json", key=None).json
    launch = doc["paths"]["/task/{projectid}/job"]["post"]["requestBody"]
    body = launch["content"]["application/json"]["schema"]
    assert body["required"] == ["jobuuid"]
    assert body["properties"]["mutex_policy"]["enum"] == list(jobs.MUTEX_POLICIES)
    assert body["properties"]["jobuuid"]["maxLength"] == tasks.LAUNCH["jobuuid"].max_len
    listing = {p["name"]: p for p in doc["paths"]["/task/{projectid}"]["get"]["parameters"]}
    assert listing["projectid"]["in"] == "path"
    assert listing["pagesize"]["schema"]["maximum"] == 1000
    assert listing["jobtype"]["schema"]["enum"] == list(tasks.LIST["jobtype"].choices)
    assert "plugin_approval" in listing["jobtype"]["schema"]["enum"]
    steps = doc["paths"]["/jobs/{projectid}"]["post"]["requestBody"]["content"]
    item = steps["application/json"]["schema"]["properties"]["data"]["items"]
    assert {"node_cont", "scripts_cont"} <= set(item["anyOf"][0]["required"])
    upload = doc["paths"]["/fileserver/{projectid}/upload"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"411", "413", "403"} <= set(upload["responses"])
    assert [p["name"] for p in upload["parameters"] if p["in"] == "header"] == ["token"]
    env = doc["paths"]["/environment"]["post"]["requestBody"]["content"]["application/json"]
    assert env["schema"]["additionalProperties"]["type"] == "string"


def test_machines_and_groups_declare_what_they_take(api):
    """POST /nodelist takes hostvars (each connection variable the engine allows) and a
    credential, as POST /nodegroup takes a credential."""
    doc = api.get("/openapi.json", key=None).json
    for path in ("/nodelist/{projectid}", "/nodegroup/{projectid}"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["credential"] == {
            "type": "integer",
            "minimum": 0,
            "maximum": 2**62,
        }, path
    body = doc["paths"]["/nodelist/{projectid}"]["post"]["requestBody"]["content"]
    properties = body["application/json"]["schema"]["properties"]
    assert set(properties) == {"name", "hostvars", "credential"}
    hostvars = properties["hostvars"]
    assert hostvars["type"] == "object" and set(hostvars["properties"]) == set(nodelist.HOSTVARS)
    assert hostvars["properties"]["ansible_port"]["maximum"] == 65535


# What the HTTP server (uvicorn on httptools) parses of a request target: longer ones get its
# own plain-text 400, which no route can declare.
MAX_URL = 65535


def test_every_declared_query_fits_in_a_url(api):
    """The longest request an operation's declaration allows (each string parameter at its
    maxLength, every byte percent-encoded) still fits a URL the server parses."""
    doc = api.get("/openapi.json", key=None).json
    for path, item in doc["paths"].items():
        for method, op in item.items():
            length = len(path) + 20 * path.count("{")  # a path value: a 64-bit id or so
            for p in op["parameters"]:
                if p["in"] != "query":
                    continue
                schema = p["schema"]
                longest = schema.get("maxLength", 40) if "enum" not in schema else 40
                length += len(p["name"]) + 2 + 3 * longest
            assert length < MAX_URL, (method, path, length)


def test_pages_declare_html(api):
    doc = api.get("/openapi.json", key=None).json
    assert "text/html" in doc["paths"]["/cmd/{projectid}"]["get"]["responses"]["200"]["content"]
    tasklog = doc["paths"]["/slave/{slave}/tasklog/{uuid}"]["get"]["responses"]["200"]["content"]
    assert {"text/html", "application/json"} == set(tasklog)
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_statuses_follow_role_and_method(api):
    doc = api.get("/openapi.json", key=None).json
    health = doc["paths"]["/healthz"]["get"]["responses"]
    assert "401" not in health and "403" not in health
    delete = doc["paths"]["/jobs/{projectid}/{jobuuid}"]["delete"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "503", "507"} <= set(delete)
    assert "501" in doc["paths"]["/cmd/ext/{feature}"]["get"]["responses"]
