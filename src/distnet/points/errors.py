from distnet.kit.errors import Conflict, ValidationFailed


class PointsInsufficient(Conflict):
    code = "points-insufficient"
    title = "Not enough points"


class IdempotencyKeyRequired(ValidationFailed):
    code = "idempotency-key-required"
    title = "An Idempotency-Key header is required"
