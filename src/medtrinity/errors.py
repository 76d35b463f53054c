"""The two kinds of failure a user sees: a record that fails a stage, and a command that cannot run."""


class StageError(Exception):
    """A record cannot pass a stage. The message is the quarantine reason: say what is wrong, readably."""


class TransientError(StageError):
    """A record failed for a reason that may pass on a later try (a model server unreachable, a timeout, 429/5xx
    after every retry): quarantined with `transient` true, and retried by `build --resume --retry-transient`."""


class UserError(Exception):
    """A bad command, path, recipe or config: the CLI prints the message as one line and exits non-zero."""
