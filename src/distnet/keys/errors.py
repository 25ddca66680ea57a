from distnet.kit.errors import NotFound


class KeyNotFound(NotFound):
    code = "key-not-found"
    title = "No live API key of a distributor"
