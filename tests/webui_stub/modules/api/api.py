"""Stand-in for the scheduler listing of modules/api/api.py (A1111 1.10, Forge dfdcbab6):
GET /sdapi/v1/schedulers returns, for each entry of sd_schedulers.schedulers, its name, label,
aliases, default_rho and need_inner_model."""
from modules import sd_schedulers


def get_schedulers():
    return [
        {
            "name": scheduler.name,
            "label": scheduler.label,
            "aliases": scheduler.aliases,
            "default_rho": scheduler.default_rho,
            "need_inner_model": scheduler.need_inner_model,
        }
        for scheduler in sd_schedulers.schedulers
    ]
