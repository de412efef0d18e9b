"""MNIST for the book: md5-checked IDX loading, the [-1, 1] pixel convention, a fixed held-out split,
and an optional download of the full MNIST; every MNIST chapter of the book starts here.

The repository ships the 10,000-digit MNIST test split in ``data/mnist/``; it is the offline default.
``download_mnist`` fetches the 60,000-digit train split (and re-fetches the test split) when online.
The 2-D toy data sets live in :mod:`ddim_book.toy` and are re-exported here as ``toy_2d``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ddim_book._checks import check_choice, check_finite_nonneg, check_int_range
from ddim_book.toy import toy_2d

__all__ = [
    "DEFAULT_MIRRORS", "MNIST_FILES", "MNIST_MD5", "DataError", "default_root", "download_mnist", "load_mnist",
    "md5_of", "mnist_dataset", "mnist_split", "split_indices", "to_model_range", "to_uint8", "toy_2d",
]  # fmt: skip

#: md5 sums of the four official MNIST files (the gzip files as published).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: split name -> (images file, labels file)
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: Base URLs that serve the four files under their official names, tried in order.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class DataError(RuntimeError):
    """A data file is missing, truncated or corrupt, or a download failed; the message says what to do."""


def default_root() -> Path:
    """The MNIST folder: ``$DDIM_BOOK_DATA/mnist`` if that variable is set, else the repository's ``data/mnist``.

    ``DDIM_BOOK_DATA`` names the data folder (the one that holds ``mnist/``), as ``data/`` does in the repository.
    """
    from ddim_book.paths import mnist_dir

    return mnist_dir()


def md5_of(path: str | os.PathLike) -> str:
    """Hex md5 digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _broken(path: Path, problem: str) -> DataError:
    """A DataError naming the file, its problem and the way to get a good copy."""
    fetch = f"run `ddim_book.data.download_mnist({str(path.parent)!r})` on a machine that is online"
    if path.name in MNIST_FILES["test"]:
        fetch = f"re-copy it from the repository's data/mnist/ (it ships with ddim-book), or {fetch}"
    return DataError(f"MNIST file {path} {problem}; {fetch}.")


def _read_idx(path: Path, ndim: int, md5s: Mapping[str, str] | None) -> np.ndarray:
    """Read one gzip'd IDX file of unsigned bytes with ``ndim`` dimensions; md5-check it first if ``md5s``."""
    if not path.is_file():
        raise _broken(path, "is missing")
    if md5s is not None:
        if path.name not in md5s:
            raise DataError(f"no known md5 sum for {path.name}; expected one of {sorted(md5s)}")
        actual = md5_of(path)
        if actual != md5s[path.name]:
            size = path.stat().st_size
            raise _broken(path, f"is corrupt or truncated: md5 {actual}, expected {md5s[path.name]} ({size} bytes)")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise _broken(path, f"is not a readable gzip file ({err})") from None
    header = 4 + 4 * ndim
    # IDX magic: two zero bytes, type code 0x08 (unsigned byte), number of dimensions
    if len(raw) < header or raw[:4] != bytes([0, 0, 0x08, ndim]):
        raise _broken(path, f"lacks the IDX magic of a {ndim}-D byte array (got {raw[:4].hex() or 'nothing'})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise _broken(path, f"declares shape {shape} but holds {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(
    root: str | os.PathLike | None = None,
    split: str = "test",
    verify: bool = True,
    md5s: Mapping[str, str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an MNIST split from its IDX ``.gz`` files.

    Args:
        root: folder holding the files; default :func:`default_root` (the shipped ``data/mnist``).
        split: ``"test"`` (``t10k-*``, 10,000 digits, shipped) or ``"train"`` (``train-*``, 60,000 digits,
            present only after :func:`download_mnist`).
        verify: check each file's md5 against ``md5s`` before parsing it.
        md5s: file name -> md5 table; default :data:`MNIST_MD5`.

    Returns:
        ``images`` uint8 tensor (N, 28, 28), pixel values 0..255 (0 = background), and
        ``labels`` int64 tensor (N,), digits 0..9.

    Raises:
        DataError: a file is missing, fails its md5, is not valid gzip/IDX, or images and labels disagree.
    """
    check_choice("split", split, tuple(MNIST_FILES))
    root = Path(root) if root is not None else default_root()
    table = (MNIST_MD5 if md5s is None else md5s) if verify else None
    images_name, labels_name = MNIST_FILES[split]
    images = _read_idx(root / images_name, 3, table)
    labels = _read_idx(root / labels_name, 1, table)
    if images.shape[1:] != (28, 28):
        raise _broken(root / images_name, f"holds images of shape {images.shape[1:]}, expected (28, 28)")
    if images.shape[0] != labels.shape[0]:
        raise _broken(root / labels_name, f"has {labels.shape[0]} labels for {images.shape[0]} images")
    if labels.size and int(labels.max()) > 9:
        raise _broken(root / labels_name, f"holds label {int(labels.max())}; MNIST labels are 0..9")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels 0..255, shape (N, H, W) or (N, 1, H, W), to float32 (N, 1, H, W) in [-1, 1].

    x = u / 127.5 - 1, the DDPM convention (DDPM sec. 3.3: data scaled linearly to [-1, 1]; chapter 1).
    """
    if not isinstance(images_uint8, torch.Tensor) or images_uint8.dtype != torch.uint8:
        got = images_uint8.dtype if isinstance(images_uint8, torch.Tensor) else type(images_uint8).__name__
        raise TypeError(f"images_uint8 must be a torch.uint8 tensor, got {got}")
    if images_uint8.ndim == 3:
        images_uint8 = images_uint8.unsqueeze(1)
    if images_uint8.ndim != 4 or images_uint8.shape[1] != 1:
        raise ValueError(f"images_uint8 must have shape (N, H, W) or (N, 1, H, W), got {tuple(images_uint8.shape)}")
    return images_uint8.to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_model_range`: float (N, 1, H, W) in [-1, 1] -> uint8 (N, H, W), 0..255.

    Values outside [-1, 1] (a sampler's overshoot) are clipped, then rounded to the nearest level.
    Inputs of any other shape keep their shape. ``to_uint8(to_model_range(u))`` equals ``u``.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a floating-point tensor in [-1, 1], got {got}")
    if x.ndim == 4 and x.shape[1] == 1:
        x = x.squeeze(1)
    levels = ((x.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return levels.to(torch.uint8)


def split_indices(n: int, held_out: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic partition of ``range(n)`` into (train, held-out) int64 index tensors, each ascending.

    Index i is ranked by sha256 of ``"{seed}:{i}"`` and the ``held_out`` lowest ranks are held out, so the
    split is the same on every machine, platform and library version (no random-number stream involved).
    """
    n = check_int_range("n", n, 0, 2**31 - 1)
    held_out = check_int_range("held_out", held_out, 0, n)
    seed = check_int_range("seed", seed, 0, 2**63 - 1)
    ranks = sorted(range(n), key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    held = torch.tensor(sorted(ranks[:held_out]), dtype=torch.int64)
    train = torch.tensor(sorted(ranks[held_out:]), dtype=torch.int64)
    return train, held


def mnist_split(
    images: torch.Tensor, labels: torch.Tensor, held_out: int = 1000, seed: int = 0
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Split (images, labels) into ``((train_images, train_labels), (held_images, held_labels))``.

    ``held_out`` digits (default 1,000 of the shipped 10,000) are set aside for evaluation by
    :func:`split_indices`; the two parts are disjoint, cover all digits and keep the original order.
    """
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("images and labels must be torch tensors")
    if images.ndim == 0 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"images (N, ...) and labels (N,) must share N, got shapes {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    train, held = split_indices(images.shape[0], held_out, seed)
    return (images[train], labels[train]), (images[held], labels[held])


def mnist_dataset(
    part: str = "train", root: str | os.PathLike | None = None, held_out: int = 1000, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped MNIST test split, ready for the model: ``x`` float32 (N, 1, 28, 28) in [-1, 1], labels int64 (N,).

    ``part``: ``"train"`` (the 9,000 digits the book trains on), ``"held_out"`` (the 1,000 it evaluates on,
    see :func:`mnist_split`) or ``"all"`` (all 10,000).
    """
    check_choice("part", part, ("train", "held_out", "all"))
    images, labels = load_mnist(root, split="test")
    if part != "all":
        train, held = mnist_split(images, labels, held_out=held_out, seed=seed)
        images, labels = train if part == "train" else held
    return to_model_range(images), labels


def _fetch(url: str, dest: Path, expected_md5: str, timeout: float, progress: bool) -> str | None:
    """Download ``url`` to a temp file beside ``dest``, md5-check it, then ``os.replace`` it into place.

    Returns None on success, else a one-line account of what went wrong (``dest`` is then untouched).
    """
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        digest, received = hashlib.md5(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            size = response.headers.get("Content-Length")
            total = int(size) if size and size.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            return f"connection closed after {received} of {total} bytes"
        if digest.hexdigest() != expected_md5:
            return f"bad md5 {digest.hexdigest()} (expected {expected_md5})"
        os.replace(tmp, dest)
        return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        return f"network error: {err.reason}"
    except (OSError, ValueError, http.client.HTTPException) as err:  # timeouts, resets, cut-off bodies, bad URLs
        return f"{type(err).__name__}: {err}"
    finally:
        tmp.unlink(missing_ok=True)


def download_mnist(
    root: str | os.PathLike | None = None,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    files: Sequence[str] | None = None,
    timeout: float = 30.0,
    md5s: Mapping[str, str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Fetch MNIST files into ``root`` (default :func:`default_root`), md5-verified and written atomically.

    Each file is streamed to a temp file in ``root``, checked against ``md5s`` (default :data:`MNIST_MD5`)
    and moved into place with ``os.replace``, so a failed or partial download never leaves a broken file
    under the real name. Files already present with the right md5 are skipped. For each file the mirrors
    (base URLs) are tried in order; a network error, an HTTP error or a bad checksum moves on to the next.

    Args:
        files: file names to fetch; default every file in ``md5s`` (the four official MNIST files).
        timeout: seconds to wait on each connection or read.
        progress: show a tqdm progress bar per file.

    Returns:
        The paths of the requested files, all present and valid.

    Raises:
        DataError: every mirror failed for some file; the message lists what each mirror answered.
    """
    table = dict(MNIST_MD5 if md5s is None else md5s)
    names = list(table) if files is None else list(files)
    for name in names:
        check_choice("file", name, tuple(table))
    if isinstance(mirrors, str) or not mirrors:
        raise ValueError(f"mirrors must be a non-empty sequence of base URLs, got {mirrors!r}")
    if check_finite_nonneg("timeout", timeout) == 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    root = Path(root) if root is not None else default_root()
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        dest = root / name
        paths.append(dest)
        if dest.is_file() and md5_of(dest) == table[name]:
            continue
        answers = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            problem = _fetch(url, dest, table[name], timeout, progress)
            if problem is None:
                break
            answers.append(f"  {url}: {problem}")
        else:
            raise DataError(
                f"could not download {name} into {root}; every mirror failed:\n" + "\n".join(answers) + "\n"
                "Check the network, pass other base URLs as `mirrors=`, or copy the file there by hand."
            )
    return paths
