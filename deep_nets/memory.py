"""Memory a run will need, bounded from below from its size fields before anything large is allocated, so that a
size no machine holds (`--model_width 1000000000`, labels up to 10**9, a huge npz array) ends in one line naming
the field instead of an allocator's traceback.  Lower bounds only: what is refused certainly does not fit."""
from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from largestep.config import ConfigError

GiB = 2**30


def machine_bytes(device) -> int:
    """The memory of `device`: the GPU's, or this machine's RAM."""
    if getattr(device, "type", device) == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def too_big(what: str, need: int, have: int, fix: str, where: str = "this machine's") -> ConfigError:
    """`what` (its verb included) needs `need` bytes of the `have` there are."""
    return ConfigError(f"{what} at least {need / GiB:,.1f} GiB of memory, more than {where} {have / GiB:,.1f} GiB: "
                       f"{fix}")


def check_npz(path) -> None:
    """Refuse an npz file whose arrays (and the float32/int64 copies made of them) cannot fit in this machine's
    memory, from the arrays' headers alone, before any is read."""
    have, need, largest = machine_bytes("cpu"), 0, None
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(f))
                nbytes = math.prod(shape) * dtype.itemsize
                need += 2 * nbytes  # the array read, then its converted copy
                if largest is None or nbytes > largest[0]:
                    largest = (nbytes, member[:-4], shape, dtype)
    except (OSError, ValueError, zipfile.BadZipFile):
        return  # not an npz file: the loader says so, naming it
    if largest is not None and need > have:
        nbytes, name, shape, dtype = largest
        raise too_big(f"{path}: its arrays ({name}: {' x '.join(f'{d:,}' for d in shape)} {dtype}) would need", need, have,
                      "use a smaller data set, or a machine with more memory")


def check_run(a, data, device) -> None:
    """Refuse the run of flags `a` on `data` when its model, training step, evaluation or data cannot fit on
    `device`, naming the field that asks for the most."""
    have = machine_bytes(device)
    where = "the GPU's" if getattr(device, "type", device) == "cuda" else "this machine's"
    if 4 * 3 * 4 * a.model_width**2 > have:  # every model has >= 4 width x width weight matrices: no need to build it
        raise too_big(f"--model_width {a.model_width:,}: the {a.model} makes the run need", 4 * 3 * 4 * a.model_width**2,
                      have, "lower --model_width", where)
    params, head, activations, blocks = model_sizes(a.model, a.model_width, data.num_classes, data.input_shape)
    copies = 3 + (a.momentum > 0)  # the weights, their average, the gradients, and the momentum buffer
    precision = 2 if a.precision == "bf16" else 4
    n_fixed = min(a.sparsity_examples, len(data.x_train))
    sampled = [min(a.sparsity_neurons, b) for b in blocks]
    terms = {  # bytes -> (what, field, fix)
        "head": (4 * copies * head, f"{data.name}: its labels make {data.num_classes:,} classes, whose output layer makes the run need",
                 "are the labels class indices 0, 1, ..., classes - 1?"),
        "model": (4 * copies * (params - head), f"--model_width {a.model_width:,}: the {a.model} makes the run need",
                  "lower --model_width"),
        "training": (precision * activations * a.batch_size, f"--batch_size {a.batch_size:,}: the training step's "
                     "activations make the run need", "lower --batch_size"),
        "features": (4 * 2 * n_fixed * sum(sampled), f"--sparsity_examples {a.sparsity_examples:,}: the "
                     "features kept for sparsity make the run need", "lower --sparsity_examples"),
        "correlations": (4 * max(sampled) ** 2, f"--sparsity_neurons {a.sparsity_neurons:,}: the "
                         "neurons' correlations make the run need", "lower --sparsity_neurons"),
    }
    if getattr(device, "type", device) == "cuda":  # the data sets move to the GPU
        data_bytes = sum(t.numel() * t.element_size() for t in (data.x_train, data.y_train, data.x_test, data.y_test))
        terms["data"] = (data_bytes, f"{data.name}: the data set on the GPU makes the run need", "use --device cpu, or a smaller set")
    need = sum(size for size, _, _ in terms.values())
    if need > have:
        _, what, fix = max(terms.values(), key=lambda term: term[0])
        raise too_big(what, need, have, fix, where)


def model_sizes(name: str, width: int, classes: int, input_shape) -> tuple[int, int, int, list[int]]:
    """Parameters, those of the output layer, activations per example (every layer's output, what the backward
    pass keeps at least) and the neurons of each of the five feature blocks, from the model built on torch's
    meta device: shapes without storage."""
    import torch

    from deep_nets.models import build_model

    with torch.device("meta"):
        model = build_model(name, width, classes, input_shape)
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, out: outputs.append(out.numel()))
             for m in model.modules() if not list(m.children()) and isinstance(m, (torch.nn.Conv2d, torch.nn.Linear,
                                                                                    torch.nn.BatchNorm2d))]
    with torch.no_grad():
        _, blocks = model(torch.empty((1, *input_shape), device="meta"), features=True)
    for hook in hooks:
        hook.remove()
    params = sum(p.numel() for p in model.parameters())
    head = model.linear.weight.numel() + model.linear.bias.numel()
    return params, head, sum(outputs), [b[0].numel() for b in blocks]
