from .engine import Busy, Engine, EngineSettings
from .links import LinkError

__all__ = ["Busy", "Engine", "EngineSettings", "LinkError"]
