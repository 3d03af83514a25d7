"""A task's log: stored in chunks and read from an offset (``logs``), bounded while a step runs
(``logcap``), grouped by host outcome (``hostlog``) and followed live over a ticket (``livelog``).
Below ``engine.run``, which writes it."""
