"""Runs ``mlflow server`` with the given arguments, and stops it (with its workers) when the
test process that started it goes away, so a killed or crashed test leaves no server behind.

Usage: serve.py [mlflow server options]

The caller starts this script as the leader of a new process group; the whole group is
killed when the parent disappears or on SIGTERM.
"""

import os
import signal
import subprocess
import sys
import time


def main():
    parent = os.getppid()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", *sys.argv[1:]])

    def stop(*_):
        os.killpg(os.getpgid(0), signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    while server.poll() is None:
        if os.getppid() != parent:
            stop()
        time.sleep(0.5)
    sys.exit(server.returncode)


if __name__ == "__main__":
    main()
