"""What the WebUI's loaded model is, read from the attributes AUTOMATIC1111 and Forge put on
`shared.sd_model`: registry family, prediction type, checkpoint hashes, the range of its noise
table. Duck typing only: nothing here imports a WebUI, so any object with those attributes (a
test double included) can be described.
"""
from .selection import ModelInfo

# Forge's predictor.prediction_type -> the registry's model.prediction
FORGE_PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "edm": "edm", "const": "flow"}


def hex_or_none(value, length):
    value = str(value or "").lower()
    return value if len(value) == length and all(c in "0123456789abcdef" for c in value) else None


def forge_predictor(sd_model):
    """Forge's sd_model.forge_objects.unet.model.predictor (None in A1111)."""
    unet = getattr(getattr(sd_model, "forge_objects", None), "unet", None)
    return getattr(getattr(unet, "model", None), "predictor", None)


def model_prediction(sd_model):
    predictor = forge_predictor(sd_model)
    if predictor is not None:
        kind = getattr(predictor, "prediction_type", None)
        return FORGE_PREDICTIONS.get(kind, kind)
    return getattr(sd_model, "parameterization", None)  # A1111: 'eps' or 'v'


def model_family(sd_model, prediction):
    if getattr(sd_model, "is_sdxl", False):
        return "sdxl"
    if getattr(sd_model, "is_sd2", False):
        return "sd2-v" if prediction == "v" else "sd2"
    if getattr(sd_model, "is_sd3", False):
        return "sd3"
    is_sd1 = getattr(sd_model, "is_sd1", None)
    if is_sd1 or (is_sd1 is None and getattr(sd_model, "is_sd2", None) is False):
        return "sd15"  # A1111 before 1.5 had no is_sd1 flag: not SD2 then meant SD1
    if getattr(sd_model, "forge_objects", None) is not None:
        return type(sd_model).__name__.lower()  # Forge's Flux, Chroma, ...: named for the warning
    return None


def describe_model(sd_model):
    """The selection.ModelInfo of a loaded WebUI model (unknown fields None)."""
    prediction = model_prediction(sd_model)
    info = getattr(sd_model, "sd_checkpoint_info", None)
    return ModelInfo(family=model_family(sd_model, prediction), prediction=prediction,
                     sha256=hex_or_none(getattr(info, "sha256", None), 64),
                     shorthash=hex_or_none(getattr(info, "shorthash", None), 10),
                     name=getattr(info, "name", None))


def model_sigma_range(sd_model):
    """(sigma_min, sigma_max) of the model's noise table, or None when it cannot be read."""
    table = getattr(forge_predictor(sd_model), "sigmas", None)
    if table is None and getattr(sd_model, "alphas_cumprod", None) is not None:
        alphas = sd_model.alphas_cumprod.double()
        table = ((1 - alphas) / alphas).sqrt()
    return None if table is None else (float(table.min()), float(table.max()))
