"""Running a step through Ansible: playbook compile with the node-side scripts, playbook steps and
their sources and sandbox, ansible-runner and its output streams, the private run dir and the
process tree. It imports only files and store.
"""
