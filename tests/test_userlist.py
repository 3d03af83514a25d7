import datetime

import pytest

from engine.store.db import database
from engine.store.models import Userlist


def add(api, username, pid=1, **kw):
    r = api.post(f"/userlist/{pid}", json={"username": username}, **kw)
    assert r.status_code == 200 and r.json["data"] is True, r.text
    return r.json["id"]


def test_accounts_of_the_project_and_global_ones(api):
    glob = add(api, "root", pid=0)
    mine = add(api, "deploy")
    theirs = add(api, "app_2", pid=2)
    rows = api.ok("GET", "/userlist/1")
    assert [(r["id"], r["projectid"], r["username"]) for r in rows] == [
        (mine, 1, "deploy"),
        (glob, 0, "root"),
    ]
    assert set(rows[0]) == {"id", "projectid", "username", "create_user", "create_time"}
    assert rows[0]["create_user"] == "root"
    assert [r["id"] for r in api.ok("GET", "/userlist/2")] == [theirs, glob]

    assert api.ok("DELETE", f"/userlist/1/{mine}") is True
    assert [r["id"] for r in api.ok("GET", "/userlist/1")] == [glob]
    assert api.delete(f"/userlist/1/{mine}").status_code == 404
    # a global account is listed in every project but deleted only through project 0
    assert api.delete(f"/userlist/1/{glob}").status_code == 404
    assert api.ok("DELETE", f"/userlist/0/{glob}") is True
    assert api.ok("GET", "/userlist/1") == []


def test_soft_delete_suffixes_the_username_and_frees_it(api):
    uid = add(api, "deploy")
    api.ok("DELETE", f"/userlist/1/{uid}")
    with database.connection_context():
        row = Userlist.get_by_id(uid)
    assert row.status == "deleted" and row.username.startswith("deploy_")
    assert len(row.username) == len("deploy_") + 17
    again = add(api, "deploy")
    assert [r["id"] for r in api.ok("GET", "/userlist/1")] == [again]


def test_the_longest_username_can_be_deleted_and_reused(api):
    name = "u" * 100
    uid = add(api, name)
    assert api.ok("DELETE", f"/userlist/1/{uid}") is True
    with database.connection_context():
        assert len(Userlist.get_by_id(uid).username) <= 100
    add(api, name)
    assert [r["username"] for r in api.ok("GET", "/userlist/1")] == [name]


def test_duplicate_username_conflicts(api):
    add(api, "deploy")
    r = api.post("/userlist/1", json={"username": "deploy"})
    assert r.status_code == 409 and r.json["info"].startswith("username:")
    add(api, "deploy", pid=2)


def test_list_filters_and_paging(api):
    add(api, "deploy")
    add(api, "app-user")
    add(api, "root", pid=0)
    writer = api.user("writer", 1, "write")
    add(api, "backup", key=writer)

    def names(**q):
        return [r["username"] for r in api.ok("GET", "/userlist/1", params=q)]

    assert names() == ["backup", "root", "app-user", "deploy"]
    assert names(name="PP") == ["app-user"]
    assert names(create_user="writer") == ["backup"]
    assert names(edit_user="root") == ["root", "app-user", "deploy"]
    today = datetime.date.today()
    assert len(names(create_time_start=str(today), create_time_end=str(today))) == 4
    assert names(create_time_start=str(today + datetime.timedelta(days=1))) == []
    assert names(pagesize="3", page="2") == ["deploy"]
    r = api.get("/userlist/1", params={"create_time_end": "2024-13-45"})
    assert r.status_code == 400 and r.json["info"].startswith("create_time_end:")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": ""},
        {"username": None},
        {"username": "a b"},
        {"username": "o'brien"},
        {"username": "x;rm"},
        {"username": "ü"},
        {"username": "u" * 101},
        {"username": ["root"]},
        {"username": True},
    ],
)
def test_username_is_checked(api, body):
    r = api.post("/userlist/1", json=body)
    assert r.status_code == 400 and r.json["info"].startswith("username:"), r.text
    assert api.ok("GET", "/userlist/1") == []


@pytest.mark.parametrize("uid", ["999999", "abc", "0x1"])
def test_unknown_ids_are_404(api, uid):
    r = api.delete(f"/userlist/1/{uid}")
    assert r.status_code == 404 and r.json["info"].startswith("id:")


def test_project_isolation(api):
    other = add(api, "theirs", pid=2)
    u1 = api.user("u1", 1, "delete")
    assert api.ok("GET", "/userlist/1", key=u1) == []
    assert api.get("/userlist/2", key=u1).status_code == 403
    assert api.post("/userlist/2", key=u1, json={"username": "x"}).status_code == 403
    assert api.delete(f"/userlist/2/{other}", key=u1).status_code == 403
    assert api.delete(f"/userlist/1/{other}", key=u1).status_code == 404
    assert api.delete(f"/userlist/1/{other}").status_code == 404
    assert [r["username"] for r in api.ok("GET", "/userlist/2")] == ["theirs"]
    assert api.post("/userlist/0", key=u1, json={"username": "x"}).status_code == 403


def test_read_role_cannot_write_or_delete(api):
    uid = add(api, "deploy")
    reader = api.user("reader", 1, "read")
    assert api.ok("GET", "/userlist/1", key=reader)[0]["id"] == uid
    assert api.post("/userlist/1", key=reader, json={"username": "x"}).status_code == 403
    assert api.delete(f"/userlist/1/{uid}", key=reader).status_code == 403
    writer = api.user("writer", 1, "write")
    assert api.delete(f"/userlist/1/{uid}", key=writer).status_code == 403
    assert [r["username"] for r in api.ok("GET", "/userlist/1")] == ["deploy"]
