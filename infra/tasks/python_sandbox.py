"""Runs one python task's code in a child interpreter (started with -I -S).

This file is the child's whole program: it reads {"code", "namespace"} as JSON
on stdin, runs the workflow author's code as a script (runpy, seeded with the
namespace), and writes the JSON-serialisable names the code left behind. The
code is the workflow's own source, never run
data: run inputs reach it only as values in the namespace. Running it in a
separate process with a bare environment, a memory cap and a timeout keeps it
away from the engine's credentials and state.
"""
import json
import os
import runpy
import sys
import tempfile
import types


def _jsonable(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def main():
    request = json.loads(sys.stdin.read())
    injected = dict(request["namespace"])
    with tempfile.TemporaryDirectory() as workdir:
        script = os.path.join(workdir, request.get("filename", "task") + ".py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(request["code"])
        try:
            # The workflow's code runs as a script of this child process, seeded with the namespace.
            namespace = runpy.run_path(script, init_globals=injected, run_name="__loopline_task__")
        except BaseException as exc:  # the task's failure, reported by type
            sys.stdout.write(json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}))
            return
    names = {}
    defined = {}
    for name, value in namespace.items():
        if name.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        if not _jsonable(value):
            continue
        names[name] = value
        if name not in injected or injected[name] is not value:
            defined[name] = value
    for root in ("inputs", "variables", "tasks"):
        names.pop(root, None)
        defined.pop(root, None)
    result = names["result"] if "result" in names else defined
    sys.stdout.write(json.dumps({"names": names, "result": result}))


main()
