"""Stand-in for modules/shared.py + modules/options.py (A1111 1.10, Forge dfdcbab6).

Mirrors: `OptionInfo(default, label, component, component_args, onchange, section, refresh,
comment_before, comment_after, infotext, restrict_api, category_id)`, `options_section`,
`opts.add_option(key, info)` (adds the default to opts.data unless already set), attribute access
`opts.<key>`, `opts.set` (KeyError for a key no OptionInfo was added for, which is what
override_settings hit; with is_api=True a restrict_api setting is left unchanged),
`opts.cast_value` (casts by the type of the default), and the module globals `opts`, `sd_model`,
`cmd_opts`, `restricted_opts`.
"""
import types


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None,
                 section=None, refresh=None, comment_before="", comment_after="", infotext=None,
                 restrict_api=False, category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.refresh = refresh
        self.infotext = infotext
        self.restrict_api = restrict_api
        self.category_id = category_id
        self.do_not_save = False

    def info(self, text):
        self.comment_after = text
        return self

    def needs_reload_ui(self):
        return self


def options_section(section_identifier, options_dict):
    for info in options_dict.values():
        info.section = section_identifier[0:2]
    return options_dict


class Options:
    def __init__(self, data_labels):
        object.__setattr__(self, "data_labels", dict(data_labels))
        object.__setattr__(self, "data", {k: v.default for k, v in data_labels.items()})

    def __getattr__(self, key):
        data = object.__getattribute__(self, "data")
        if key in data:
            return data[key]
        labels = object.__getattribute__(self, "data_labels")
        if key in labels:
            return labels[key].default
        raise AttributeError(key)

    def __setattr__(self, key, value):
        self.data[key] = value

    def set(self, key, value, is_api=False, run_callbacks=True):
        if self.data.get(key, None) == value:
            return False
        if self.data_labels[key].restrict_api and is_api:  # an unknown key raises KeyError, as in the WebUI
            return False
        self.data[key] = value
        return True

    def add_option(self, key, info):
        self.data_labels[key] = info
        if key not in self.data and not info.do_not_save:
            self.data[key] = info.default

    def cast_value(self, key, value):
        default = self.data_labels[key].default if key in self.data_labels else None
        if value is None or default is None or isinstance(value, type(default)):
            return value
        if isinstance(default, bool):
            return value in (True, "True", "true", "1")
        return type(default)(value)


def builtin_options():
    """The built-in settings the sampling code reads (shared_options.py, 'sampler-params')."""
    return {
        "sigma_min": OptionInfo(0.0, "sigma min", infotext="Schedule min sigma"),
        "sigma_max": OptionInfo(0.0, "sigma max", infotext="Schedule max sigma"),
        "rho": OptionInfo(0.0, "rho", infotext="Schedule rho"),
        "always_discard_next_to_last_sigma": OptionInfo(False, "Always discard next-to-last sigma",
                                                        infotext="Discard penultimate sigma"),
        "img2img_fix_steps": OptionInfo(False, "With img2img, do exactly the amount of steps the slider specifies."),
        "use_old_karras_scheduler_sigmas": OptionInfo(False, "Use old karras scheduler sigmas (0.1 to 10)."),
        "hide_samplers": OptionInfo([], "Hide samplers in user interface"),
        "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip", infotext="Clip skip"),
    }


opts = Options(builtin_options())
sd_model = None
device = "cpu"
# --api, --nowebui, --api-auth ("user:pass[,user:pass]"), --hide-ui-dir-config
cmd_opts = types.SimpleNamespace(api=False, nowebui=False, api_auth=None, hide_ui_dir_config=False)
restricted_opts = {"outdir_samples", "outdir_txt2img_samples"}  # settings naming server folders (shared_init)


class State:
    """Stand-in for modules/shared_state.State (A1111 1.10): what the progress bar and the
    Interrupt button read and write; begin() clears `interrupted`, end() clears the job."""

    def __init__(self):
        self.interrupted = False
        self.job = ""
        self.textinfo = None
        self.sampling_step = 0
        self.sampling_steps = 0
        self.jobs_run = []

    def interrupt(self):
        self.interrupted = True

    def begin(self, job="(unknown)"):
        self.interrupted = False
        self.job = job
        self.jobs_run.append(job)

    def end(self):
        self.job = ""


state = State()
