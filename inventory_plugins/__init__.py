"""Ansible inventory plugins (node group plugins and the ``opsjob`` source).

Ansible loads each file by path and skips this one; the package lets them install with opsjob.
"""
