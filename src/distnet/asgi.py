"""The serving side: the app of one ``distnet serve`` process (uvicorn's factory,
``distnet.asgi:serve_app``). Apart from ``app.py`` so that the app factory imports no worker code
and the worker side (in-process worker, demo) may import the app factory."""

from __future__ import annotations

import gc

from litestar import Litestar

from distnet.app import create_app
from distnet.kit.logs import configure_logging
from distnet.settings import get_settings
from distnet.worker.inprocess import attach_background


def freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, the app, SQLAlchemy's and Litestar's
    caches: several hundred thousand objects) out of the collector's reach. A full collection
    traversed them all and paused the process for 30-100 ms every few seconds under load, the
    slowest 1% of single orders at 200/s (BENCHMARKS.md); now it walks only what requests made."""
    gc.collect()
    gc.freeze()


def serve_app() -> Litestar:
    """Settings from the environment, with the in-process worker and scheduler when
    ``DISTNET_SERVE_BACKGROUND=1``. With several processes each runs a worker; the scheduler's
    advisory lock keeps one leader."""
    settings = get_settings()
    configure_logging()
    app = create_app(settings)
    app.on_startup.append(freeze_startup_objects)
    if settings.serve.background:
        attach_background(app, settings)
    return app
