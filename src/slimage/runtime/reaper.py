"""`python -m slimage.runtime.reaper ROOT ID`: removes a detached `--rm` container once it
exits (Docker's daemon does this; we have no daemon, so a tiny watcher does)."""

from __future__ import annotations

import sys

from slimage.runtime.containers import wait_and_remove

if __name__ == "__main__":
    wait_and_remove(sys.argv[1], sys.argv[2])
