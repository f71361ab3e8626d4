"""Errors a user can act on. The command line prints their message as one line."""


class SweeperError(Exception):
    """Something the user must fix; the message says what, where, and what to do."""


class SpecError(SweeperError):
    """A spec file that cannot be run as written."""


class NoAnswer(SweeperError):
    """A remote location that did not answer in time; a call to it is still waiting in a thread."""


class DataError(SweeperError):
    """A dataset file that is missing, unreadable or not the file it should be."""
