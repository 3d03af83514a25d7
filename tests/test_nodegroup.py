import datetime
import json

import pytest

from engine.store.db import database
from engine.store.models import Job, Nodegroup, Nodelist, PluginCmd, PluginScp

PARAMS = {
    "nodes": ["10.0.0.1", "10.0.0.2"],
    "batch": 2,
    "opts": {"ok": True, "none": None},
    "text": "naïve ✓",
}


def nested(levels):
    value = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def create(api, name="web", plugin="node", params=PARAMS, pid=1, **kw):
    r = api.post(f"/nodegroup/{pid}", json={"name": name, "plugin": plugin, "params": params}, **kw)
    assert r.status_code == 200 and r.json["data"] is True, r.text
    return r.json["id"]


def add_job(name, steps, status="permanent", projectid=1, old_steps=()):
    """Insert a job whose current steps are ``steps`` and whose replaced ones are ``old_steps``.

    Each step is ("cmd", group) or ("scp", src_group, dst_group); None means builtin nodes.
    """
    uuid = "J" + name.replace("-", "")

    def insert(i, step, prefix):
        suid = f"{uuid}{prefix}{i}"
        if step[0] == "cmd":
            PluginCmd.create(
                jobuuid=uuid,
                uuid=suid,
                name="s",
                scripts_type="shell",
                node_type="group" if step[1] else "builtin",
                node_cont=str(step[1] or "10.0.0.9"),
            )
            return f"cmd_{suid}"
        src, dst = step[1], step[2]
        PluginScp.create(
            jobuuid=uuid,
            uuid=suid,
            name="s",
            sp="/a",
            dp="/b",
            src_type="group" if src else "builtin",
            src=str(src or "10.0.0.9"),
            dst_type="group" if dst else "builtin",
            dst=str(dst or "10.0.0.9"),
        )
        return f"scp_{suid}"

    with database.connection_context():
        current = [insert(i, s, "c") for i, s in enumerate(steps)]
        for i, s in enumerate(old_steps):
            insert(i, s, "o")
        Job.create(
            projectid=projectid, uuid=uuid, name=name, status=status, uuids=",".join(current)
        )


def test_nodegroup_lifecycle(api):
    gid = create(api)
    rows = api.ok("GET", "/nodegroup/1")
    assert [(r["id"], r["name"], r["plugin"], r["jobname"]) for r in rows] == [
        (gid, "web", "node", "")
    ]
    assert set(rows[0]) == {
        "id",
        "name",
        "plugin",
        "create_user",
        "create_time",
        "edit_user",
        "edit_time",
        "jobname",
    }
    detail = api.ok("GET", f"/nodegroup/1/{gid}")
    assert detail["params"] == PARAMS and detail["name"] == "web"

    for params in ("10.0.0.1,10.0.0.2", [1, "two", None], 3.5, None, {}):
        r = api.post(
            f"/nodegroup/1/{gid}", json={"name": "web2", "plugin": "my_inv2", "params": params}
        )
        assert r.status_code == 200 and r.json["data"] is True
        detail = api.ok("GET", f"/nodegroup/1/{gid}")
        assert detail["params"] == params and detail["plugin"] == "my_inv2"

    assert api.ok("DELETE", f"/nodegroup/1/{gid}") is True
    assert api.ok("GET", "/nodegroup/1") == []
    assert api.get(f"/nodegroup/1/{gid}").status_code == 404
    assert api.delete(f"/nodegroup/1/{gid}").status_code == 404


def test_missing_params_is_null(api):
    r = api.post("/nodegroup/1", json={"name": "g", "plugin": "node"})
    assert r.status_code == 200
    assert api.ok("GET", f"/nodegroup/1/{r.json['id']}")["params"] is None


def test_soft_delete_frees_the_name(api):
    gid = create(api)
    api.ok("DELETE", f"/nodegroup/1/{gid}")
    with database.connection_context():
        row = Nodegroup.get_by_id(gid)
    assert row.status == "deleted" and row.name.startswith("web_") and len(row.name) == 4 + 17
    again = create(api)
    assert [r["id"] for r in api.ok("GET", "/nodegroup/1")] == [again]


def test_duplicate_name_conflicts_in_a_project_only(api):
    gid = create(api)
    other = create(api, name="db")
    r = api.post("/nodegroup/1", json={"name": "web", "plugin": "node", "params": ""})
    assert r.status_code == 409 and r.json["info"].startswith("name:")
    r = api.post(f"/nodegroup/1/{other}", json={"name": "web", "plugin": "node"})
    assert r.status_code == 409 and r.json["info"].startswith("name:")
    assert api.ok("GET", f"/nodegroup/1/{gid}")["name"] == "web"
    create(api, pid=2)


def test_list_filters_and_paging(api):
    create(api, "web", "node")
    create(api, "db", "node_file")
    create(api, "cache", "node")

    def names(**q):
        return [r["name"] for r in api.ok("GET", "/nodegroup/1", params=q)]

    assert names() == ["cache", "db", "web"]
    assert names(plugin="node") == ["cache", "web"]
    assert names(plugin="nod") == []
    assert names(name="EB") == ["web"]
    assert names(create_user="root", edit_user="root") == ["cache", "db", "web"]
    today = datetime.date.today()
    assert names(edit_time_start=str(today + datetime.timedelta(days=1))) == []
    assert names(pagesize="1", page="3") == ["web"]
    for bad in ({"plugin": "No de"}, {"jobname": "x" * 201}, {"page": "x"}):
        r = api.get("/nodegroup/1", params=bad)
        assert r.status_code == 400 and r.json["info"].startswith(next(iter(bad))), r.text


def test_jobname_lists_permanent_jobs_using_the_group_in_current_steps(api):
    web, db, idle = create(api, "web"), create(api, "db"), create(api, "idle")
    elsewhere = create(api, "elsewhere", pid=2)
    add_job("deploy-web", [("cmd", web), ("cmd", None)])
    add_job("backup-db", [("scp", db, web)])
    add_job("sync-db", [("scp", None, db), ("cmd", None)])
    add_job("draft", [("cmd", web)], status="transient")
    add_job("removed", [("cmd", db)], status="deleted")
    add_job("edited", [("cmd", None)], old_steps=[("cmd", idle), ("scp", idle, idle)])
    add_job("other-project", [("cmd", idle), ("cmd", elsewhere)], projectid=2)
    jobname = {r["name"]: r["jobname"] for r in api.ok("GET", "/nodegroup/1")}
    assert jobname == {"web": "backup-db,deploy-web", "db": "backup-db,sync-db", "idle": ""}
    assert api.ok("GET", f"/nodegroup/1/{db}")["jobname"] == "backup-db,sync-db"
    assert api.ok("GET", "/nodegroup/2")[0]["jobname"] == "other-project"

    def names(**q):
        return [r["name"] for r in api.ok("GET", "/nodegroup/1", params=q)]

    assert names(jobname="deploy") == ["web"]
    assert names(jobname="BACKUP") == ["db", "web"]
    assert names(jobname="sync", name="d") == ["db"]
    assert names(jobname="draft") == []
    assert names(jobname="-db", pagesize="1") == ["db"]


def test_jobname_costs_the_same_queries_for_many_groups(api):
    def queries_for_listing():
        seen = []
        original = database.obj.execute_sql

        def counting(sql, params=None, *args, **kw):
            seen.append(sql)
            return original(sql, params, *args, **kw)

        database.obj.execute_sql = counting
        try:
            assert api.get("/nodegroup/1").status_code == 200
        finally:
            del database.obj.execute_sql
        return len(seen)

    first = create(api, "g0")
    add_job("uses-g0", [("cmd", first), ("scp", first, None)])
    few = queries_for_listing()
    for i in range(1, 25):
        gid = create(api, f"g{i}")
        add_job(f"uses-g{i}", [("cmd", gid), ("scp", None, gid)])
    assert queries_for_listing() == few, few
    assert all(r["jobname"] for r in api.ok("GET", "/nodegroup/1"))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"plugin": "node"}, "name"),
        ({"name": "", "plugin": "node"}, "name"),
        ({"name": ["g"], "plugin": "node"}, "name"),
        ({"name": "g" * 101, "plugin": "node"}, "name"),
        ({"name": "g"}, "plugin"),
        ({"name": "g", "plugin": ""}, "plugin"),
        ({"name": "g", "plugin": "Node"}, "plugin"),
        ({"name": "g", "plugin": "1node"}, "plugin"),
        ({"name": "g", "plugin": "../x"}, "plugin"),
        ({"name": "g", "plugin": {"a": 1}}, "plugin"),
        ({"name": "g", "plugin": "node", "params": "x" * (64 * 1024)}, "params"),
        ({"name": "g", "plugin": "node", "params": ["é" * 40000]}, "params"),
        ({"name": "g", "plugin": "node", "params": nested(51)}, "params"),
    ],
)
def test_create_and_edit_reject_bad_fields(api, body, field):
    gid = create(api)
    for path in ("/nodegroup/1", f"/nodegroup/1/{gid}"):
        r = api.post(path, json=body)
        assert r.status_code == 400 and r.json["info"].startswith(field + ":"), (path, r.text)
    assert api.ok("GET", f"/nodegroup/1/{gid}")["params"] == PARAMS


def test_params_up_to_the_limit_are_kept(api):
    big = "x" * (64 * 1024 - 2)  # plus the two quotes of its JSON encoding
    gid = create(api, params=big)
    assert api.ok("GET", f"/nodegroup/1/{gid}")["params"] == big
    gid = create(api, name="deep", params=nested(50))
    assert api.ok("GET", f"/nodegroup/1/{gid}")["params"] == nested(50)


def test_non_json_numbers_are_refused(api):
    r = api.post(
        "/nodegroup/1",
        body='{"name": "g", "plugin": "node", "params": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json["info"].startswith("params:")


@pytest.mark.parametrize("gid", ["999999", "abc", "1.5"])
def test_unknown_ids_are_404(api, gid):
    assert api.get(f"/nodegroup/1/{gid}").status_code == 404
    r = api.post(f"/nodegroup/1/{gid}", json={"name": "g", "plugin": "node"})
    assert r.status_code == 404 and r.json["info"].startswith("id:")
    assert api.delete(f"/nodegroup/1/{gid}").status_code == 404


def test_project_isolation(api):
    other = create(api, "theirs", pid=2)
    u1 = api.user("u1", 1, "delete")
    assert api.ok("GET", "/nodegroup/1", key=u1) == []
    for method, path, payload in [
        ("GET", "/nodegroup/2", None),
        ("GET", f"/nodegroup/2/{other}", None),
        ("POST", "/nodegroup/2", {"name": "x", "plugin": "node"}),
        ("POST", f"/nodegroup/2/{other}", {"name": "x", "plugin": "node"}),
        ("DELETE", f"/nodegroup/2/{other}", None),
    ]:
        assert api.call(method, path, key=u1, json=payload).status_code == 403, (method, path)
    for key in ("admin", u1):
        assert api.get(f"/nodegroup/1/{other}", key=key).status_code == 404
        r = api.post(f"/nodegroup/1/{other}", key=key, json={"name": "x", "plugin": "node"})
        assert r.status_code == 404
        assert api.delete(f"/nodegroup/1/{other}", key=key).status_code == 404
    assert api.ok("GET", f"/nodegroup/2/{other}")["name"] == "theirs"


def test_read_role_cannot_write_or_delete(api):
    gid = create(api)
    reader = api.user("reader", 1, "read")
    assert api.ok("GET", f"/nodegroup/1/{gid}", key=reader)["params"] == PARAMS
    assert (
        api.post("/nodegroup/1", key=reader, json={"name": "x", "plugin": "node"}).status_code
        == 403
    )
    r = api.post(f"/nodegroup/1/{gid}", key=reader, json={"name": "x", "plugin": "node"})
    assert r.status_code == 403
    assert api.delete(f"/nodegroup/1/{gid}", key=reader).status_code == 403
    writer = api.user("writer", 1, "write")
    assert api.ok("POST", f"/nodegroup/1/{gid}", key=writer, json={"name": "w", "plugin": "node"})
    assert api.delete(f"/nodegroup/1/{gid}", key=writer).status_code == 403
    assert api.ok("GET", f"/nodegroup/1/{gid}")["edit_user"] == "writer"


def test_a_group_of_ten_thousand_machines_resolves_to_exactly_them(api):
    """Correctness at fleet size (bench.nodegroups times it): every machine of the project once,
    in order, with its own connection variables, none of another project's; one host that
    connects elsewhere refuses a group however large."""
    rows = [
        {
            "projectid": 1,
            "name": f"n{i:05d}",
            "inip": f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}",
            "hostvars": json.dumps({"ansible_port": 2222} if i % 7 == 0 else {}),
        }
        for i in range(1, 10001)
    ]
    theirs = [{"projectid": 2, "name": f"t{i}", "inip": f"10.9.0.{i}"} for i in range(1, 11)]
    with database.connection_context(), database.atomic():
        for start in range(0, len(rows), 500):
            Nodelist.insert_many(rows[start : start + 500]).execute()
        Nodelist.insert_many(theirs).execute()
    gid = create(api, "all", "nodelist", "")
    found = api.ok("GET", f"/nodegroup/1/{gid}/nodelist", params={"hostvars": "1"})
    assert list(found) == [row["name"] for row in rows]
    assert found["n00007"] == {"ansible_host": "10.0.0.7", "ansible_port": 2222}
    assert found["n09999"] == {"ansible_host": "10.0.39.15"}
    names = [row["name"] for row in rows[:5000]]  # as many as a node list's params hold
    outside = create(api, "outside", "node", ",".join([*names[:4000], "t1", *names[4000:]]))
    r = api.get(f"/nodegroup/1/{outside}/nodelist")
    assert r.status_code == 400
    assert "host t1 connects to t1, which is not a machine of project 1" in r.json["info"]
