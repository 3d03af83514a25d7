"""Launching and running tasks: launch and control, the queue and its workers, claim and sweep,
mutexes, the step plan and its runs, host results and events. The log they write lives in
``engine.tasklog``.
"""
