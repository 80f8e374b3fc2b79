#!/usr/bin/python3
"""Runs a command under a seccomp allow-list, as systemd's SystemCallFilter= does.

Usage: seccomp-exec.py ALLOWED_SYSCALLS_FILE -- COMMAND [ARGS...]
The file lists one system call name a line. Anything else kills the process (systemd's default
action, SIGSYS: exit 159 from a shell); only the native architecture is allowed
(SystemCallArchitectures=native). Names this kernel or libseccomp does not know are skipped, as
systemd skips them.
"""
import os
import sys

import seccomp

def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != '--':
        sys.exit(__doc__)
    names = [n.strip() for n in open(sys.argv[1]) if n.strip() and not n.startswith('#')]
    f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for name in names:
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a system call on this architecture
    f.load()
    os.execvp(sys.argv[3], sys.argv[3:])

main()
