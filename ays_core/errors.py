"""The one exception type for problems a user can cause (bad input, bad files, bad folders)."""


class AYSError(Exception):
    """A problem with something the user handed us. Its message is meant for humans:
    the CLI prints it as one line and exits with status 2, the WebUI prints one console line."""
