"""LangGraph with its SQLite checkpointer (langgraph-checkpoint-sqlite) on W1-W3, under the peers' venv.

A checkpoint is written after every superstep, in one SQLite file, before the next one starts
(``durability="sync"``; LangGraph's default, "async", writes it while the next step runs). W1 is
a chain of 10 nodes; W2 a node, eight nodes in one superstep, and a node that joins them; W3
one node per item, sent with ``Send`` from a start node (one superstep for all the items, as
LangGraph maps), their outputs gathered by a list reducer.
"""

from __future__ import annotations

import operator
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import _workload

ENGINE = "langgraph-sqlite"


class State(TypedDict, total=False):
    n: int
    items: list[int]
    done: Annotated[list[dict[str, int]], operator.add]


def main() -> None:
    args = _workload.parse()
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Send
    except ImportError as error:
        _workload.skip(ENGINE, args.workload, f"langgraph does not import: {error}")

    state = Path(args.state or tempfile.mkdtemp(prefix="peers-langgraph-"))
    saver = SqliteSaver(sqlite3.connect(state / "checkpoints.sqlite", check_same_thread=False))

    def noop(s: State) -> dict[str, Any]:
        return {"done": [_workload.step(s.get("n", 0))]}

    graph = StateGraph(State)
    if args.workload == "W1":
        names = [f"t{i}" for i in range(_workload.CHAIN)]
        for name in names:
            graph.add_node(name, noop)
        for a, b in zip([START, *names], [*names, END]):
            graph.add_edge(a, b)
        expected = _workload.CHAIN
    elif args.workload == "W2":
        branches = [f"b{i}" for i in range(_workload.FAN_OUT)]
        for name in ["split", *branches, "join"]:
            graph.add_node(name, noop)
        graph.add_edge(START, "split")
        for name in branches:
            graph.add_edge("split", name)
        graph.add_edge(branches, "join")
        graph.add_edge("join", END)
        expected = _workload.FAN_OUT + 2
    else:
        graph.add_node("start", lambda s: {})
        graph.add_node("work", noop)
        graph.add_edge(START, "start")
        graph.add_conditional_edges("start", lambda s: [Send("work", {"n": i}) for i in s["items"]], ["work"])
        graph.add_edge("work", END)
        expected = -1
    app = graph.compile(checkpointer=saver)

    def run(size: int) -> None:
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        out = app.invoke({"items": list(range(size)), "done": []} if args.workload == "W3" else {"done": []},
                         config, durability="sync")
        if len(out["done"]) != (size if expected < 0 else expected):
            raise SystemExit(f"{len(out['done'])} steps done")

    _workload.measure(args, run, ENGINE, version=_workload.version("langgraph"))



if __name__ == "__main__":
    main()
