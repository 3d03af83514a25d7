"""Ansible connection plugins of opsjob's runs, loaded by Ansible itself.

See engine.ansible.rundir.
"""
