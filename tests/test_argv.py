"""An argv that does not parse never runs a script: a 400 naming scripts_argv when it is saved
or launched, and a failed step (script not run) when it only breaks after substitution."""

import os
import subprocess

import pytest

from engine.ansible import nodescripts
from engine.catalog import argv
from tests.cluster import Cluster, cmd_step, unique
from tests.test_jobs import cmd_step as job_cmd_step

BAD = ["a (b", "x 'y", 'say "hi', "a )", "a `b", "one\ntwo (three", "a \\"]
GOOD = ["", "$version --fast", "a 'b c' \"d e\"", "$(date +%s)", "a \\\\", "'a\\'", "x; y"]


@pytest.mark.parametrize("text", BAD)
def test_bad_argv_is_named(text):
    with pytest.raises(Exception) as e:
        argv.check("scripts_argv", text)
    assert e.value.info.startswith("scripts_argv: does not parse as shell words (")


@pytest.mark.parametrize("text", GOOD)
def test_good_argv_passes(text):
    assert argv.check("scripts_argv", text) == text


def run_node_script(tmp_path, text):
    """Run the node-side script of a cmd step here, with bash; return (rc, stderr, args)."""
    out = tmp_path / "args"
    body = f'printf "%s\\n" "$#" "$@" > {out}\n'
    script = tmp_path / "run.sh"
    script.write_text(nodescripts.run_script(unique("r"), 30, body, "shell", text, {}))
    done = subprocess.run(
        ["/bin/bash", str(script), "c0"], capture_output=True, text=True, timeout=30
    )
    args = out.read_text().splitlines() if out.exists() else None
    return done.returncode, done.stderr, args


@pytest.mark.parametrize("text", BAD + ["x ${a b} y"])
def test_the_node_refuses_an_argv_that_does_not_parse(tmp_path, text):
    """The script never runs, not even with the wrapper's own arguments (``c0 inner``)."""
    rc, err, args = run_node_script(tmp_path, text)
    assert rc == 2 and args is None, (rc, err, args)
    assert "opsjob: scripts_argv does not parse as shell words" in err


def test_the_node_still_splits_good_argv(tmp_path):
    rc, err, args = run_node_script(tmp_path, "one 'two three' $(echo four) \\\\")
    assert rc == 0, err
    assert args == ["4", "one", "two three", "four", "\\"]
    rc, err, args = run_node_script(tmp_path, "")
    assert (rc, args) == (0, ["0"])


@pytest.mark.parametrize("text", ["a (b", "x 'y"])
def test_save_and_launch_name_scripts_argv(api, text):
    r = api.post("/jobs/1", json={"name": "j", "data": [job_cmd_step(scripts_argv=text)]})
    assert r.status_code == 400 and r.json["info"].startswith("step 1: scripts_argv:"), r.text
    saved = api.ok("POST", "/jobs/1", json={"name": "j", "data": [job_cmd_step()]})
    r = api.post(f"/jobs/1/{saved}", json={"name": "j", "data": [job_cmd_step(scripts_argv=text)]})
    assert r.status_code == 400 and r.json["info"].startswith("step 1: scripts_argv:"), r.text
    launch = {
        "node_type": "builtin",
        "node_cont": "10.0.0.1",
        "scripts_type": "shell",
        "scripts_cont": "id",
        "scripts_argv": text,
    }
    r = api.post("/task/1/plugin_cmd", json=launch)
    assert r.status_code == 400 and r.json["info"].startswith("scripts_argv:"), r.text
    assert api.ok("GET", "/task/1") == [] or all(
        t["name"] != "quick cmd" for t in api.ok("GET", "/task/1")
    )


# -- end to end: a substituted argv that breaks never runs the script on a real node -----------


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    c = Cluster(ssh_nodes)
    c.run("project", "add", "1", "argv")
    c.serve()
    c.worker(workers=2)
    c.add_nodes(1, ssh_nodes.ensure(1))
    yield c
    c.close()


@pytest.mark.slow
@pytest.mark.parametrize("value", ["a (b", "x ${a b} y"])
def test_a_substituted_argv_that_breaks_fails_the_step(cluster, ssh_nodes, value):
    """``a (b`` is caught before the run; ``${a b}`` parses but cannot be expanded, so the
    node refuses it. Either way the step fails and the script's side effect is absent."""
    node = ssh_nodes.addresses[0]
    side = f"/tmp/{unique('side')}"
    step = cmd_step(f"touch {side}", [node], argv="$arg")
    job = cluster.ok("POST", "/jobs/1", {"name": unique("j"), "permanent": 1, "data": [step]})
    task = cluster.ok("POST", "/task/1/job", {"jobuuid": job["uuid"], "variable": {"arg": value}})
    # refused before the run the task fails; failed on its node it waits for a decision
    done = cluster.wait(1, task["uuid"], statuses=("success", "fail", "waiting"))
    log = cluster.ok("GET", f"/slave/any/tasklog/{task['uuid']}")["data"]["log"]
    assert done["status"] == ("fail" if value == "a (b" else "waiting"), log
    assert "scripts_argv" in log and "does not parse as shell words" in log, log
    assert ssh_nodes.ssh(node, f"test -e {side} && echo present || echo absent").stdout.strip() == (
        "absent"
    )
    assert not os.path.exists(side)
