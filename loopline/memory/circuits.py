"""Circuit breakers in memory (StateStore.get_circuit / put_circuit, statemachine/circuit.py), with the
DynamoDB store's condition: a write applies only over the version it was decided on."""

from __future__ import annotations

import threading

from infra.ports import Written
from statemachine.circuit import Circuit


class MemoryCircuits:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: dict[str, Circuit] = {}

    def get_circuit(self, name: str) -> Circuit | None:
        return self._stored.get(name)  # frozen: shared safely

    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        with self._lock:
            current = self._stored.get(circuit.name)
            if (current.version if current else 0) != circuit.version:
                assert current is not None  # a version above 0 was read from a stored one
                return Written(False, current)
            stored = Circuit.from_json(circuit.to_json(), circuit.version + 1)
            self._stored[circuit.name] = stored
            return Written(True, stored)
