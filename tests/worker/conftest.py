from tests.worker.support import handler_log, redis_namespace, redis_server, stub_broker, stub_worker  # noqa: F401
