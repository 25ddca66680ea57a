from distnet.kit.errors import Conflict


class ClosureTransitionRefused(Conflict):
    code = "closure-transition-refused"
    title = "The account cannot move to that closure state"
