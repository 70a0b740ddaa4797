"""Worker processes that end with their parent.

A process pool's workers wait on a pipe from the driver; if the driver is killed
(``kill -9``) they would wait forever. :func:`exit_with_parent`, used as the pool's
initializer, starts a daemon thread in each worker that ends it once its parent is gone.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["exit_with_parent"]

#: Seconds between two checks of the parent process.
POLL_SECONDS = 0.5


def exit_with_parent() -> None:
    """Pool initializer: end this worker when the process that started it has died."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            if os.getppid() != parent:  # re-parented: the driver is gone
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
