from distnet.kit.errors import Conflict, NotFound


class CardNotFound(NotFound):
    code = "card-not-found"
    title = "Card not found"


class CardCancelled(Conflict):
    code = "card-cancelled"
    title = "The card is cancelled"
