import datetime

import pytest

from engine.machines import nodes
from engine.store.db import database


def add(api, name, pid=1, **kw):
    return api.post(f"/nodelist/{pid}", json={"name": name}, **kw)


def test_node_forms_and_listing(api):
    for name in (
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.5",
        "web1::10.0.0.5",
        "web-2.example_x::10.0.0.6::8.8.8.8",
    ):
        r = add(api, name)
        assert r.status_code == 200 and r.json["data"] is True and r.json["id"] > 0, r.text
    rows = api.ok("GET", "/nodelist/1")
    assert [(n["name"], n["inip"], n["exip"]) for n in rows] == [
        ("web-2.example_x", "10.0.0.6", "8.8.8.8"),
        ("web1", "10.0.0.5", ""),
        ("192.168.1.5", "", "192.168.1.5"),  # OpenC3's rule: only 10./172. are internal
        ("172.16.0.1", "172.16.0.1", ""),
        ("10.1.2.3", "10.1.2.3", ""),
    ]
    assert set(rows[0]) == {
        "id",
        "name",
        "inip",
        "exip",
        "create_user",
        "create_time",
        "hostvars",
        "credential",
    }
    assert rows[0]["create_user"] == "root"


def test_node_filters_and_paging(api):
    for name in ("10.1.2.3", "web1::10.0.0.5", "db1::10.9.0.1::8.8.8.8"):
        add(api, name)

    def names(**q):
        return [n["name"] for n in api.ok("GET", "/nodelist/1", params=q)]

    assert names(name="web") == ["web1"]
    assert names(inip="10.0.0") == ["web1"]
    assert names(exip="8.8") == ["db1"]
    assert names(create_user="root") == ["db1", "web1", "10.1.2.3"]
    assert names(create_user="nobody") == []
    today = datetime.date.today()
    assert len(names(create_time_start=str(today), create_time_end=str(today))) == 3
    assert names(create_time_end=str(today - datetime.timedelta(days=1))) == []
    assert names(pagesize="2") == ["db1", "web1"]
    assert names(pagesize="2", page="2") == ["10.1.2.3"]
    r = api.get("/nodelist/1", params={"create_time_start": "yesterday"})
    assert r.status_code == 400 and r.json["info"].startswith("create_time_start:")


def test_node_delete_is_soft_and_frees_the_name(api):
    nid = add(api, "web1::10.0.0.5").json["id"]
    assert api.ok("DELETE", f"/nodelist/1/{nid}") is True
    assert api.ok("GET", "/nodelist/1") == []
    assert api.delete(f"/nodelist/1/{nid}").status_code == 404
    assert add(api, "web1::10.0.0.7").status_code == 200
    assert [n["inip"] for n in api.ok("GET", "/nodelist/1")] == ["10.0.0.7"]


def test_duplicate_node_conflicts(api):
    add(api, "web1::10.0.0.5")
    r = add(api, "web1::10.0.0.6")
    assert r.status_code == 409 and r.json["info"].startswith("name:")
    assert add(api, "web1::10.0.0.6", pid=2).status_code == 200  # other project: no clash


@pytest.mark.parametrize(
    "name",
    [
        "host",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.4x",
        " 1.2.3.4",
        "1.2.3.4\n",
        "-host::10.0.0.1",
        ".host::10.0.0.1",
        "ho st::10.0.0.1",
        "host::10.0.0.1::",
        "host::10.0.0.1::8.8.8",
        "host::",
        "::10.0.0.1",
        "a::10.0.0.1::8.8.8.8::1.1.1.1",
        "host:10.0.0.1",
        "host::10.0.0.1x",
        "h" * 101 + "::10.0.0.1",
        "x1.2.3.4",
        "1.2.3.4;rm",
    ],
)
def test_bad_node_names_are_rejected(api, name):
    r = add(api, name)
    assert r.status_code == 400 and r.json["info"].startswith("name:"), (name, r.text)
    assert api.ok("GET", "/nodelist/1") == []


def test_node_name_missing_or_wrong_type(api):
    for body in ({}, {"name": ""}, {"name": None}, {"name": ["10.0.0.1"]}, {"name": {"a": 1}}):
        r = api.post("/nodelist/1", json=body)
        assert r.status_code == 400 and r.json["info"].startswith("name:"), (body, r.text)
    r = api.post("/nodelist/1", json={"name": "x" * 301})
    assert r.status_code == 400 and r.json["info"].startswith("name:")


def test_node_unknown_ids_are_404(api):
    assert api.delete("/nodelist/1/999").status_code == 404
    assert api.delete("/nodelist/1/abc").status_code == 404
    assert api.get("/nodelist/99").status_code == 404


def test_node_roles_and_isolation(api):
    key = api.user("u1", 1, "delete")
    other = add(api, "web9::10.0.0.9", pid=2).json["id"]
    # admin only for writes, even with delete on the project
    assert add(api, "10.0.0.1", key=key).status_code == 403
    mine = add(api, "10.0.0.1").json["id"]
    assert api.delete(f"/nodelist/1/{mine}", key=key).status_code == 403
    assert [n["name"] for n in api.ok("GET", "/nodelist/1", key=key)] == ["10.0.0.1"]
    # nothing of project 2
    assert api.get("/nodelist/2", key=key).status_code == 403
    assert api.delete(f"/nodelist/2/{other}", key=key).status_code == 403
    assert api.delete(f"/nodelist/1/{other}").status_code == 404
    assert [n["name"] for n in api.ok("GET", "/nodelist/2")] == ["web9"]
    assert api.get("/nodelist/1", key=None).status_code == 401


def test_machines_merge_the_global_nodes(api):
    add(api, "web1::10.0.0.5", pid=1)
    gone = add(api, "old::10.0.0.6", pid=1).json["id"]
    api.ok("DELETE", f"/nodelist/1/{gone}")
    add(api, "all::10.0.0.1::8.8.8.8", pid=0)
    add(api, "theirs::10.0.0.2", pid=2)
    with database.connection_context():
        one, two = nodes.machines(1), nodes.machines(2)
    assert {k: r.name for k, r in one.items()} == {
        "web1": "web1",
        "10.0.0.5": "web1",
        "all": "all",
        "10.0.0.1": "all",
        "8.8.8.8": "all",
    }
    assert set(two) == {"theirs", "10.0.0.2", "all", "10.0.0.1", "8.8.8.8"}


def test_hostvars_are_checked_and_kept(api):
    r = api.post(
        "/nodelist/1",
        json={"name": "db1::10.0.0.9", "hostvars": {"ansible_port": 2222, "ansible_user": "ops"}},
    )
    assert r.status_code == 200
    row = api.ok("GET", "/nodelist/1")[0]
    assert row["hostvars"] == {"ansible_port": 2222, "ansible_user": "ops"}
    for bad, field in [
        ({"ansible_port": "x"}, "hostvars.ansible_port:"),
        ({"ansible_user": "{{ lookup('pipe','id') }}"}, "hostvars.ansible_user:"),
        ({"ansible_ssh_common_args": "-o {{x}}"}, "hostvars.ansible_ssh_common_args:"),
        ({"become_password": "x"}, "hostvars.become_password:"),
        ("[1]", "hostvars:"),
    ]:
        r = api.post("/nodelist/1", json={"name": "db2::10.0.0.8", "hostvars": bad})
        assert r.status_code == 400 and r.json["info"].startswith(field), r.json
