def test_script_lifecycle(api):
    r = api.post("/scripts/1", json={"name": "hello", "type": "shell", "cont": "echo hi\n"})
    assert r.status_code == 200 and r.json["data"] is True
    sid = r.json["id"]
    listed = api.ok("GET", "/scripts/1")
    assert [s["name"] for s in listed] == ["hello"]
    assert listed[0]["jobname"] == ""
    detail = api.ok("GET", f"/scripts/1/{sid}")
    assert detail["cont"] == "echo hi\n" and detail["type"] == "shell"
    api.ok(
        "POST", f"/scripts/1/{sid}", json={"name": "hello2", "type": "python", "cont": "print(1)"}
    )
    assert api.ok("GET", f"/scripts/1/{sid}")["type"] == "python"
    api.ok("DELETE", f"/scripts/1/{sid}")
    assert api.ok("GET", "/scripts/1") == []
    assert api.get(f"/scripts/1/{sid}").status_code == 404
    # the name is free again after a delete
    api.ok("POST", "/scripts/1", json={"name": "hello2", "type": "shell", "cont": "true"})


def test_global_scripts_are_listed_but_not_editable(api):
    gid = api.post("/scripts/0", json={"name": "g", "type": "shell", "cont": "true"}).json["id"]
    assert [s["name"] for s in api.ok("GET", "/scripts/1")] == ["g"]
    assert api.ok("GET", f"/scripts/1/{gid}")["name"] == "g"
    assert (
        api.post(f"/scripts/1/{gid}", json={"name": "x", "type": "shell", "cont": "y"}).status_code
        == 404
    )
    assert api.delete(f"/scripts/1/{gid}").status_code == 404


def test_duplicate_name_conflicts(api):
    api.ok("POST", "/scripts/1", json={"name": "a", "type": "shell", "cont": "true"})
    r = api.post("/scripts/1", json={"name": "a", "type": "shell", "cont": "true"})
    assert r.status_code == 409 and r.json["info"].startswith("name:")
