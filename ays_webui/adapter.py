"""The schedule the loaded model gets: ays_core chooses the stored schedule for the checkpoint
(ays_core.selection) and resamples it (ays_core.interp); this module knows where the WebUI keeps
the model, the settings and the generation in progress, and writes the infotext."""
from ays_core.errors import AYSError
from ays_core.selection import ModelInfo, Selector, builtin_schedule, normalize_pin
from ays_core.webui_model import describe_model
from modules import shared

from .common import (INFOTEXT_A1111, INFOTEXT_HIRES_SCHEDULE, INFOTEXT_SCHEDULE, OPT_A1111, OPT_HIRES_PIN, OPT_PIN,
                     option, own_registry, roots, warn)


class Adapter:
    """Chooses and resamples schedules for the WebUI; remembers the generation in progress so
    the scheduler function (which only gets n and the range) can write the infotext."""

    def __init__(self):
        self.selector = Selector()
        self.active_p = None

    def convention(self):
        return "a1111" if option(OPT_A1111, False) else "ays"

    def pin(self, p=None):
        """The pinned schedule for this pass: the hires pin in a hires pass when one is set
        (restored by pasting "Hires AYS schedule"), else the pin."""
        hires_pin = normalize_pin(option(OPT_HIRES_PIN, "")) if getattr(p, "is_hr_pass", False) else None
        return hires_pin or normalize_pin(option(OPT_PIN, ""))

    def choice(self, p=None):
        searched = roots()
        for root in self.selector.missing_roots(searched, optional=[own_registry()]):
            warn(f"registry folder {root} is missing or unreadable; skipping it")
        choice = self.selector.choose(searched, describe_model(shared.sd_model), self.pin(p))
        if choice.warning:
            warn(choice.warning)
        return choice

    def sigmas(self, n, sigma_min, sigma_max, denoise=None, p=None):
        """(choice, convention, numpy sigmas) for an n-step request over [sigma_min, sigma_max]
        (p: the generation, whose hires pass may have its own pin)."""
        choice = self.choice(p)
        convention = self.convention()
        sigmas = choice.schedule.resample(n, convention=convention, sigma_min=sigma_min, sigma_max=sigma_max,
                                          denoise=denoise)
        return choice, convention, sigmas

    def begin(self, p):
        """A generation starts. The XYZ grid runs its cells on shallow copies of one p that share
        extra_generation_params, so entries from an earlier cell are dropped here."""
        self.active_p = p
        for key in (INFOTEXT_SCHEDULE, INFOTEXT_HIRES_SCHEDULE, INFOTEXT_A1111):
            p.extra_generation_params.pop(key, None)

    def end(self, p):
        if self.active_p is p:
            self.active_p = None

    def note_in_infotext(self, p, ref, convention):
        if p is None:
            return
        params = p.extra_generation_params
        first_pass_ref = params.get(INFOTEXT_SCHEDULE)
        if getattr(p, "is_hr_pass", False) and first_pass_ref is not None:
            if first_pass_ref != ref:
                params[INFOTEXT_HIRES_SCHEDULE] = ref
        else:
            params[INFOTEXT_SCHEDULE] = ref
        if convention == "a1111":
            params[INFOTEXT_A1111] = True

    def torch_sigmas(self, n, sigma_min, sigma_max, device, inner_model=None, p=None):
        """What a WebUI scheduler returns: n + 1 float32 sigmas on `device`. Never raises: on any
        problem the model's own default schedule (else the built-in SD1.5 one) is used and the
        problem printed once."""
        import torch

        p = p or self.active_p
        try:
            choice, convention, sigmas = self.sigmas(n, sigma_min, sigma_max, p=p)
            self.note_in_infotext(p, choice.ref, convention)
            return torch.tensor(sigmas, dtype=torch.float32).to(device)
        except Exception as exc:  # a generation must never fail because of AYS
            reason = str(exc) if isinstance(exc, AYSError) else f"{type(exc).__name__}: {exc}"
            warn(f"{reason}; using the model's default schedule instead")
            if inner_model is not None:
                return inner_model.get_sigmas(n).to(device)
            return torch.tensor(builtin_schedule(ModelInfo()).resample(max(int(n), 1)), dtype=torch.float32).to(device)


ADAPTER = Adapter()  # one per process: "Reload UI" keeps it (and its cache)
