"""Child processes that end with the process that started them.

Sanic's worker manager spawns the workers and a multiprocessing manager. If the main
process is killed outright (SIGKILL, the OOM killer), nothing tells them: the workers
go on serving the port with nobody to stop them, and the manager waits forever. On
Linux the kernel can send a child a signal when its parent exits (`PR_SET_PDEATHSIG`);
each of them asks for SIGTERM, which Sanic's workers treat as a graceful stop."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from multiprocessing.managers import SyncManager

PR_SET_PDEATHSIG = 1
LINUX = sys.platform.startswith("linux")
# Resolved at import: between fork and exec a child may not load anything.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if LINUX else None


def signal_on_parent_exit(sig: signal.Signals = signal.SIGTERM) -> None:
    """Have the kernel send `sig` to this process when its parent exits (Linux; safe to
    call between fork and exec)."""
    if _prctl is not None and _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """In a process spawned by `multiprocessing`: `sig` once its parent is gone, even if
    that happened before this call. False (nothing asked) elsewhere."""
    parent = multiprocessing.parent_process()
    if parent is None or _prctl is None:
        return False
    signal_on_parent_exit(sig)
    if os.getppid() != parent.pid:  # gone already: the kernel will not tell us
        os.kill(os.getpid(), sig)
    return True


def sync_manager_that_dies_with_parent() -> SyncManager:
    """What `multiprocessing.Manager()` gives, with a server process that gets SIGTERM
    when its parent exits."""
    manager = SyncManager(ctx=multiprocessing.get_context())
    manager.start(initializer=die_with_parent)
    return manager
