"""Errors a user can cause. Each carries one sentence that says what happened and what to do."""


class QAError(Exception):
    """Base class: the message is shown to the user as it is, without a traceback."""


class IndexNotFound(QAError):
    pass


class IndexInvalid(QAError):
    pass


class IndexBusy(QAError):
    pass


class ModelError(QAError):
    pass


class DocumentError(QAError):
    """A document that cannot be indexed; the message is the reason it is skipped."""


class BadQuestion(QAError):
    pass
