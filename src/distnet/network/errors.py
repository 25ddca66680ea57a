from distnet.kit.errors import Conflict, DistnetError, NotFound


class UnknownSponsor(DistnetError):
    status = 422
    code = "unknown-sponsor"
    title = "Unknown sponsor code"


class DistributorNotFound(NotFound):
    code = "distributor-not-found"
    title = "Distributor not found"


class CycleRefused(Conflict):
    code = "network-cycle"
    title = "The move would make a cycle"


class ClosureRefused(Conflict):
    code = "closure-refused"
    title = "The account cannot be closed now"


class DistributorClosed(Conflict):
    code = "distributor-closed"
    title = "The distributor is closed"
