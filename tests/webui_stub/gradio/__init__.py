"""Stand-in for the few gradio component classes the extension names in its settings
(gr.Textbox, gr.Dropdown, gr.Checkbox). Components only record their keyword arguments."""


class Component:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class Textbox(Component):
    pass


class Dropdown(Component):
    pass


class Checkbox(Component):
    pass


# Added for the AYS tab (scripts/ays_tab.py): layout containers, the inputs and outputs it
# uses, Button.click and Blocks.load (with Gradio 3.41's `every=`), recorded rather than run.

class _Positional(Component):
    def __init__(self, *args, **kwargs):
        super().__init__(**kwargs)
        self.args = args


class _Container(_Positional):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Blocks(_Container):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loads = []

    def load(self, fn, inputs=None, outputs=None, every=None):
        self.loads.append((fn, inputs or [], outputs or [], every))


class Row(_Container):
    pass


class Column(_Container):
    pass


class Button(_Positional):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clicks = []

    def click(self, fn, inputs=None, outputs=None):
        self.clicks.append((fn, inputs or [], outputs or []))


class Markdown(_Positional):
    pass


class Radio(_Positional):
    pass


class Slider(_Positional):
    pass


class Number(_Positional):
    pass


class Plot(_Positional):
    pass


class Image(_Positional):
    pass
