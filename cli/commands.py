"""The ``sptrain`` sub-commands: name -> (module in cli/, one-line help). Imports nothing, so ``sptrain --help`` and
``sptrain doctor`` work before numpy or torch are installed; only the chosen command's module is imported."""

COMMANDS: dict[str, tuple[str, str]] = {
    "contract": ("contract_cmd", "show the modeld contract profiles"),
    "doctor": ("doctor_cmd", "check Python, torch/CUDA, tinygrad, CARLA and disk"),
    "collect": ("collect_cmd", "simulate driving episodes into Zarr shards"),
    "inspect": ("inspect_cmd", "describe a shard, ONNX model, metadata/tinygrad pickle or checkpoint"),
    "viz": ("viz_cmd", "draw a shard's labels on its frames (PNG)"),
    "train": ("train_cmd", "train the vision model and the diffusion policy"),
    "export": ("export_cmd", "export a checkpoint into modeld's ONNX, tinygrad and metadata files"),
    "install": ("install_cmd", "install exported models into a sunnypilot checkout or model folder"),
    "drive": ("drive_cmd", "closed-loop road tests: a model or a reference driver drives the simulator"),
    "pipeline": ("pipeline_cmd", "collect, train, export, evaluate (and install) in one command"),
    "carla": ("carla_cmd", "start, stop or check CARLA servers"),
}


def help_of(name: str) -> str:
    return COMMANDS[name][1]
