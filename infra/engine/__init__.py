from .engine import RUN_TERMINAL, Busy, Engine, EngineSettings
from .signals import LinkError

__all__ = ["Busy", "Engine", "EngineSettings", "LinkError", "RUN_TERMINAL"]
