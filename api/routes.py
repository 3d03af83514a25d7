"""Every route group the API serves, in the order the OpenAPI document lists them."""

from . import projects, scripts

GROUPS = [projects, scripts]
