"""Stand-in for Forge's backend/memory_management.py (Forge dfdcbab6): load_models_gpu(models,
memory_required=0, hard_memory_preservation=0) puts the given patchers' models on the compute
device (here: records the call)."""
loaded = []


def load_models_gpu(models, memory_required=0, hard_memory_preservation=0):
    loaded.append(list(models))
