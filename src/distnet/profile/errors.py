from distnet.kit.errors import Conflict


class ConsentRequired(Conflict):
    code = "consent-required"
    title = "This consent is required to use the service"
