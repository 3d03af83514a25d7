"""Ansible's ``local`` connection, with a cmd step's node-script output followed as it runs.

Ansible loads this file in place of its own ``local`` plugin for opsjob's runs only (the run's
ansible.cfg names this folder). For the command that starts a step's node script (``...
/tmp/.opsjob-<run>-c<slot>.sh c<slot>``) the output is also copied into
``$OPSJOB_STREAM_DIR/c<slot>``, which the worker reads while the step runs (see
engine.ansible.streams); every other command runs as Ansible runs it.
"""

import importlib.util
import os
import re
import shlex

import ansible.plugins.connection


def _builtin_local():
    """Ansible's own local plugin. Ansible loads this file under that plugin's module name,
    so the original is loaded from its file under a name of its own."""
    path = os.path.join(os.path.dirname(ansible.plugins.connection.__file__), "local.py")
    spec = importlib.util.spec_from_file_location("opsjob_ansible_builtin_local", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Connection


AnsibleLocal = _builtin_local()

DOCUMENTATION = """
    name: local
    short_description: run on the controller, following a step's output
    description:
        - Ansible's local connection; a cmd step's output is also written to a file the
          opsjob worker follows while the step runs.
    author: opsjob
    options:
        become_success_timeout:
            type: int
            default: 10
            description: Seconds to wait for become to succeed.
            vars:
                - name: ansible_local_become_success_timeout
        become_strip_preamble:
            type: bool
            default: true
            description: Strip what become prints before the command runs.
            vars:
                - name: ansible_local_become_strip_preamble
    extends_documentation_fragment:
        - connection_pipelining
"""

RUN = re.compile(r"-c[0-9]+\.sh c([0-9]+)")


class Connection(AnsibleLocal):  # type: ignore[misc,valid-type]  # loaded at run time
    """Ansible's local connection; see the module docstring."""

    def exec_command(self, cmd, in_data=None, sudoable=True):
        folder = os.environ.get("OPSJOB_STREAM_DIR", "")
        found = RUN.search(cmd) if folder and isinstance(cmd, str) else None
        if found:
            follow = shlex.quote(os.path.join(folder, f"c{found.group(1)}"))
            # POSIX sh: the command's status comes back through fd 4, its output through tee.
            cmd = (
                "exec 3>&1; oj_rc=$( { { "
                + cmd
                + "\necho $? >&4; } | tee -a -- "
                + follow
                + " 2>/dev/null >&3; } 4>&1 ); exit $oj_rc"
            )
        return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
