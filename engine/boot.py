"""Start the engine in a process: the queue, the run entry point and each room's listeners.

The queue never imports what runs on it. Where a process starts (the API app, ``opsjob
worker``, a test), this module configures the queue, binds the worker's run entry point, the
lifecycle's periodic sweep, and the queue tasks and event listeners of the rooms below.
"""

from typing import TYPE_CHECKING, Any

from engine.approval import notify as approval_notify
from engine.approval import step as approval_step
from engine.files import fileserver
from engine.insight import metrics, versions
from engine.machines import credentials, inventory
from engine.messages import notifications
from engine.ops import retention
from engine.run import lifecycle, mutex, queue, third, worker
from engine.schedule import scheduler

if TYPE_CHECKING:
    from engine.store.settings import Settings

# Modules that plug into the queue and the task events, in registration order.
EXTENSIONS = (
    versions,
    fileserver,
    third,
    mutex,
    scheduler,
    notifications,
    approval_step,
    approval_notify,
    metrics,
    credentials,
    inventory,
    retention,
)


def start(settings: "Settings") -> Any:
    """Configure the queue for ``settings``, register opsjob's queue tasks on it; return huey."""
    huey = queue.configure(settings, worker.run_task)
    lifecycle.register_periodic(huey, settings)
    for module in EXTENSIONS:  # each registers its queue tasks and event listeners
        module.register(huey, settings)
    return huey
