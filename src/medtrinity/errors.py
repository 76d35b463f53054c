"""The two kinds of failure a user sees: a record that fails a stage, and a command that cannot run."""


class StageError(Exception):
    """A record cannot pass a stage. The message is the quarantine reason: say what is wrong, readably."""


class UserError(Exception):
    """A bad command, path, recipe or config: the CLI prints the message as one line and exits non-zero."""
