"""Stand-in for the checkpoint description in modules/sd_models.py (A1111 1.10, Forge dfdcbab6).

Mirrors `CheckpointInfo` as far as the extension reads it: `filename`, `name`, `sha256` (64 hex,
or None until hashed) and `shorthash` (its first 10 hex digits); the loaded model carries it as
`shared.sd_model.sd_checkpoint_info`.
"""


class CheckpointInfo:
    def __init__(self, filename, sha256=None):
        self.filename = filename
        self.name = filename
        self.sha256 = sha256
        self.shorthash = sha256[0:10] if sha256 else None
