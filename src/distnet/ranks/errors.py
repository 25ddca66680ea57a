from distnet.kit.errors import ValidationFailed


class LadderInvalid(ValidationFailed):
    code = "rank-ladder-invalid"
    title = "The rank ladder is not valid"
