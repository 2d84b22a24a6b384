from .approvals import LinkError
from .engine import RUN_TERMINAL, Busy, Engine, EngineSettings

__all__ = ["Busy", "Engine", "EngineSettings", "LinkError", "RUN_TERMINAL"]
