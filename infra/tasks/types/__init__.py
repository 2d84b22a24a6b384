"""The runtime side of each task type, one module per type named after it (``RUNTIME``).

The code-running types (python, shell, custom) share ``code.py``. See
infra/tasks/registry.py for how a type's language side and its runtime meet, and
docs/task-types.md ("Adding a task type").
"""
