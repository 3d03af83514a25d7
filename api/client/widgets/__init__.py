"""Notebook widgets built on :mod:`api.client`: launch a job, watch and steer a task, chart
the history.

    JobLauncher(client)            pick a job, fill its variables, Run; shows the task's monitor
    TaskMonitor(task).watch()      steps, hosts, log tail; Next/Retry/Ignore/Fail/Kill buttons
    AnalysisDashboard(client)      charts of the analysis routes and the version table

Every widget works headless too: ``refresh()`` reloads it and ``button.click()`` acts. In
JupyterLab the widgets need its front-end, ``jupyterlab_widgets`` (``pip install
'opsjob[notebook]'``).
"""

from api.client.widgets.dashboard import AnalysisDashboard
from api.client.widgets.launcher import JobLauncher
from api.client.widgets.monitor import TaskMonitor

__all__ = ["AnalysisDashboard", "JobLauncher", "TaskMonitor"]
