"""`ays optimize` flags for latent diffusion models (x0 data, guidance, memory) and --dry-run.
Kept apart from cli/optimize.py, which stays about the search."""


def add_arguments(parser, defaults):
    """Add the flags to `parser`; `defaults`: the RunSettings whose defaults they show."""
    from ..settings import DEFAULT_PROMPT_SAMPLES

    group = parser.add_argument_group(
        "latent diffusion models",
        "For diffusers:PATH models (and the WebUI's AYS tab): where x0 comes from, guidance, memory. "
        "Give --data or --prompt/--prompts-file. Latents are cached (safetensors), so a resumed run "
        "does not encode or draw them again.")
    group.add_argument("--data", metavar="DIR",
                       help="x0 from a folder of images (searched recursively; a .txt beside an image is its "
                            "caption), encoded with the model's VAE")
    group.add_argument("--prompt", action="append", metavar="TEXT",
                       help="data-free: x0 drawn from the model itself for this prompt (repeatable)")
    group.add_argument("--prompts-file", metavar="FILE", help="data-free: prompts, one per line")
    group.add_argument("--data-samples", type=int, metavar="N",
                       help=f"x0 latents to encode or draw (default: every image, at most --samples; "
                            f"data-free: {DEFAULT_PROMPT_SAMPLES})")
    group.add_argument("--data-steps", type=int, default=defaults.data_steps, metavar="N",
                       help=f"steps of the reference sampler (DPM++ 2M, Karras) drawing data-free x0 "
                            f"(default {defaults.data_steps})")
    group.add_argument("--default-caption", default=defaults.default_caption, metavar="TEXT",
                       help="caption of images without a .txt file (default: empty)")
    group.add_argument("--cfg-scale", type=float, default=defaults.cfg_scale, metavar="S",
                       help=f"classifier-free guidance scale the schedule is made for (default {defaults.cfg_scale:g}, "
                            "the WebUI's; 1 turns guidance off)")
    group.add_argument("--negative-prompt", default=defaults.negative_prompt, metavar="TEXT",
                       help="negative prompt (default: empty)")
    group.add_argument("--resolution", type=int, metavar="PX", help="image side in pixels (default: the model's native)")
    group.add_argument("--max-memory", type=float, metavar="GB",
                       help="memory budget on the device (default: the GPU's free memory; 12 GiB where unknown)")
    group.add_argument("--batch-size", type=int, metavar="ROWS",
                       help="UNet rows per forward (default: the most that fit the memory budget)")
    group.add_argument("--cache-dir", metavar="DIR", help="latent cache folder (default: $AYS_CACHE, else ays/latents in your per-user cache folder, e.g. ~/.cache/ays/latents)")
    group.add_argument("--dry-run", action="store_true",
                       help="print the denoiser evaluations, memory and time the run would take, then exit "
                            "(loads no weights; arch:sd15, arch:sd2, arch:sdxl describe those models)")
