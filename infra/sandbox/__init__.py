"""Running workflow code (python, shell and custom tasks) outside the engine's trust boundary.

``request`` holds the typed request and reply that cross the boundary (and the
limits that bound them); the rest of the package runs a request in a supervised
child process with a clean environment, an unprivileged user, resource limits
and a kill of everything it started (docs/security.md).
"""
