"""Code-running tasks (python, shell, custom) run outside the worker: in the task-runner function on AWS.

``jobs`` holds what crosses to the runner and back (one encoding each); ``runner``
is what the task-runner function does with a job. The port that starts a job is
:class:`infra.ports.CodeDispatch`, with an AWS adapter (``infra/aws/task_dispatch.py``:
an asynchronous Lambda invoke) and an in-memory one (``loopline/memory/task_dispatch.py``).
"""
