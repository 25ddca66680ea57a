from distnet.kit.errors import NotFound, ValidationFailed


class SettlementRunNotFound(NotFound):
    code = "settlement-run-not-found"
    title = "Settlement run not found"


class AsOfInFuture(ValidationFailed):
    code = "as-of-in-future"
    title = "Settlement cannot run ahead of time"
