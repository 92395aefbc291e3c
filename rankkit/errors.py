"""The one exception type for user mistakes (bad file, column, argument or option value)."""


class UserError(ValueError):
    """A mistake in what the user gave us. The CLI prints its message as one line and exits 2.

    The message names the file, column, row or argument at fault, so it is actionable on its own.
    """
