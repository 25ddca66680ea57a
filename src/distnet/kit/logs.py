"""The one logging configuration of every distnet process (serve, worker, scheduler, demo)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries whose INFO lines repeat what distnet logs once, or fire on every periodic run: the
# scheduler's "Running job" every 2 s, dramatiq's "Retrying message" after each webhook failure
# (events/tasks.py logs the failure as one line with its reason).
QUIET = ("apscheduler", "dramatiq.middleware.retries", "httpx")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
