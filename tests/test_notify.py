import pytest


def add(api, user, pid=1, key="admin"):
    return api.post(f"/notify/{pid}", json={"user": user}, key=key)


def test_notify_lifecycle(api):
    r = add(api, "ops.team@example.com")
    assert r.status_code == 200 and r.json["data"] is True
    nid = r.json["id"]
    add(api, "_")
    rows = api.ok("GET", "/notify/1")
    assert [n["user"] for n in rows] == ["_", "ops.team@example.com"]
    assert set(rows[0]) == {"id", "user", "create_user", "create_time"}
    assert rows[1]["id"] == nid and rows[1]["create_user"] == "root"
    assert api.ok("DELETE", f"/notify/1/{nid}") is True
    assert [n["user"] for n in api.ok("GET", "/notify/1")] == ["_"]
    assert api.delete(f"/notify/1/{nid}").status_code == 404
    assert add(api, "ops.team@example.com").status_code == 200  # free again


def test_notify_filters_and_paging(api):
    for user in ("alice", "bob", "carol"):
        add(api, user)

    def listed(**q):
        return [n["user"] for n in api.ok("GET", "/notify/1", params=q)]

    assert listed(name="ob") == ["bob"]
    assert listed(create_user="root") == ["carol", "bob", "alice"]
    assert listed(create_user="other") == []
    assert listed(create_time_end="2000-01-01") == []
    assert listed(pagesize="2", page="2") == ["alice"]
    r = api.get("/notify/1", params={"pagesize": "0"})
    assert r.status_code == 400 and r.json["info"].startswith("pagesize:")


def test_duplicate_notify_conflicts(api):
    add(api, "alice")
    r = add(api, "alice")
    assert r.status_code == 409 and r.json["info"].startswith("user:")
    assert add(api, "alice", pid=2).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user": ""},
        {"user": None},
        {"user": "a b"},
        {"user": "x'y"},
        {"user": "a,b"},
        {"user": "a\nb"},
        {"user": "u" * 201},
        {"user": ["alice"]},
        {"user": True},
    ],
)
def test_notify_validation(api, body):
    r = api.post("/notify/1", json=body)
    assert r.status_code == 400 and r.json["info"].startswith("user:"), r.text
    assert api.ok("GET", "/notify/1") == []


def test_longest_user_can_be_deleted_and_added_again(api):
    longest = "u" * 200
    nid = add(api, longest).json["id"]
    assert api.ok("DELETE", f"/notify/1/{nid}") is True
    assert api.ok("GET", "/notify/1") == []
    assert add(api, longest).status_code == 200


def test_notify_roles_and_isolation(api):
    reader = api.user("r1", 1, "read")
    writer = api.user("w1", 1, "write")
    deleter = api.user("u1", 1, "delete")
    mine = add(api, "alice").json["id"]
    theirs = add(api, "bob", pid=2).json["id"]
    assert [n["user"] for n in api.ok("GET", "/notify/1", key=reader)] == ["alice"]
    assert add(api, "carol", key=reader).status_code == 403
    assert add(api, "carol", key=writer).status_code == 200
    assert api.delete(f"/notify/1/{mine}", key=writer).status_code == 403
    assert api.get("/notify/2", key=deleter).status_code == 403
    assert add(api, "dave", pid=2, key=deleter).status_code == 403
    assert api.delete(f"/notify/2/{theirs}", key=deleter).status_code == 403
    assert api.delete(f"/notify/1/{theirs}", key=deleter).status_code == 404
    assert api.delete("/notify/1/424242").status_code == 404
    assert api.delete("/notify/1/nope").status_code == 404
    assert api.ok("DELETE", f"/notify/1/{mine}", key=deleter) is True
    assert [n["user"] for n in api.ok("GET", "/notify/2")] == ["bob"]
