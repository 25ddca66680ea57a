from distnet.kit.errors import DistnetError, NotFound


class PayoutAccountNotFound(NotFound):
    code = "payout-account-not-found"
    title = "The distributor has no payout account"


class VerificationCodeRequired(DistnetError):
    status = 422
    code = "verification-code-required"
    title = "Changing a payout account needs a one-time code sent to the owner"
