"""Ends a local Ray session with the build that started it: `python -m medtrinity.pipeline.ray_watchdog TEMP_DIR`.

It waits for EOF on stdin, which the build holds open; a build that exits, or is killed with SIGKILL, closes
it. Ray itself ties only its core processes to the driver: its agents and idle workers linger for about a
minute after a killed driver. Every process of the session holds a log file under the session's own temp
folder (or names the folder on its command line), which is how they are found here, through /proc on Linux.
Then the folder is removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

GRACE_S = 2.0


def session_processes(temp_dir: str, spare: set[int]) -> list[int]:
    """Pids of this user's processes that name `temp_dir` on their command line or hold a file under it."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    prefix, found = temp_dir.rstrip("/") + "/", []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spare:
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            if prefix in cmdline or any(os.readlink(fd).startswith(prefix) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def end_session(temp_dir: str, build: int) -> None:
    spare = {os.getpid(), build}  # the build (if it still runs) holds a Ray log file too
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_processes(temp_dir, spare)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + GRACE_S
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = session_processes(temp_dir, spare)
        if not pids:
            break
    shutil.rmtree(temp_dir, ignore_errors=True)


def main() -> None:
    temp_dir, build = sys.argv[1], os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the build; this waits for it to end
    while sys.stdin.buffer.read(1 << 12):
        pass
    end_session(temp_dir, build)


if __name__ == "__main__":
    main()
