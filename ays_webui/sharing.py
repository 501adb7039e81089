"""Pulls from the remote registry URL (ays_core.share) into the first registry folder searched:
the "Pull now" button of Settings > AYS, and the optional pull when the WebUI starts."""
import sys

from ays_core.share import pull_in_background, pull_summary

from .adapter import ADAPTER
from .common import OPT_PULL_AT_START, OPT_REMOTE, option, roots


def remote_url():
    return str(option(OPT_REMOTE, "") or "").strip()


def pull_now():
    """Pull from the saved remote registry URL; the outcome, success or failure, is one console
    line (returned too, for the button's notice)."""
    url = remote_url()
    if url:
        line = pull_summary(url, roots())
        ADAPTER.selector.invalidate()
    else:
        line = "AYS: no remote registry URL to pull from (Settings > AYS; apply settings first)"
    print(line, file=sys.stderr)
    return line


def pull_button(label=None, value=None, elem_id=None, **_component_args):
    """The "Pull now" setting's component. The settings page calls every component with label
    and value; a Gradio 4 Button takes no label, so the value is its text."""
    import gradio as gr

    def clicked():
        line = pull_now()
        notice = getattr(gr, "Info", None)  # a toast, Gradio 3.40+
        if notice is not None:
            notice(line)

    button = gr.Button(value=value or label, elem_id=elem_id)
    button.click(fn=clicked, inputs=[], outputs=[])
    return button


def pull_at_start(_demo, _app):
    """Optional pull when the WebUI starts: on a background thread, so start-up never waits."""
    url = remote_url()
    if option(OPT_PULL_AT_START, False) and url:
        pull_in_background(url, roots(), log=log_pull)


def log_pull(line):
    print(line, file=sys.stderr)
    ADAPTER.selector.invalidate()
