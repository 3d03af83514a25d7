from tests.test_jobs import cmd_step, create


def test_upsert_and_filters(api):
    uuid = create(api, [cmd_step(scripts_argv="$version $host")])
    api.ok(
        "POST",
        "/variable/1",
        json={
            "jobuuid": uuid,
            "name": "version",
            "value": "1.0",
            "describe": "b version",
            "option": "1.0,2.0",
        },
    )
    api.ok(
        "POST",
        "/variable/1",
        json={"jobuuid": uuid, "name": "host", "value": "", "describe": "a host"},
    )
    rows = api.ok("GET", f"/variable/1/{uuid}")
    assert [v["name"] for v in rows] == ["host", "version"]  # sorted by describe
    assert rows[1]["option"] == "1.0,2.0"
    assert [v["name"] for v in api.ok("GET", f"/variable/1/{uuid}", params={"empty": 1})] == [
        "host"
    ]
    assert [
        v["name"] for v in api.ok("GET", f"/variable/1/{uuid}", params={"exclude": "host"})
    ] == ["version"]


def test_bulk_update_only_adds_special_names(api):
    uuid = create(api, [cmd_step(scripts_argv="$version")])
    api.ok(
        "POST",
        "/variable/1/update",
        json={
            "jobuuid": uuid,
            "data": [
                {"name": "version", "value": "3", "describe": "v"},
                {"name": "unknown", "value": "x", "describe": "ignored"},
                {"name": "_exit_", "value": "1", "describe": "stop on error"},
                {"name": "wk_env", "value": "prod", "describe": "exported", "option": "prod;test"},
            ],
        },
    )
    values = {v["name"]: v["value"] for v in api.ok("GET", f"/variable/1/{uuid}")}
    assert values == {"version": "3", "_exit_": "1", "wk_env": "prod"}
    r = api.post("/variable/1/update", json={"jobuuid": uuid, "data": [{"value": "x"}]})
    assert r.status_code == 400 and r.json["info"] == "data[0]: name: is required"


def test_delete_variable(api):
    uuid = create(api, [cmd_step(scripts_argv="$version")])
    api.ok("DELETE", "/variable/1", params={"jobuuid": uuid, "name": "version"})
    assert api.ok("GET", f"/variable/1/{uuid}") == []
    r = api.delete("/variable/1", params={"jobuuid": uuid, "name": "version"})
    assert r.status_code == 404


def test_value_charset(api):
    uuid = create(api, [cmd_step(scripts_argv="$version")])
    r = api.post(
        "/variable/1", json={"jobuuid": uuid, "name": "version", "value": "a b", "describe": "d"}
    )
    assert r.status_code == 400 and r.json["info"].startswith("value:")
    r = api.post("/variable/1", json={"jobuuid": uuid, "name": "version", "value": "1"})
    assert r.status_code == 400 and r.json["info"].startswith("describe:")
