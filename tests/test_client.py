"""The Python client against a real server and worker, running steps on loopback sshd nodes."""

import pandas as pd
import pytest

from api.client import Client, ClientError
from tests.cluster import cmd_step, running, unique
from tests.httpclient import free_port

pytestmark = pytest.mark.slow
PID = 1


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    with running(ssh_nodes, {PID: "client", 2: "other"}, nodes=3) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    return Client(cluster.url, cluster.key, projectid=PID)


def cmd(nodes, script, **kw):
    return cmd_step(script, nodes, **kw)


def add_job(client, steps, name=None):
    answer = client.jobs.add(name=name or unique("job"), permanent=1, data=steps)
    return answer["uuid"]


def test_run_by_name_and_uuid(client, ssh_nodes):
    a, b = ssh_nodes.addresses[:2]
    name = unique("deploy")
    jobuuid = add_job(
        client, [cmd([a, b], 'echo "v=$1"; echo "appver:[$1]"', argv="$version")], name=name
    )
    task = client.run(name, {"version": "4.5.6"})
    assert task.status == "success" and task.done, task.log()
    hosts = task.hosts
    assert isinstance(hosts, pd.DataFrame) and sorted(hosts["host"]) == sorted([a, b])
    assert set(hosts["status"]) == {"ok"} and list(hosts["attempt"]) == [1, 1]
    assert all(out.startswith("v=4.5.6\n") for out in hosts["stdout"])
    text = task.log()
    assert "v=4.5.6" in text and text.endswith("task success\n")
    assert task.tail() == "" and task.log() == text  # tailing by offset: nothing new
    again = client.run(jobuuid, {"version": "4.5.7"})  # by uuid
    assert again.status == "success" and again.uuid != task.uuid
    assert [s["status"] for s in again.steps] == ["success"]

    table = client.vv_table()
    assert table.loc[a, "appver"] == "4.5.7" and table.index.name == "NODE"
    assert client.vv(name="appver", node=b)["value"].tolist() == ["4.5.7"]
    values = client.vv_values()["value"].tolist()
    assert "4.5.7" in values and "4.5.6" not in values  # the newer report replaced it


def test_plugin_task_has_hosts_without_steps(client, ssh_nodes):
    a, b, c = ssh_nodes.addresses[:3]
    task = client.run_cmd([a, b, c], "hostname >/dev/null; echo done")
    assert task.status == "success"
    assert task.steps == []
    frame = task.hosts
    assert len(frame) == 3 and set(frame["stdout"]) == {"done\n"}
    assert frame["step"].nunique() == 1


def test_decision_retry_through_the_client(client, cluster, ssh_nodes):
    a = ssh_nodes.addresses[0]
    flag = f"/tmp/{unique('flag')}"
    task = client.run(add_job(client, [cmd([a], f"test -e {flag}")]))
    assert task.status == "waiting"
    assert task.pending("running")["status"] == "decision"
    with pytest.raises(ClientError) as e:
        task.control("next")  # nothing is paused
    assert e.value.status == 409 and e.value.info.startswith("control:")
    ssh_nodes.ssh(a, f"touch {flag}")
    operator = cluster.run("user", "add", unique("op"), "--project", str(PID), "--role", "control")
    watched = Client(cluster.url, operator, projectid=PID).task(task.uuid)
    with pytest.raises(ClientError) as e:
        watched.control("ignore")  # deciding to go on needs write
    assert e.value.status == 403
    watched.control("running")  # retrying needs only control
    assert task.wait().status == "success"
    assert task.hosts["attempt"].tolist() == [1, 2]
    assert task.hosts["status"].tolist() == ["failed", "ok"]


def test_errors_carry_status_and_info(client, cluster):
    with pytest.raises(ClientError) as e:
        client.call("POST", f"/task/{PID}/job", jobuuid="x", variable="notahash")
    assert e.value.status == 400 and e.value.info.startswith("variable")
    with pytest.raises(ClientError) as e:
        client.run(unique("nosuchjob"))
    assert e.value.status == 404
    with pytest.raises(ClientError) as e:
        client.task("nosuchtask00")
    assert e.value.status == 404 and e.value.info.startswith("uuid")
    with pytest.raises(ClientError) as e:
        Client(cluster.url, "oj_wrong").tasks(projectid=PID)
    assert e.value.status == 401
    other = cluster.run("user", "add", unique("u"), "--project", "2", "--role", "read")
    with pytest.raises(ClientError) as e:
        Client(cluster.url, other).analysis("date", projectid=PID)
    assert e.value.status == 403
    with pytest.raises(ClientError) as e:
        Client(f"http://127.0.0.1:{free_port()}", "k", projectid=1).tasks()
    assert e.value.status == 0
    with pytest.raises(ClientError) as e:
        Client(cluster.url, cluster.key).tasks()  # no project given anywhere
    assert e.value.info.startswith("projectid")


def test_groups_and_history_frames(client, ssh_nodes):
    name = unique("script")
    created = client.scripts.add(name=name, type="shell", cont="uptime")
    scripts = client.scripts.list(name=name)
    assert scripts["name"].tolist() == [name]
    assert client.scripts.get(created["id"])["cont"] == "uptime"
    client.scripts.delete(created["id"])
    assert client.scripts.list(name=name).empty
    assert client.project()["id"] == PID
    assert set(ssh_nodes.addresses[:3]) <= set(client.nodeinfo()["name"])

    stored = unique("notes") + ".txt"
    assert client.upload({stored: b"line one\n\x00binary"}) == 1
    files = client.fileserver.list(name=stored)
    assert files["name"].tolist() == [stored] and files["size"].tolist() == [16]
    assert client.download(stored) == b"line one\n\x00binary"
    client.fileserver.delete(files["id"].iloc[0])
    with pytest.raises(ClientError) as e:
        client.download(stored)
    assert e.value.status == 404

    client.run_cmd(ssh_nodes.addresses[:1], "true")
    date = client.analysis("date")
    assert list(date.columns) == ["date", "total", "success"] and len(date) == 30
    assert date["success"].iloc[-1] >= 1
    runtime = client.analysis("runtime")
    assert runtime["bucket"].tolist() == ["0-1", "1-3", "3-5", "5-10", "10-30", "30+"]
    assert abs(runtime["percent"].sum() - 100) < 0.1
    client.run_cmd(ssh_nodes.addresses[:1], "true")
    last = client.analysis("last", count=1)
    assert len(last) == 1 and str(last["starttime"].dtype).startswith("datetime64")
    assert client.analysis("statistics")["id"].tolist()[0] == PID
    assert client.analysis("hour")["count"].sum() >= 1
    with pytest.raises(ClientError):
        client.analysis("weekly")
