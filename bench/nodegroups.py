"""Node group benchmark: a node group of 10,000 hosts, resolved and checked against the project.

Fills a fresh SQLite database with one project of ``--hosts`` machines (``node-00001`` at
``10.0.0.1`` and so on; every tenth sets an ``ansible_port``), then, for each plugin kind that
can reach that size, saves a node group over them and times what a step and
``GET /nodegroup/:pid/:id/nodelist`` do with it: resolve the group through its inventory plugin
(in the child process) and check every host against the project's machines. "cold" is the
first resolution (the parser child runs), "cached" the next one (a pure source's answer comes
from memory, the containment check runs again); "step" is the same resolution as a step's
node list (engine.machines.nodes.resolve), logins included.

Baseline, measured in the same run: ``ansible-inventory --list`` on a static YAML file of the
same hosts with the same variables, i.e. what Ansible itself takes to load and print them.

The ``node`` plugin's params are capped at 64 KB of JSON, so its group names as many machines
as fit (the count is printed). Inline ``ansible`` text has the same cap and is not measured.

Each figure is wall and CPU time (this process and the parser child), so a busy machine shows
in the first and less in the second.

    .venv/bin/python -m bench.nodegroups [--hosts 10000] [--repeat 3]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from api.server.app import create_app
from engine.catalog import projects
from engine.errors import InvalidInput
from engine.machines import inventory, nodegroups, nodes
from engine.store.db import database
from engine.store.models import Nodelist
from engine.store.settings import Settings

from .proc import reaped_cpu

BIN = os.path.dirname(sys.executable)


def machine(i):
    """Name, inner IP and hostvars of the i-th machine (from 1)."""
    ip = f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
    hostvars = {"ansible_port": 2222} if i % 10 == 0 else {}
    return f"node-{i:05d}", ip, hostvars


def fill(count):
    """Add ``count`` machines to project 1 in one transaction."""
    rows = []
    for i in range(1, count + 1):
        name, ip, hostvars = machine(i)
        rows.append(
            {
                "projectid": 1,
                "name": name,
                "inip": ip,
                "hostvars": json.dumps(hostvars),
                "create_user": "bench",
                "edit_user": "bench",
            }
        )
    with database.atomic():
        for start in range(0, len(rows), 500):
            Nodelist.insert_many(rows[start : start + 500]).execute()


def static_inventory(count, path):
    """Write the machines as a static YAML inventory with the variables a run uses."""
    with open(path, "w") as f:
        f.write("all:\n  hosts:\n")
        for i in range(1, count + 1):
            name, ip, hostvars = machine(i)
            port = f", ansible_port: {hostvars['ansible_port']}" if hostvars else ""
            f.write(f"    {name}: {{ansible_host: {ip}{port}}}\n")


def node_params(count):
    """The longest comma list of machine names the node plugin's params can hold."""
    names = []
    size = 2  # the JSON string's quotes
    for i in range(1, count + 1):
        name = machine(i)[0]
        size += len(name) + 1
        if size > nodegroups.MAX_PARAMS:
            break
        names.append(name)
    return ",".join(names), len(names)


def cpu():
    """CPU seconds of this process and of its reaped children (the parser child)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime + reaped_cpu()


def timed(call):
    """Run ``call``; return ((wall seconds, CPU seconds), its result)."""
    t0, c0 = time.monotonic(), cpu()
    result = call()
    return (time.monotonic() - t0, cpu() - c0), result


def baseline(path):
    """(wall, CPU) seconds of `ansible-inventory --list` on the static file."""
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    argv = ["ansible-inventory", "-i", path, "--list"]
    spent, _ = timed(lambda: subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL))
    return spent


def median(pairs):
    return tuple(statistics.median(column) for column in zip(*pairs, strict=True))


def measure(gid, expected, repeat):
    """(cold, cached, step) (wall, CPU) seconds for group ``gid``, checking its hosts."""
    colds, cached, steps = [], [], []
    for _ in range(repeat):
        inventory._cache.clear()
        cold, hosts = timed(lambda: nodegroups.nodelist(1, gid, {"hostvars": True}))
        if sorted(hosts) != expected:
            raise RuntimeError(f"group {gid} resolved to {len(hosts)} hosts, not the expected")
        warm, _ = timed(lambda: nodegroups.nodelist(1, gid, {"hostvars": True}))
        step, found = timed(lambda: nodes.resolve(1, "group", str(gid), {}))
        if len(found.hosts) != len(expected) or found.refused:
            raise RuntimeError(f"group {gid} as a step's nodes: {len(found.hosts)} hosts")
        colds.append(cold)
        cached.append(warm)
        steps.append(step)
    return median(colds), median(cached), median(steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hosts", type=int, default=10000)
    p.add_argument("--repeat", type=int, default=3, help="runs per group (median is kept)")
    p.add_argument(
        "--timeout",
        type=int,
        default=Settings.__dataclass_fields__["inventory_timeout"].default,
        help="seconds a resolution may take (OPSJOB_INVENTORY_TIMEOUT; default: its default)",
    )
    args = p.parse_args(argv)
    if args.hosts > inventory.MAX_HOSTS:
        p.error(f"a node group holds at most {inventory.MAX_HOSTS} hosts")
    home = tempfile.mkdtemp(prefix="opsjob-bench-")
    try:
        create_app(
            Settings(
                home=home,
                database_url=f"sqlite:///{home}/opsjob.db",
                inventory_timeout=args.timeout,
            )
        )
        static = os.path.join(home, "hosts.yml")
        static_inventory(args.hosts, static)
        names = sorted(machine(i)[0] for i in range(1, args.hosts + 1))
        text, fit = node_params(args.hosts)
        with database.connection_context():
            projects.ensure_project(1, "bench")
            fill(args.hosts)
            groups = [
                ("nodelist, all machines", "nodelist", "", names),
                ("nodelist, wildcard 10.*", "nodelist", "10.*", names),
                ("nodelist, ~regex", "nodelist", r"~^node-\d+$", names),
                ("node, comma list", "node", text, sorted(text.split(","))),
                ("ansible, YAML file", "ansible", {"path": static}, names),
            ]
            ids = [
                nodegroups.save_nodegroup(
                    1, {"name": f"g{i}", "plugin": plugin, "params": params}, "bench", admin=True
                )
                for i, (_, plugin, params, _) in enumerate(groups)
            ]
            base = baseline(static)
            print(f"{args.hosts} machines in project 1, on {os.cpu_count()} cores")
            print(
                "baseline: ansible-inventory --list on the same hosts as a YAML file: "
                f"{base[0]:.2f} s, {base[1]:.2f} CPU-s"
            )
            print("seconds, wall / CPU; ratios to the baseline's, wall / CPU")
            print(
                f"  {'group':26} {'hosts':>6} {'cold':>13} {'ratio':>11} {'cached':>13} "
                f"{'step':>13}"
            )
            for (label, _, _, expected), gid in zip(groups, ids, strict=True):
                try:
                    cold, warm, step = measure(gid, expected, args.repeat)
                except InvalidInput as e:
                    print(f"  {label:26} {len(expected):6} {e.info}", flush=True)
                    continue
                print(
                    f"  {label:26} {len(expected):6} {cold[0]:6.2f}/{cold[1]:6.2f} "
                    f"{cold[0] / base[0]:5.2f}/{cold[1] / base[1]:5.2f} "
                    f"{warm[0]:6.2f}/{warm[1]:6.2f} {step[0]:6.2f}/{step[1]:6.2f}",
                    flush=True,
                )
            if fit < args.hosts:
                print(f"(node: {fit} names fit in its {nodegroups.MAX_PARAMS}-byte params)")
    finally:
        if database.obj is not None and not database.is_closed():
            database.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
