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
