from setuptools import find_packages, setup

NOTEBOOK = [
    "jupyterlab==4.6.6",
    "jupyterlab_widgets==3.0.17",
    "ipywidgets==8.1.9",
    "ipykernel>=6.29",
]

setup(
    name="opsjob",
    version="0.1.0",
    description="Job platform for operations teams: scripts and file copies across fleets, "
    "run step by step through Ansible, with the OpenC3 JOB API.",
    python_requires=">=3.11",
    # The data folders install as top-level packages too; engine.store.resources finds them through
    # importlib.resources. `opsjob doctor` reports other distributions with the same names.
    packages=find_packages(include=["engine", "engine.*", "api", "api.*"])
    + ["inventory_plugins", "playbooks_templates", "notebooks"],
    package_data={"playbooks_templates": ["*.j2"], "notebooks": ["*.ipynb"]},
    install_requires=[
        "ansible-core>=2.19,<2.20",
        "ansible-runner==2.4.3",
        "falcon==4.4.0",
        "gunicorn>=23",
        # gunicorn runs uvicorn's event loop (uvicorn-worker); a2wsgi runs the Falcon WSGI
        # app on threads; websockets serves the live log and terminal sockets.
        "uvicorn>=0.35",
        "uvicorn-worker>=0.3",
        "httptools>=0.6",
        "a2wsgi>=1.10",
        "websockets>=13",
        "peewee==4.5.3",
        "huey==3.5.4",
        "psycopg[binary]>=3.2",
        "redis>=5",
        "pandas>=2.2",
        "cryptography>=41",  # Fernet: credentials' secrets encrypted at rest
        "ipywidgets>=8.1",  # api.client.widgets: the notebook launcher, monitor and dashboard
        "matplotlib>=3.8",  # the dashboard's charts
        "prometheus_client>=0.20",  # GET /metrics, in its multiprocess mode
    ],
    extras_require={
        # What JupyterLab needs to show the widgets: the widget front-end for JupyterLab 4
        # (jupyterlab_widgets) at the version that matches ipywidgets, and a kernel.
        "notebook": NOTEBOOK,
        "test": [
            "pytest>=8",
            "openapi-spec-validator>=0.7",
            "ruff>=0.6",
            "requests>=2.31",
            "aiosmtpd>=1.4",  # a real SMTP server on loopback for notification tests
            "playwright>=1.45",  # drives the system chromium; never `playwright install`
            "nbclient>=0.10",  # runs notebooks/*.ipynb top to bottom in the tests
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "wheel>=0.43",  # builds the wheel the install test puts into a fresh venv
            "schemathesis>=4.0",  # fuzzes every operation of /openapi.json (tests/test_fuzz.py)
            "mypy==2.4.1",  # the type checker of `make test` (mypy.ini)
            "types-PyYAML==6.0.12.20261122",
            *NOTEBOOK,  # tests/test_jupyterlab.py runs the notebooks in a real JupyterLab
        ],
    },
    entry_points={"console_scripts": ["opsjob = api.cli:main"]},
)
