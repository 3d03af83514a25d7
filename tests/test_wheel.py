"""opsjob installs as a package: a real wheel, installed into a fresh venv outside the checkout,
runs `opsjob up` and a cmd step on localhost; `opsjob doctor` names a clashing distribution.

The fresh venv gets opsjob from the wheel only. Its dependencies come from the test venv through
a ``.pth`` line (appended after the venv's own site-packages, and without the test venv's own
``.pth`` files, so the editable checkout stays invisible): installing them from the registry
would take minutes.
"""

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile

import pytest

from tests.httpclient import call, free_port, wait_until_up

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["setup.py", "README.md", "engine", "api", "inventory_plugins", "playbooks_templates"]
SOURCES.append("notebooks")
pytestmark = pytest.mark.slow


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    assert out.returncode == 0, (cmd, out.stdout[-2000:], out.stderr[-4000:])
    return out.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """Build the wheel from a copy of the sources and install it into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)])
    (wheel,) = os.listdir(base / "dist")
    target = base / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(target)])
    python = str(target / "bin" / "python")
    run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", str(base / "dist" / wheel)]
    )
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    with open(os.path.join(site.strip(), "zz-test-deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return {"base": base, "bin": target / "bin", "site": site.strip(), "wheel": wheel}


def env_for(venv, home):
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPSJOB_", "PYTHON"))},
        "OPSJOB_HOME": str(home),
        "OPSJOB_LOG_LEVEL": "WARNING",
        # a pip install would put ansible-playbook into the venv's bin; here it is the test venv's
        "PATH": f"{venv['bin']}:{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
    }


def test_the_wheel_carries_the_data_and_finds_it_installed(venv):
    names = zipfile.ZipFile(venv["base"] / "dist" / venv["wheel"]).namelist()
    for expected in (
        "playbooks_templates/cmd.yml.j2",
        "playbooks_templates/scp.yml.j2",
        "inventory_plugins/node.py",
        "notebooks/quickstart.ipynb",
    ):
        assert expected in names
    out = run(
        [
            str(venv["bin"] / "python"),
            "-c",
            "import engine.ansible.playbook as p, engine.machines.inventory as i; "
            "import engine.store.resources as r; "
            "print(p.TEMPLATES); print(i.PLUGIN_DIR); print(r.folder('notebooks'))",
        ],
        cwd=venv["base"],
    )
    for line in out.split():
        assert line.startswith(venv["site"]) and os.path.isdir(line), line


def test_up_runs_a_cmd_step_from_the_installed_wheel(venv, tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "elsewhere"
    cwd.mkdir()
    env = env_for(venv, home)
    opsjob = str(venv["bin"] / "opsjob")
    run([opsjob, "init"], env=env, cwd=cwd)
    key = run([opsjob, "bootstrap"], env=env, cwd=cwd).split("admin key: ")[1].split()[0]
    doctor = subprocess.run([opsjob, "doctor"], env=env, cwd=cwd, capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout
    assert f"from {venv['site']}" in doctor.stdout

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen(
        [opsjob, "up", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(url, up)
        status, body = call(
            "POST",
            f"{url}/task/1/plugin_cmd",
            key,
            {
                "node_type": "builtin",
                "node_cont": "localhost",
                "scripts_type": "shell",
                "scripts_cont": "echo from-the-wheel; python3 -c 'print(6*7)'",
            },
        )
        assert status == 200, body
        uuid = body["data"]["uuid"]
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            status, body = call("GET", f"{url}/slave/any/tasklog/{uuid}", key)
            if status == 200 and body["data"]["done"]:
                text = body["data"]["log"]
                break
            time.sleep(0.2)
        assert body["data"]["status"] == "success", (body, (tmp_path / "up.log").read_text())
        assert "from-the-wheel" in text and "42" in text, text
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def test_doctor_names_a_distribution_that_shares_a_top_level_name(venv, tmp_path):
    info = os.path.join(venv["site"], "shadow_engine-1.0.dist-info")
    os.makedirs(info)
    try:
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: shadow-engine\nVersion: 1.0\n")
        with open(os.path.join(info, "top_level.txt"), "w") as f:
            f.write("engine\n")
        env = env_for(venv, tmp_path)
        out = subprocess.run(
            [str(venv["bin"] / "opsjob"), "doctor"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(info)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert len(lines) == 7, lines
    (packages,) = [line for line in lines if "packages" in line]
    assert packages.startswith("FAIL") and "engine (also in shadow-engine)" in packages
