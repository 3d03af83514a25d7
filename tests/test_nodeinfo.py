"""/nodeinfo: a project's machines are its nodelist rows, project 0's, and its groups' hosts."""

import json

from engine.store.db import database
from engine.store.models import Nodegroup, Nodelist


def setup_machines(api, broken=False):
    """Machines of projects 1, 0 and 2, and groups; ``broken`` adds a group that never
    resolves (its source runs through the parser on every call, so only one test has it)."""
    with database.connection_context():
        Nodelist.create(projectid=1, name="web1", inip="10.0.0.1")
        Nodelist.create(projectid=1, name="web2", inip="10.0.0.2", exip="1.2.3.4")
        Nodelist.create(projectid=0, name="shared", exip="8.8.8.8")
        Nodelist.create(projectid=2, name="theirs", inip="10.0.9.9")
        Nodelist.create(projectid=1, name="gone", inip="10.0.0.3", status="deleted")
        Nodegroup.create(
            projectid=1,
            name="inline",
            plugin="ansible",
            params=json.dumps(
                {"inventory": "[a]\napp1 ansible_host=10.0.0.2\napp2 ansible_host=8.8.8.8\nweb1\n"}
            ),
        )
        Nodegroup.create(projectid=1, name="list", plugin="node", params=json.dumps("web2"))
        # an admin's group may reach hosts outside the machine list
        Nodegroup.create(
            projectid=1,
            name="vouched",
            plugin="ansible",
            params=json.dumps({"inventory": "[a]\ndb9\n", "trusted": True}),
            reach_any=True,
        )
        # a group that reaches another project's machine gives no hosts
        Nodegroup.create(
            projectid=1,
            name="sneaky",
            plugin="ansible",
            params=json.dumps({"inventory": "[a]\nx1 ansible_host=10.0.9.9\n"}),
        )
        if broken:
            Nodegroup.create(
                projectid=1, name="broken", plugin="ansible", params=json.dumps("/nope")
            )
        Nodegroup.create(
            projectid=2,
            name="other",
            plugin="ansible",
            params=json.dumps({"inventory": "[a]\nx9\n", "trusted": True}),
            reach_any=True,
        )


def test_machines_of_a_project(api):
    setup_machines(api, broken=True)
    rows = api.ok("GET", "/nodeinfo/1")
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["name"]: (r["type"], r["inip"], r["exip"]) for r in rows} == {
        "web1": ("extend", "10.0.0.1", ""),
        "web2": ("extend", "10.0.0.2", "1.2.3.4"),
        "shared": ("extend", "", "8.8.8.8"),
        "app1": ("nodegroup", "10.0.0.2", ""),
        "app2": ("nodegroup", "", "8.8.8.8"),
        "db9": ("nodegroup", "", ""),
    }
    assert api.ok("GET", "/nodeinfo/1/count") == {"node": 6}
    assert {r["name"] for r in api.ok("GET", "/nodeinfo/2")} == {"theirs", "shared", "x9"}
    assert api.ok("GET", "/nodeinfo/0/count") == {"node": 1}


def test_check_names_the_foreign_nodes(api):
    setup_machines(api)
    assert api.ok("GET", "/nodeinfo/1/check", params={"node": "web1,10.0.0.2,1.2.3.4"}) is None
    # project 0's machines and the groups' hosts (and their addresses) belong too
    assert api.ok("GET", "/nodeinfo/1/check", params={"node": "8.8.8.8,app1,10.0.0.2,db9"}) is None
    r = api.get("/nodeinfo/1/check", params={"node": "web1,theirs,10.0.9.9,x9,x1,gone,nope"})
    assert r.status_code == 200 and r.json["data"] == "theirs,10.0.9.9,x9,x1,gone,nope"
    assert api.ok("GET", "/nodeinfo/0/check", params={"node": "anything"}) is None
    for bad in ({}, {"node": ""}, {"node": "a b"}, {"node": "a;b"}):
        r = api.get("/nodeinfo/1/check", params=bad)
        assert r.status_code == 400 and r.json["info"].startswith("node:"), (bad, r.text)


def test_nodeinfo_needs_a_role_on_the_project(api):
    setup_machines(api)
    reader = api.user("reader", 1, "read")
    assert api.get("/nodeinfo/1/count", key=reader).status_code == 200
    for path in ("/nodeinfo/2", "/nodeinfo/2/count", "/nodeinfo/2/check?node=x9"):
        assert api.get(path, key=reader).status_code == 403


def test_the_longest_declared_check_is_answered_in_json_by_a_real_server():
    """Found by schemathesis against `opsjob serve`: a node list as long as the declaration
    allowed made a URL longer than the HTTP server parses, and its plain-text 400 was no
    documented answer. The longest list now fits, sent percent-encoded; one more character
    is the route's own 400."""
    import urllib.parse

    from engine.machines.nodeinfo import CHECK
    from tests.cluster import Cluster
    from tests.httpclient import call

    c = Cluster(None)
    try:
        c.run("project", "add", "1", "p")
        c.serve()
        c.ok("POST", "/nodelist/1", {"name": "127.0.0.254"})
        longest = CHECK["node"].max_len
        for nodes, status in ((",", 200), ("a", 200), ("a,", 200)):
            node = (nodes * longest)[:longest]
            query = urllib.parse.urlencode({"node": node})  # each comma as %2C
            got, body = call("GET", f"{c.url}/nodeinfo/1/check?{query}", c.key)
            assert got == status and body["stat"] is True, (nodes, got, body)
        query = urllib.parse.urlencode({"node": "a" * (longest + 1)})
        got, body = call("GET", f"{c.url}/nodeinfo/1/check?{query}", c.key)
        assert got == 400 and body["info"] == f"node: longer than {longest} characters"
    finally:
        c.close()
