"""The one error type raised for bad input at robustscale's boundaries."""


class RobustscaleError(ValueError):
    """Bad input: the message is one line naming the file/field and what was expected.

    The CLI prints it as `error: <message>` on stderr and exits with code 2.
    """
