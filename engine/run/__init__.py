"""Launching and running tasks: launch and control, the queue and its workers, claim and sweep,
mutexes, the step plan, node resolution and inventory, logs and events.
"""
