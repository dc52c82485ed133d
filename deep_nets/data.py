"""Data sets for deep_nets: CIFAR-10/100 (official python pickles, checksum-verified), mnist1d, npz, synthetic.

Images stay uint8 (N, C, H, W) and move to the training device once; `batch_images` turns a batch of
indices into float inputs in [0, 1] there, with the random crop (4-pixel zero padding) and horizontal
flip done for the whole batch by indexing, so no per-image Python work happens in the training loop.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from largestep.results import atomic_write

from deep_nets.flags import DATASETS
from deep_nets.memory import check_npz

CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "archive_md5": "c58f30108f718f92721af3b95e74349a",
        "train": ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"],
        "test": ["test_batch"],
        "labels": b"labels",
        "classes": 10,
        "md5": {"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
                "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e"},
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "archive_md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "train": ["train"],
        "test": ["test"],
        "labels": b"fine_labels",
        "classes": 100,
        "md5": {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
    },
}


class DataError(Exception):
    """The data set is missing, corrupt or malformed; the message says what was expected and how to get it."""


@dataclass
class DataSet:
    name: str
    x_train: torch.Tensor  # uint8 images (N, C, H, W) or float inputs
    y_train: torch.Tensor  # int64 labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    digest: str = ""  # of the contents (content_digest): a resumed run refuses a data set changed since it began

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.dtype == torch.uint8 and self.x_train.ndim == 4

    def to(self, device) -> "DataSet":
        move = lambda t: t.to(device)  # noqa: E731
        return DataSet(self.name, move(self.x_train), move(self.y_train), move(self.x_test), move(self.y_test),
                       self.num_classes, self.digest)


def md5sum(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cifar_problem(name: str, data_dir: Path, verify: bool, expected_md5: dict | None) -> str | None:
    spec = CIFAR[name]
    folder = data_dir / spec["folder"]
    expected_md5 = spec["md5"] if expected_md5 is None else expected_md5
    for fname in spec["train"] + spec["test"]:
        path = folder / fname
        if not path.is_file():
            return f"missing file {path}"
        if verify and md5sum(path) != expected_md5[fname]:
            return f"checksum mismatch for {path} (expected MD5 {expected_md5[fname]})"
    return None


def _missing_message(name: str, data_dir: Path, problem: str) -> str:
    spec = CIFAR[name]
    files = ", ".join(spec["train"] + spec["test"])
    return (f"{name} not usable: {problem}.\n  Expected the official python version in {data_dir / spec['folder']}/ "
            f"(files {files}), as extracted from {spec['url']}.\n  Pass --download to fetch and verify it "
            f"(MD5 {spec['archive_md5']}), or --data_dir=DIR where it already lies.")


def download(name: str, data_dir, url: str | None = None, archive_md5: str | None = None) -> Path:
    """Fetch the official archive (or `url`), check its MD5 before extracting anything, extract into data_dir."""
    spec = CIFAR[name]
    url, archive_md5 = url or spec["url"], archive_md5 or spec["archive_md5"]
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".download-", suffix=".tar.gz")
    except OSError as err:
        raise DataError(f"cannot write into --data_dir {data_dir} ({err.strerror}): pass --data_dir=DIR on a "
                        "writable disk with about 0.2 GB free") from err
    os.close(fd)
    try:
        print(f"downloading {url}", flush=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
        except OSError as err:
            raise DataError(f"could not download {url}: {err}") from err
        got = md5sum(tmp)
        if got != archive_md5:
            raise DataError(f"downloaded archive from {url} has MD5 {got}, expected {archive_md5}: "
                            "not extracted, deleted; try again or fetch it by hand")
        # extracted beside the target first, then each whole file moved into place: a full disk or an
        # interrupt leaves no truncated batch file behind
        staging = tempfile.mkdtemp(dir=data_dir, prefix=".extract-")
        try:
            with tarfile.open(tmp, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.name.split("/")[0] == spec["folder"]
                           and (m.isfile() or m.isdir()) and ".." not in m.name.split("/")]
                tar.extractall(staging, members=members)
            (data_dir / spec["folder"]).mkdir(exist_ok=True)
            for f in (Path(staging) / spec["folder"]).iterdir():
                os.replace(f, data_dir / spec["folder"] / f.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise DataError(f"could not store the download in {data_dir} ({err.strerror or err}): free some space "
                        "or pass --data_dir=DIR on another disk; nothing partial was kept") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return data_dir / spec["folder"]


class CifarUnpickler(pickle.Unpickler):
    """Unpickles what the official CIFAR python batches hold and nothing else: dicts, lists, bytes, numbers and
    numpy arrays.  Any other global a pickle names (os.system, a class with a __reduce__ payload) is refused
    before it is looked up, so a crafted batch file cannot run code; this holds with --skip_checksum too."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds "
                                         "(refused unread: only numpy arrays, lists, dicts, bytes and numbers)")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, labels_key: bytes):
    try:
        with open(path, "rb") as f:
            batch = CifarUnpickler(f, encoding="bytes").load()
        x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(batch[labels_key], dtype=np.int64)
    except Exception as err:  # a truncated or foreign file: say which, not a pickle traceback
        raise DataError(f"cannot read {path} as a CIFAR python batch: {err}") from err
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


def load_cifar(name: str, data_dir, download_missing: bool = False, verify: bool = True,
               expected_md5: dict | None = None) -> DataSet:
    spec, data_dir = CIFAR[name], Path(data_dir)
    problem = _cifar_problem(name, data_dir, verify, expected_md5)
    if problem and download_missing:
        download(name, data_dir)
        problem = _cifar_problem(name, data_dir, verify, expected_md5)
    if problem:
        raise DataError(_missing_message(name, data_dir, problem))
    folder = data_dir / spec["folder"]
    parts = {split: [_read_cifar_batch(folder / f, spec["labels"]) for f in spec[split]] for split in ("train", "test")}
    cat = lambda split, k: torch.from_numpy(np.concatenate([p[k] for p in parts[split]]))  # noqa: E731
    return DataSet(name, cat("train", 0), cat("train", 1), cat("test", 0), cat("test", 1), spec["classes"])


def load_mnist1d(data_dir) -> DataSet:
    """MNIST-1D generated locally by the mnist1d package (its default arguments, seed 42), cached as npz."""
    cache = Path(data_dir) / "mnist1d.npz"
    if cache.exists() and not cache.is_file():
        raise DataError(f"the mnist1d cache {cache} is not a file: move it away, or pass --data_dir=DIR")
    if not cache.is_file():
        existing = next(p for p in (cache.parent, *cache.parent.parents) if p.exists())
        if not os.access(existing, os.W_OK):  # refuse before generating, not after
            raise DataError(f"cannot write the mnist1d cache {cache} ({existing} is not writable): pass "
                            "--data_dir=DIR with a few MB free and writable")
        from mnist1d.data import get_dataset_args, make_dataset  # generation only: never its downloader
        state = np.random.get_state()  # make_dataset seeds numpy's global stream; leave it as we found it
        try:
            data = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(state)
        arrays = {"x_train": data["x"], "y_train": data["y"], "x_test": data["x_test"], "y_test": data["y_test"]}
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cache, write)
        except OSError as err:
            raise DataError(f"cannot write the mnist1d cache {cache} ({err.strerror or err}): pass --data_dir=DIR "
                            "with a few MB free and writable") from err
    try:
        return load_npz(cache, name="mnist1d")
    except DataError as err:
        raise DataError(f"{err}; the mnist1d cache is regenerated when missing: delete {cache} and run again") from err


def load_npz(path, name: str | None = None) -> DataSet:
    """x_train, y_train, x_test, y_test; uint8 images as (N, H, W, C) with C in {1, 3} or (N, C, H, W)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such npz file: {path} (expected arrays x_train, y_train, x_test, y_test)")
    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as err:  # truncated, not a zip, pickled objects, a missing array: say which file
        raise DataError(f"cannot read {path}: {type(err).__name__}: {err} (expected an npz file with arrays "
                        "x_train, y_train, x_test, y_test)") from err

    def inputs(k):
        x = arrays[k]
        if x.dtype.kind not in "uif":
            raise DataError(f"{path}: {k} must hold numbers, got dtype {x.dtype}")
        if x.dtype == np.uint8 and x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(x if x.dtype == np.uint8 else x.astype(np.float32)))

    def labels(k):
        y = arrays[k]
        if y.dtype.kind not in "uif" or (y.dtype.kind == "f" and not np.array_equal(y, np.round(y))):
            raise DataError(f"{path}: {k} must hold integer class indices, got dtype {y.dtype}"
                            + (" with fractional values" if y.dtype.kind == "f" else ""))
        return torch.from_numpy(y.astype(np.int64))
    y_train, y_test = labels("y_train"), labels("y_test")
    num_classes = max((int(y.max()) for y in (y_train, y_test) if y.numel()), default=-1) + 1
    return DataSet(name or f"npz:{path}", inputs("x_train"), y_train, inputs("x_test"), y_test, num_classes)


def check_dataset(data: DataSet, source) -> DataSet:
    """Refuse a data set that would reach the model wrong, naming `source` (its file or folder) and the fault:
    empty splits, labels and inputs of different lengths, labels that are not a 1-D array of class indices
    in [0, num_classes), test inputs shaped or typed unlike the training inputs, NaN or infinite inputs."""
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if len(x) == 0 or x.ndim < 2:
            raise DataError(f"{source}: x_{split} must hold at least one example, as an array (N, ...), "
                            f"got shape {tuple(x.shape)}")
        if y.ndim != 1:
            raise DataError(f"{source}: y_{split} must be a 1-D array of class indices, got shape {tuple(y.shape)}"
                            + (" (one-hot? store y.argmax(1))" if y.ndim == 2 else ""))
        if len(y) != len(x):
            raise DataError(f"{source}: {len(x)} examples in x_{split} but {len(y)} labels in y_{split}")
        bad = (y < 0) | (y >= data.num_classes)
        if bad.any():
            raise DataError(f"{source}: y_{split} holds label {int(y[bad][0])} outside [0, {data.num_classes}) "
                            f"(class indices must be 0, 1, ..., {data.num_classes - 1})")
        if x.is_floating_point() and not torch.isfinite(x).all():
            row = int((~torch.isfinite(x.flatten(1))).any(1).nonzero()[0])
            raise DataError(f"{source}: x_{split} holds NaN or infinite values (first in example {row})")
    if data.x_test.shape[1:] != data.x_train.shape[1:] or data.x_test.dtype != data.x_train.dtype:
        raise DataError(f"{source}: test inputs are {data.x_test.dtype} of shape {tuple(data.x_test.shape[1:])} but "
                        f"training inputs {data.x_train.dtype} of shape {tuple(data.x_train.shape[1:])}: "
                        "store both alike")
    return data


def synthetic(n_train: int = 1024, n_test: int = 256, num_classes: int = 10, seed: int = 0) -> DataSet:
    """CIFAR-shaped uint8 images: each class a smooth random colour pattern, randomly shifted, plus noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(num_classes, 3, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(40, 40), mode="bilinear", align_corners=False)

    def draw(n):
        y = torch.randint(num_classes, (n,), generator=g)
        dy, dx = torch.randint(9, (2, n), generator=g)
        rows = (dy[:, None] + torch.arange(32))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(32))[:, None, None, :]
        img = templates[y[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
        img = 0.5 + 0.2 * img + 0.1 * torch.randn(n, 3, 32, 32, generator=g)
        return (img.clamp(0, 1) * 255).round().to(torch.uint8), y
    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return DataSet("synthetic", x_train, y_train, x_test, y_test, num_classes)


def load_dataset(name: str, data_dir="data", download_missing: bool = False, verify: bool = True) -> DataSet:
    """The data set `name`, checked (check_dataset) before anything else sees it, with its content digest."""
    if name in CIFAR:
        data = check_dataset(load_cifar(name, data_dir, download_missing, verify), Path(data_dir) / CIFAR[name]["folder"])
    elif name == "mnist1d":
        data = check_dataset(load_mnist1d(data_dir), Path(data_dir) / "mnist1d.npz")
    elif name == "synthetic":
        data = synthetic()
    elif name.startswith("npz:"):
        data = check_dataset(load_npz(name[4:]), name[4:])
    else:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    data.digest = content_digest(data)
    return data


def content_digest(data: DataSet) -> str:
    """SHA-256 of the arrays as loaded (shapes, types and bytes, in a fixed order): 0.2-0.5 s for CIFAR's
    60,000 images on a CPU core, once per start."""
    digest = hashlib.sha256()
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):
        t = t.contiguous()
        digest.update(f"{t.dtype} {tuple(t.shape)};".encode())
        digest.update(t.numpy().reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def as_inputs(x: torch.Tensor) -> torch.Tensor:
    """Model inputs: uint8 images scaled to [0, 1] (no normalization, as in the paper), floats as they are."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def crop_and_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `pad` and horizontal flip, for a whole batch (B, C, H, W) at once.

    offsets (B, 2) in [0, 2*pad] are the crop's top-left corner in the padded image; flips (B,) bool.
    """
    B, C, H, W = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, 0, None] + torch.arange(H, device=x.device)
    cols = offsets[:, 1, None] + torch.arange(W, device=x.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    return padded[torch.arange(B, device=x.device)[:, None, None, None], torch.arange(C, device=x.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


class TrainStream:
    """Shuffled batches (drop last) of the device-resident training set, resumable; under torchrun each process
    takes its `part` of every global batch.

    All randomness (epoch permutations, crop offsets, flips) comes from one CPU generator whose state,
    with the current permutation and position, is the stream's checkpoint state.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, augment: bool, seed: int,
                 part: slice = slice(None)):
        self.x, self.y, self.batch_size, self.augment, self.part = x, y, batch_size, augment, part
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(len(x), generator=self.generator)
        self.position = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.x) // self.batch_size

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + self.batch_size > len(self.x):
            self.perm = torch.randperm(len(self.x), generator=self.generator)
            self.position = 0
        idx = self.perm[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        if self.augment:  # drawn for the whole global batch, so that every process sees the same stream
            offsets = torch.randint(9, (self.batch_size, 2), generator=self.generator)
            flips = torch.rand(self.batch_size, generator=self.generator) < 0.5
        idx = idx[self.part].to(self.x.device)
        inputs = as_inputs(self.x[idx])
        if self.augment:
            inputs = crop_and_flip(inputs, offsets[self.part].to(self.x.device), flips[self.part].to(self.x.device))
        return inputs, self.y[idx]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm.clone(),
                "position": torch.tensor(self.position)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.position = int(state["position"])
