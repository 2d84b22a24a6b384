"""Who task code runs as, and what that user can reach: its uid and gid, its Python, its import path.

When the engine runs as root, task code runs as the configured task user
(``LOOPLINE_TASK_USER``, default ``nobody``: :class:`~.settings.SandboxSettings`) with that user's
primary group and no supplementary groups. When it does not, no switch is possible and the task
runs as the engine's own user.

Permissions are judged from mode bits for that uid and gid (no ACLs): a path is
usable when every directory on the way can be searched, as the kernel will check
when the task itself opens it.
"""

from __future__ import annotations

import functools
import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ..tasks.base import TaskFailure

CONFIG_ERROR = "ProviderConfigError"


@dataclass(frozen=True)
class TaskIdentity:
    """``uid``/``gid`` None: the engine is not root and the task keeps the engine's user."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None


def task_identity(user: str) -> TaskIdentity:
    """``user``: the configured task user (a name or uid), used only when the engine is root."""
    if os.geteuid() != 0:
        return TaskIdentity(name=pwd.getpwuid(os.geteuid()).pw_name if _known(os.geteuid()) else str(os.geteuid()))
    return _switch_to(user.strip())


def _known(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


@functools.lru_cache(maxsize=8)
def _switch_to(user: str) -> TaskIdentity:
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError) as exc:
        raise TaskFailure(CONFIG_ERROR, f"LOOPLINE_TASK_USER={user!r}: no such user on this machine") from exc
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        # Running task code as root would undo every other defense.
        raise TaskFailure(CONFIG_ERROR, f"LOOPLINE_TASK_USER={user!r} is root; name an unprivileged user")
    return TaskIdentity(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def permitted(path: str | os.PathLike, identity: TaskIdentity, want: int) -> bool:
    """Whether ``identity`` has ``want`` (a mix of os.R_OK, os.W_OK, os.X_OK) on ``path`` itself."""
    if not identity.switches:
        return os.access(path, want)
    try:
        info = os.stat(path)
    except OSError:
        return False
    if info.st_uid == identity.uid:
        shift = 6
    elif info.st_gid == identity.gid:
        shift = 3
    else:
        shift = 0
    granted = (info.st_mode >> shift) & 0o7
    return granted & want == want


def reachable(path: str | os.PathLike, identity: TaskIdentity) -> bool:
    """Every directory above ``path`` (as written and as resolved) can be searched by ``identity``."""
    for candidate in {os.path.abspath(path), os.path.realpath(path)}:
        parent = Path(candidate).parent
        for directory in (parent, *parent.parents):
            if not permitted(directory, identity, os.X_OK):
                return False
    return True


def can_execute(path: str, identity: TaskIdentity) -> bool:
    real = os.path.realpath(path)
    return (os.path.isfile(real) and reachable(path, identity) and permitted(real, identity, os.X_OK)
            and permitted(real, identity, os.R_OK))


def can_read_dir(path: str, identity: TaskIdentity) -> bool:
    return (os.path.isdir(path) and reachable(path, identity)
            and permitted(path, identity, os.R_OK | os.X_OK))


@functools.lru_cache(maxsize=8)
def task_python(identity: TaskIdentity, configured: str = "") -> str:
    """The interpreter for python and custom code: ``configured`` (LOOPLINE_TASK_PYTHON), else this Python
    when the task user can run it (and read its standard library), else a system Python of the same
    major.minor."""
    if configured:
        if not can_execute(configured, identity):
            raise TaskFailure(CONFIG_ERROR, f"LOOPLINE_TASK_PYTHON={configured!r} cannot be run by the task user "
                                            f"{identity.name}")
        return configured
    stdlib = os.path.dirname(os.__file__)
    if can_execute(sys.executable, identity) and can_read_dir(stdlib, identity):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for directory in ("/usr/bin", "/usr/local/bin", "/bin"):
        candidate = os.path.join(directory, version)
        if can_execute(candidate, identity):
            return candidate
    raise TaskFailure(CONFIG_ERROR, f"no Python {sys.version_info.major}.{sys.version_info.minor} that the task user "
                                    f"{identity.name} can run ({sys.executable} is not reachable for it); install "
                                    f"one or set LOOPLINE_TASK_PYTHON")


def import_path(identity: TaskIdentity) -> list[str]:
    """The engine's import path, as far as the task user can read it (where custom handlers are found)."""
    entries = []
    for entry in sys.path:
        entry = os.path.abspath(entry or os.getcwd())
        if entry not in entries and can_read_dir(entry, identity):
            entries.append(entry)
    return entries


def give_to(path: str | os.PathLike, identity: TaskIdentity) -> None:
    """Make the directory ``path`` owned by the task user, when the engine drops privileges: only a real
    directory (never through a symlink) that is the engine's own (never someone else's)."""
    if not identity.switches or identity.uid is None or identity.gid is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return  # not a plain directory: leave it as it is
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            os.fchown(fd, identity.uid, identity.gid)
    finally:
        os.close(fd)
