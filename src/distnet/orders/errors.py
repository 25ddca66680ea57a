from distnet.kit.errors import Conflict, DistnetError, Forbidden, NotFound


class OrderNotFound(NotFound):
    code = "order-not-found"
    title = "Order not found"


class CardFrozen(Conflict):
    code = "card-frozen"
    title = "The card is frozen (reported lost)"


class CardSuspended(Forbidden):
    """A violation hold is active on the card: selling is refused; ``extra.hold`` names it."""

    code = "card-suspended"
    title = "The card is suspended"


class MaintenanceInProgress(DistnetError):
    status = 503
    code = "maintenance-in-progress"
    title = "The card is suspended for system maintenance"


class SellerClosed(Conflict):
    code = "distributor-closed"
    title = "The selling distributor's account is closed"


class RefundExceedsRemaining(DistnetError):
    status = 422
    code = "refund-exceeds-remaining"
    title = "The refund is larger than what remains of the order"


class OrderFullyRefunded(Conflict):
    code = "order-fully-refunded"
    title = "The order is already fully refunded"
