"""Ansible connection plugins of opsjob's runs, loaded by Ansible itself (see engine.ansible.rundir)."""
