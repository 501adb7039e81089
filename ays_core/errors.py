"""The one exception type for problems a user can cause (bad input, bad files, bad folders), and
its kind for a setting a user got wrong, which each front end words with its own names."""


class AYSError(Exception):
    """A problem with something the user handed us. Its message is meant for humans:
    the CLI prints it as one line and exits with status 2, the WebUI prints one console line."""

    def named(self, names):
        """The message for a front end that calls settings by names of its own ({field: name});
        only a SettingError has settings in it."""
        return str(self)


class SettingError(AYSError):
    """One or more settings a user got wrong (RunSettings fields, or parameters such as `steps`).
    `wording(*names)` is the message with `fields` called by those names: str() uses the field
    names (what API clients and library callers write), `named` a front end's own (a CLI flag, a
    form label)."""

    def __init__(self, wording, *fields):
        super().__init__(wording(*fields))
        self.wording = wording
        self.fields = fields

    def named(self, names):
        return self.wording(*(names.get(field, field) for field in self.fields))

    def __reduce__(self):  # the wording is a lambda, which cannot be pickled: a copy keeps the text
        return AYSError, (str(self),)
