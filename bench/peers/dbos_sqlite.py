"""DBOS on SQLite (its system database) on W1-W3, under the peers' venv.

Every step is a ``@DBOS.step`` (checkpointed in the system database before the workflow goes on).
W2's eight branches are child workflows started together and awaited (DBOS's way to run steps
in parallel durably); W3 is one workflow running one step per item, in order.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _workload

ENGINE = "dbos-sqlite"


def main() -> None:
    args = _workload.parse()
    try:
        from dbos import DBOS, DBOSConfig
    except ImportError as error:
        _workload.skip(ENGINE, args.workload, f"dbos does not import: {error}")

    state = Path(args.state or tempfile.mkdtemp(prefix="peers-dbos-"))
    config: DBOSConfig = {"name": "loopline-peers", "system_database_url": f"sqlite:///{state / 'dbos.sqlite'}"}
    DBOS(config=config)

    @DBOS.step()
    def noop(value: int) -> dict[str, int]:
        return _workload.step(value)

    @DBOS.workflow()
    def chain() -> dict[str, int]:
        out = {"n": 0}
        for _ in range(_workload.CHAIN):
            out = noop(out["n"] + 1)
        return out

    @DBOS.workflow()
    def branch(value: int) -> dict[str, int]:
        return noop(value)

    @DBOS.workflow()
    def fan_out() -> dict[str, int]:
        noop(0)
        handles = [DBOS.start_workflow(branch, i) for i in range(_workload.FAN_OUT)]
        results = [h.get_result() for h in handles]
        return noop(len(results))

    @DBOS.workflow()
    def each(size: int) -> int:
        return len([noop(i) for i in range(size)])

    DBOS.launch()

    def run(size: int) -> None:
        # Each call gets a workflow id of its own (DBOS makes one), so no run is answered from another.
        if args.workload == "W1":
            chain()
        elif args.workload == "W2":
            fan_out()
        elif each(size) != size:
            raise SystemExit("map lost items")

    try:
        _workload.measure(args, run, ENGINE, version=_workload.version("dbos"))
    finally:
        DBOS.destroy()



if __name__ == "__main__":
    main()
