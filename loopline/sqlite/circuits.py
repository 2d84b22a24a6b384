"""Circuit breakers on the SQLite file (StateStore.get_circuit / put_circuit, statemachine/circuit.py):
one row per breaker in ``circuits``, written in one transaction that reads the stored version first, so a
write applies only over the version it was decided on, as on DynamoDB."""

from __future__ import annotations

from infra.ports import Written
from statemachine.circuit import Circuit

from .db import Database


class SQLiteCircuits:
    def __init__(self, db: Database):
        self._db = db

    def get_circuit(self, name: str) -> Circuit | None:
        row = self._db.row("SELECT record, version FROM circuits WHERE name = ?", (name,))
        return Circuit.from_json(row[0], row[1]) if row else None

    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        with self._db.write() as db:
            row = db.execute("SELECT record, version FROM circuits WHERE name = ?", (circuit.name,)).fetchone()
            if (row[1] if row else 0) != circuit.version:
                return Written(False, Circuit.from_json(row[0], row[1]))
            db.execute("INSERT OR REPLACE INTO circuits (name, record, version) VALUES (?, ?, ?)",
                       (circuit.name, circuit.to_json(), circuit.version + 1))
        return Written(True, Circuit.from_json(circuit.to_json(), circuit.version + 1))
