from distnet.kit.errors import Conflict, DistnetError, NotFound


class PayoutRunNotFound(NotFound):
    code = "payout-run-not-found"
    title = "Payout run not found"


class InvalidRunTransition(Conflict):
    code = "payout-run-state"
    title = "The payout run is not in a state that allows this"


class FourEyesRequired(Conflict):
    code = "four-eyes"
    title = "A payout run must be approved by someone other than its creator"


class ResultsRejected(DistnetError):
    status = 422
    code = "payout-results-rejected"
    title = "Payout results rejected; nothing was applied"


class RepaymentExceedsOwed(DistnetError):
    status = 422
    code = "repayment-exceeds-owed"
    title = "The repayment is more than what is owed"


class RepaymentConflict(Conflict):
    code = "repayment-conflict"
    title = "This external_id was recorded with a different repayment"


class EmptyRun(DistnetError):
    status = 422
    code = "empty-run"
    title = "The payout run would have no items"
