"""Contain a playbook step's run on the worker with bubblewrap (ansible-runner's isolation).

A playbook runs its own code on the worker (lookups, filters, ``local_action``,
``delegate_to: localhost``, plugins). Under ansible-runner's process isolation the run sees a
fresh root holding /bin, /etc, /usr and /opt read-only, the Python installation Ansible needs
read-only, and its own run dir; ``$OPSJOB_HOME`` (database, secret key, file store, other
runs) and the worker's ``~/.ssh`` are not there. The wrapper also drops every ``OPSJOB_*``
setting from the environment. Without a working bubblewrap, only projects an admin trusts
(``OPSJOB_PLAYBOOK_TRUSTED_PROJECTS``) may run playbook steps.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import fields
from functools import lru_cache

from engine.ansible import rundir
from engine.store.settings import Settings

WRAPPER = "bwrap.sh"
PROBE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid"]


@lru_cache(maxsize=1)
def probe():
    """Return ``(works, why not)`` for bubblewrap on this machine (checked once)."""
    path = shutil.which("bwrap")
    if path is None:
        return False, "bubblewrap (bwrap) is not installed on the worker"
    try:
        out = subprocess.run(
            [path, *PROBE, "--die-with-parent", "true"],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bubblewrap does not run on the worker: {e}"
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or ["failed"])[-1][:300]
        return False, f"bubblewrap does not work on the worker: {why}"
    return True, ""


def trusted(settings, projectid):
    """Whether an admin lets project ``projectid`` run playbooks without containment."""
    ids = {p.strip() for p in settings.playbook_trusted_projects.split(",")}
    return str(projectid) in ids


def refusal(settings, projectid):
    """Why a playbook step of ``projectid`` may not run here, or "" when it may."""
    works, why = probe()
    if works or trusted(settings, projectid):
        return ""
    return f"playbook steps need containment: {why}, and project {projectid} is not trusted"


def _setting_names():
    return sorted(f.metadata["env"] for f in fields(Settings))


def wrapper(bwrap):
    """The shell script runner starts instead of bwrap: no opsjob setting passes into it."""
    unset = " ".join(_setting_names())
    return f'#!/bin/sh\nunset {unset}\nexec {bwrap} --unshare-ipc --unshare-uts "$@"\n'


def runner_options(settings, pdd):
    """ansible-runner arguments that run the playbook of ``pdd`` contained, or {} when the
    worker cannot contain it (the caller checked :func:`refusal`)."""
    works, _ = probe()
    if not works:
        return {}
    script = os.path.join(pdd, WRAPPER)
    with open(script, "w", encoding="utf-8") as f:
        f.write(wrapper(shutil.which("bwrap")))
    os.chmod(script, 0o700)
    scratch = os.path.join(pdd, "isolation")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    home = os.path.realpath(settings.home)
    return {
        "process_isolation": True,
        "process_isolation_executable": script,
        "process_isolation_path": scratch,
        "process_isolation_hide_paths": [home, os.path.expanduser("~/.ssh")],
        "process_isolation_ro_paths": sorted(
            {sys.prefix, sys.base_prefix, rundir.CONNECTION_PLUGINS}
        ),
        "process_isolation_show_paths": [],
    }
