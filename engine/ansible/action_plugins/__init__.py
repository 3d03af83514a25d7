"""Ansible action plugins of opsjob's runs (the run's ansible.cfg names this folder)."""
