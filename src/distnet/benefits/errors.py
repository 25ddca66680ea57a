from distnet.kit.errors import NotFound, ValidationFailed


class CatalogueInvalid(ValidationFailed):
    code = "benefit-catalogue-invalid"
    title = "The benefit catalogue is not valid"


class BenefitNotFound(NotFound):
    code = "benefit-not-found"
    title = "No such benefit"
