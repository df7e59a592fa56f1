"""The calling thread's alternate signal stack, kept across OpenVINO's compiled models.

OpenVINO's CPU plugin (2025 and later, `SigAltStackSetup` in its sources) gives each
compiled model a freshly mmapped alternate signal stack: its constructor installs it on the
compiling thread and remembers the previous one, its destructor puts the remembered one back
and unmaps its own. That only works when compiled models die in the reverse order of their
creation. Compile A, compile B, free A, free B: freeing B puts back A's stack, which freeing A
had already unmapped. The thread is then left with an alternate stack that no longer exists,
and the next signal delivered to it on that stack (Python installs every handler with
SA_ONSTACK; torch's DataLoader handles SIGCHLD, so a worker that exits is enough) cannot be
delivered: the kernel kills the process with SIGSEGV (`si_code` SI_KERNEL), no Python
traceback. `make test` died this way in CI, at varying tests after the bench's backend
section compiled two OpenVINO models (found with gdb: the main thread's `sigaltstack`
pointed at an unmapped 11,824-byte region).

`keep_signal_stack()` saves the thread's alternate stack on entry and restores it on exit;
`evitvid.inference.backends` wraps OpenVINO's compilation and the release of its compiled
model in it, so the thread keeps its own stack (Python's faulthandler sizes it for the CPU's
signal frame, AT_MINSIGSTKSZ included) whatever order models are freed in. Linux only, where
OpenVINO does this; elsewhere both functions do nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator
from typing import NamedTuple, Optional

__all__ = ["SignalStack", "signal_stack", "keep_signal_stack"]

_SS_DISABLE = 2  # <bits/sigstack.h>


class _StackT(ctypes.Structure):
    # Linux's stack_t (every architecture glibc supports): pointer, int flags, size_t size
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


class SignalStack(NamedTuple):
    """A thread's alternate signal stack as `sigaltstack` reports it."""
    address: int
    size: int
    flags: int

    @property
    def disabled(self) -> bool:
        return bool(self.flags & _SS_DISABLE)


def _libc() -> Optional[ctypes.CDLL]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def signal_stack() -> Optional[SignalStack]:
    """The calling thread's alternate signal stack; None where it cannot be read (not Linux)."""
    if _LIBC is None:
        return None
    current = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(current)) != 0:
        return None
    return SignalStack(int(current.ss_sp or 0), int(current.ss_size), int(current.ss_flags))


def _set_signal_stack(stack: SignalStack) -> None:
    wanted = _StackT(ctypes.c_void_p(stack.address or None), stack.flags & _SS_DISABLE, stack.size)
    if _LIBC.sigaltstack(ctypes.byref(wanted), None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"sigaltstack could not restore the thread's alternate signal stack {stack}")


@contextlib.contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Run the block, then give the calling thread back the alternate signal stack it had before."""
    saved = signal_stack()
    try:
        yield
    finally:
        if saved is not None and signal_stack() != saved:
            _set_signal_stack(saved)
