"""Errors a user can act on. The command line prints their message as one line."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """What a library's exception says, as one line for a message: its first line, cut to `limit`
    characters; its type where it says nothing."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


class SweeperError(Exception):
    """Something the user must fix; the message says what, where, and what to do."""


class SpecError(SweeperError):
    """A spec that cannot be run as written: what is wrong (`problem`), with which key (`key`, e.g.
    "batch.labelled"; None: the spec as a whole), in which file (`source`, added where the spec is read).
    Its message is one line: "FILE: KEY: problem"."""

    def __init__(self, problem: str, key=None, source=None):
        super().__init__(problem, key, source)  # all three in args, so that a copy (pickle) keeps them
        self.problem, self.key, self.source = problem, key, source

    def __str__(self) -> str:
        return ": ".join(str(part) for part in (self.source, self.key, self.problem) if part is not None)

    def under(self, parent) -> "SpecError":
        """This error, about a key inside `parent`'s mapping, with its key named from the top (cpu → resources.cpu)."""
        return SpecError(self.problem, parent if self.key is None else f"{parent}.{self.key}", self.source)

    def within(self, source) -> "SpecError":
        """This error naming `source` as its file, unless it names one already."""
        return self if self.source is not None else SpecError(self.problem, self.key, str(source))


class NoResultsYet(SweeperError):
    """A results location with no rows of a table yet: a sweep that has not written them, or not started."""


class NoAnswer(SweeperError):
    """A remote location that did not answer in time; a call to it is still waiting in a thread."""


class DataError(SweeperError):
    """A dataset file that is missing, unreadable or not the file it should be."""


class Interrupted(KeyboardInterrupt):
    """The driver was told to stop (SIGINT, SIGTERM) and stopped: the trials were ended and Ray Tune's state
    saved, so the sweep can be resumed. A KeyboardInterrupt, so that no `except Exception` swallows it."""

    def __init__(self, signum: int, how_to_continue: str = ""):
        super().__init__(signum, how_to_continue)
        self.signum, self.how_to_continue = signum, how_to_continue

    def __str__(self) -> str:
        import signal

        return f"{signal.Signals(self.signum).name}: stopped" + (f"; {self.how_to_continue}" if self.how_to_continue else "")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
