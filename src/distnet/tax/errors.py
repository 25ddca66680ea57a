from distnet.kit.errors import DistnetError, NotFound


class TaxTableNotFound(NotFound):
    code = "tax-table-not-found"
    title = "No tax table is in force for that month"


class InvalidTaxTable(DistnetError):
    status = 422
    code = "invalid-tax-table"
    title = "The tax table is not valid"
