from distnet.kit.errors import Conflict, DistnetError


class CodeRejected(DistnetError):
    """A wrong, expired or missing code: 422 naming which, with the attempts left."""

    status = 422
    code = "code-rejected"
    title = "The code is not valid"


class CodeWrong(CodeRejected):
    code = "code-wrong"
    title = "The code is wrong"


class CodeExpired(CodeRejected):
    code = "code-expired"
    title = "The code has expired"


class CodeMissing(CodeRejected):
    code = "code-missing"
    title = "No code was sent for this"


class CodeLocked(DistnetError):
    status = 429
    code = "code-locked"
    title = "Too many wrong codes: locked for an hour"


class NoVerifiedContact(Conflict):
    code = "no-verified-contact"
    title = "No verified phone or e-mail to send the code to"
