"""Loading generators trained with the reference code: pytorch-CycleGAN-and-pix2pix
(``latest_net_G.pth``, ``latest_net_G_A.pth``: U-Net or ResNet) and pix2pixHD / Everybody Dance Now
(``latest_net_G.pth``: global generator or local enhancer; ``latest_net_Gface.pth`` with arch="face").

Those files are bare state dicts. Our modules are nested like the reference ones, so the keys are
the same; the architecture is read off the keys and shapes:

* U-Net (pix2pix): ``model.model.0`` (outermost down-conv: ngf, in_channels), levels nested as
  ``model.model.1.model.3.model.3...`` (depth), ``model.model.3`` (outermost up-conv: out_channels).
* ResNet (CycleGAN) / pix2pixHD global: ``model.1`` (7x7 conv), stride-2 convs, ``model.K.conv_block``
  residual blocks, transposed convs, final 7x7 conv. 2 downsamplings -> resnet_*, otherwise global.
* Local enhancer: ``model.N`` (global trunk, no final conv), ``model{n}_1`` / ``model{n}_2``.
* Norm: BatchNorm layers have weight/bias/running stats; the reference InstanceNorm has no
  parameters, and its convs have biases (pytorch-CycleGAN-and-pix2pix drops conv biases before a
  BatchNorm; pix2pixHD keeps them everywhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .registry import GENERATORS, build_generator

_INSTANCE_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_state_dict(path_or_state_dict: str | Path | Mapping[str, torch.Tensor]) -> tuple[dict, str]:
    """Load a bare state dict (``torch.load(weights_only=True)``) and strip DataParallel's
    ``module.`` prefixes. Returns (state dict, a name for messages)."""
    if isinstance(path_or_state_dict, Mapping):
        sd, name = dict(path_or_state_dict), "The given state dict"
    else:
        path = Path(path_or_state_dict)
        name = str(path)
        if not path.is_file():
            raise UserError(f"{path} does not exist or is not a file.")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle/zip errors of all kinds: the file is not a checkpoint
            raise UserError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}).") from e
        if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
            sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{name} is not a state dict of tensors (a reference generator checkpoint).")
    return {k.removeprefix("module."): v for k, v in sd.items()}, name


def drop_instance_norm_stats(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove running statistics of non-affine InstanceNorm layers.

    pytorch-CycleGAN-and-pix2pix briefly built InstanceNorm with track_running_stats=True; models
    saved then carry running_mean/var (and num_batches_tracked) without a weight. The reference code
    deletes them when loading and normalises per instance, and so do we.
    """
    prefixes = {k.rsplit(".", 1)[0] for k in sd if k.endswith(".running_mean")}
    drop = {f"{p}.{s}" for p in prefixes if f"{p}.weight" not in sd for s in _INSTANCE_STATS}
    return {k: v for k, v in sd.items() if k not in drop}


def _top_indices(sd: Mapping[str, Any], prefix: str) -> set[int]:
    """Integer child indices directly under ``prefix`` (e.g. 'model.' -> {1, 4, 10, ...})."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(m.group(1)) for k in sd if (m := pattern.match(k))}


def _norm_of(sd: Mapping[str, Any], first_conv: str) -> str:
    if any(k.endswith(".running_mean") for k in sd):
        return "batch"
    return "instance" if f"{first_conv}.bias" in sd else "none"


def _infer_resnet_trunk(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """in_channels, ngf, n_downsample, n_blocks and dropout (in the blocks) of a ``model.N`` ResNet trunk."""
    first = sd.get(f"{prefix}1.weight")
    if first is None or first.ndim != 4 or first.shape[-1] != 7:
        raise ValueError(f"no 7x7 input conv at {prefix}1")
    indices = _top_indices(sd, prefix)
    blocks = sorted(i for i in indices if f"{prefix}{i}.conv_block.1.weight" in sd)
    # 3x3 (transposed) convs outside the blocks: the downsamplings, then as many upsamplings.
    weights = {i: sd.get(f"{prefix}{i}.weight") for i in indices}
    resamplers = [i for i, w in weights.items() if w is not None and w.ndim == 4 and w.shape[-1] == 3]
    n_down = sum(1 for i in resamplers if i < blocks[0]) if blocks else len(resamplers) // 2
    dropout = bool(blocks) and _block_has_dropout(sd, f"{prefix}{blocks[0]}")
    return {"in_channels": int(first.shape[1]), "ngf": int(first.shape[0]), "n_downsample": n_down,
            "n_blocks": len(blocks), "dropout": dropout}


def _block_has_dropout(sd: Mapping[str, Any], block: str) -> bool:
    """A Dropout (no keys) after the first ReLU shifts the second conv from index 5 to 6."""
    second = sd.get(f"{block}.conv_block.6.weight")
    return second is not None and second.ndim == 4


def infer_generator_config(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Read the build_generator keywords (with "arch") off a reference state dict's keys and shapes.

    Raises UserError when the layout is none of U-Net, ResNet / global, or local enhancer.
    """
    try:
        if "model.model.0.weight" in sd:  # U-Net
            first = sd["model.model.0.weight"]
            n_downs, prefix = 1, "model.model.1"  # count the nested levels' down-convs
            while f"{prefix}.model.1.weight" in sd:
                n_downs += 1
                prefix += ".model.3"
            arch = {7: "unet_128", 8: "unet_256"}.get(n_downs, "unet_256")
            return {"arch": arch, "in_channels": int(first.shape[1]),
                    "out_channels": int(sd["model.model.3.weight"].shape[1]), "ngf": int(first.shape[0]),
                    "norm": _norm_of(sd, "model.model.0"), "n_downs": n_downs}
        if "model1_1.1.weight" in sd:  # local enhancer
            n_local = max(int(m.group(1)) for k in sd if (m := re.match(r"model(\d+)_1\.", k)))
            trunk = _infer_resnet_trunk(sd, "model.")
            ngf = int(sd[f"model{n_local}_1.1.weight"].shape[0])
            if trunk["ngf"] != ngf * 2**n_local:
                raise ValueError(f"global branch width {trunk['ngf']} is not {ngf} x 2^{n_local}")
            blocks_local = {i for i in _top_indices(sd, "model1_2.") if f"model1_2.{i}.conv_block.1.weight" in sd}
            last = f"model{n_local}_2.{len(blocks_local) + 4}.weight"
            return {"arch": "local", "in_channels": trunk["in_channels"],
                    "out_channels": int(sd[last].shape[0]), "ngf": ngf,
                    "n_downsample": trunk["n_downsample"], "n_blocks": trunk["n_blocks"],
                    "n_local_enhancers": n_local, "n_blocks_local": len(blocks_local),
                    "norm": _norm_of(sd, "model.1")}
        if "model.1.weight" in sd:  # ResNet (CycleGAN) or pix2pixHD global
            trunk = _infer_resnet_trunk(sd, "model.")
            out_channels = int(sd[f"model.{max(_top_indices(sd, 'model.'))}.weight"].shape[0])
            norm = _norm_of(sd, "model.1")
            config = {"in_channels": trunk["in_channels"], "out_channels": out_channels, "ngf": trunk["ngf"],
                      "n_blocks": trunk["n_blocks"], "norm": norm}
            # pix2pixHD keeps conv biases before BatchNorm; pytorch-CycleGAN-and-pix2pix does not.
            pix2pixhd_batch = norm == "batch" and "model.1.bias" in sd
            if trunk["n_downsample"] == 2 and not pix2pixhd_batch:
                arch = "resnet_6blocks" if trunk["n_blocks"] == 6 else "resnet_9blocks"
                return {"arch": arch, **config, "dropout": trunk["dropout"]}
            return {"arch": "global", **config, "n_downsample": trunk["n_downsample"]}
    except (KeyError, ValueError, IndexError) as e:
        raise UserError(f"Cannot tell the generator architecture from the state dict: {e}.") from e
    raise UserError("Cannot tell the generator architecture from the state dict: it is neither a "
                    "pix2pix U-Net, a CycleGAN ResNet, nor a pix2pixHD global/local generator (pass arch=).")


def _preview(keys: list[str], n: int = 4) -> str:
    more = f" (and {len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_state_dict_strict(model: nn.Module, sd: Mapping[str, torch.Tensor], name: str,
                           zero_missing_biases: bool = False, target: str | None = None,
                           assign: bool = False) -> None:
    """Load ``sd`` into ``model`` with every key used and every shape matched, else raise UserError
    naming the first few unexpected / missing / mismatched keys.

    Missing BatchNorm ``num_batches_tracked`` counters (files from old PyTorch versions) are set to 0.
    With ``zero_missing_biases`` a missing conv bias whose weight is present is set to 0: the
    reference builds convs without biases when there is no norm layer, ours have zero biases then.
    ``assign=True`` makes the module use the given tensors (for a module built on the meta device).
    """
    own = model.state_dict()
    sd = dict(sd)
    for key, value in own.items():
        if key in sd:
            continue
        owner = key.rsplit(".", 1)[0]
        if key.endswith(".num_batches_tracked") and f"{owner}.running_mean" in sd:
            sd[key] = torch.zeros(value.shape, dtype=value.dtype)
        elif zero_missing_biases and key.endswith(".bias") and f"{owner}.weight" in sd:
            sd[key] = torch.zeros(value.shape, dtype=value.dtype)
    unexpected = sorted(set(sd) - set(own))
    missing = sorted(set(own) - set(sd))
    mismatched = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in sd and sd[k].shape != own[k].shape]
    problems = []
    if unexpected:
        problems.append(f"unexpected keys {_preview(unexpected)}")
    if missing:
        problems.append(f"missing keys {_preview(missing)}")
    if mismatched:
        problems.append(f"shape mismatches (file vs model) {_preview(mismatched)}")
    if problems:
        if target is None:
            target = f"a {getattr(model, 'config', {}).get('arch', type(model).__name__)} generator"
        raise UserError(f"{name} does not match {target}: {'; '.join(problems)}.")
    model.load_state_dict(sd, strict=True, assign=assign)


def _float32_tensors(sd: Mapping[str, torch.Tensor], copy: bool) -> dict[str, torch.Tensor]:
    """Floating tensors as float32 (the model's dtype); copied when the caller still holds them, so
    the loaded model never shares memory with someone else's tensors."""
    out = {}
    for key, value in sd.items():
        value = value.detach()
        if value.is_floating_point():
            value = value.float()
        out[key] = value.clone() if copy else value
    return out


def load_reference_generator(path_or_state_dict: str | Path | Mapping[str, torch.Tensor], arch: str | None = None,
                             **kw: Any) -> nn.Module:
    """Load a pytorch-CycleGAN-and-pix2pix or pix2pixHD / Everybody Dance Now generator.

    The architecture and its settings (U-Net depth, ngf, norm, residual blocks, downsamplings,
    enhancers, channels) are inferred from the keys and shapes; ``arch`` and build_generator
    keywords in ``kw`` override them (e.g. ``arch="face"`` for an Everybody Dance Now face
    generator, whose keys look like a global generator's). The load is strict (see
    :func:`load_state_dict_strict`). Returns the module in eval mode.

    Note: pytorch-CycleGAN-and-pix2pix's test script runs models in train mode unless ``--eval``
    is given (BatchNorm with batch statistics, dropout active); call ``.train()`` on the result to
    reproduce that.
    """
    from_file = not isinstance(path_or_state_dict, Mapping)
    sd, name = read_state_dict(path_or_state_dict)
    sd = drop_instance_norm_stats(sd)
    sd = _float32_tensors(sd, copy=not from_file)
    if arch is not None and arch not in GENERATORS:
        raise UserError(f"Unknown generator architecture {arch!r}; choose one of: {', '.join(GENERATORS)}.")
    try:
        config = infer_generator_config(sd)
    except UserError as e:
        if arch is None:
            raise UserError(f"{name}: {e}") from e
        config = {}  # rely on the explicit arch and keywords; the strict load says what does not fit
    config.update({"arch": arch or config["arch"]}, **{k: v for k, v in kw.items() if v is not None})
    # Built on the meta device, the model takes the loaded tensors over: no second copy of a
    # 180M-parameter network and no time spent on an initialisation that is overwritten anyway.
    with torch.device("meta"):
        model = build_generator(**config, init=None)
    # The only conv biases a reference file can lack are those of no-norm networks (see conv_bias).
    load_state_dict_strict(model, sd, name, zero_missing_biases=model.config.get("norm") == "none", assign=True)
    return model.eval()


def load_global_into_local(local_g: nn.Module, global_g: nn.Module | str | Path | Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy a trained global generator (module, state dict or file) into a local enhancer's global
    branch ``local_g.model``, dropping the global's final [pad, conv, Tanh] as pix2pixHD does.

    The global must have the branch's layout (in_channels, ngf = local ngf x 2^n_local_enhancers,
    n_downsample, n_blocks, norm); otherwise raises UserError naming the mismatched keys. Returns
    ``local_g``.
    """
    if not hasattr(local_g, "model1_1"):
        raise UserError(f"load_global_into_local needs a local enhancer, got {type(local_g).__name__}.")
    if isinstance(global_g, nn.Module):
        sd, name = {k.removeprefix("module."): v for k, v in global_g.state_dict().items()}, "The global generator"
    else:
        sd, name = read_state_dict(global_g)
    depth = len(local_g.model)
    branch = {}
    for key, value in sd.items():
        m = re.match(r"model\.(\d+)\.(.+)", key)
        if m is None:
            branch[key] = value  # foreign key: reported as unexpected below
        elif int(m.group(1)) < depth:
            branch[f"{m.group(1)}.{m.group(2)}"] = value
    load_state_dict_strict(local_g.model, branch, name, target="the local enhancer's global branch")
    return local_g
