"""Stand-in for modules/infotext_utils.py (A1111 1.7+ / Forge dfdcbab6; generation_parameters_copypaste
before 1.7).

Mirrors: `quote` (values containing a comma, colon or quote are JSON-quoted), the parameter line
of `parse_generation_parameters` ("Key: value, Key: value"), and `get_override_settings(params)`:
every setting whose OptionInfo has `infotext=<Key>` and whose pasted value (cast to the
setting's type) differs from the current one becomes an override (key, setting name, value);
pasting an infotext applies those as override_settings of the next generation.
"""
import json
import re

from modules import shared

re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def quote(text):
    text = str(text)
    if "," not in text and "\n" not in text and ":" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    return json.loads(text)


def parse_generation_parameters(line):
    return {key.strip(): unquote(value.strip()) for key, value in re_param.findall(line)}


def get_override_settings(params, *, skip_fields=None):
    result = []
    mapping = [(info.infotext, key) for key, info in shared.opts.data_labels.items() if info.infotext]
    for param_name, setting_name in mapping:
        if param_name in (skip_fields or {}):
            continue
        value = params.get(param_name, None)
        if value is None:
            continue
        value = shared.opts.cast_value(setting_name, value)
        if value == getattr(shared.opts, setting_name, None):
            continue
        result.append((param_name, setting_name, value))
    return result
