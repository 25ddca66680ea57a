from distnet.kit.errors import NotFound, ValidationFailed


class CommissionNotFound(NotFound):
    code = "commission-not-found"
    title = "Commission not found"


class PlanInvalid(ValidationFailed):
    code = "plan-invalid"
    title = "The commission plan is not valid"
