"""The two ways a run can fail, with the exit codes of the command line."""


class InputError(ValueError):
    """Invalid input (config, arguments, files): exit code 2, one line on stderr."""

    exit_code = 2


class NumericalFailure(RuntimeError):
    """The computation cannot go on faithfully (NaN, lost resolution): exit code 1."""

    exit_code = 1
