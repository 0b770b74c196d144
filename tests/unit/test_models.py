import pytest
import torch

from mixsd.errors import MixsdError
from mixsd.models import context_length, load_model_and_tokenizer
from mixsd.testing import save_tiny


def test_loads_a_saved_model_and_reproduces_logits(tmp_path, tiny_tok, tiny_model):
    path = save_tiny(tmp_path / "m", tiny_model, tiny_tok)
    model, tok = load_model_and_tokenizer(path, device="cpu")
    ids = torch.tensor([tok("where was alice born ?")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, tiny_model(ids).logits)
    assert context_length(model) == 256 and not model.training


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(MixsdError, match="neither a local folder"):  # offline: no hub either
        load_model_and_tokenizer("no-such-model")
    with pytest.raises(MixsdError, match="could not load"):
        load_model_and_tokenizer(str(tmp_path))


def test_revision_and_trust_remote_code_reach_from_pretrained(tmp_path, tiny_tok, tiny_model,
                                                             monkeypatch):
    """Hub options go to every from_pretrained (a local folder ignores the revision), and a
    LoRA checkpoint reloads its base model at the revision its run recorded."""
    import json

    import transformers

    from mixsd.models import CHECKPOINT_INFO, hub_options, load_model, model_key

    assert hub_options() == {} and model_key("m") == "m" and model_key("m", "v1") == "m@v1"
    path = save_tiny(tmp_path / "m", tiny_model, tiny_tok)
    seen = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append({k: kwargs.get(k) for k in ("revision", "trust_remote_code")})
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_model_and_tokenizer(path, device="cpu", revision="v1", trust_remote_code=True)
    assert seen == [{"revision": "v1", "trust_remote_code": True}] * 2
    seen.clear()
    load_model_and_tokenizer(path, device="cpu")
    assert seen == [{"revision": None, "trust_remote_code": None}] * 2
    # a LoRA adapter over its base at the recorded revision
    from peft import LoraConfig, get_peft_model

    adapter = tmp_path / "epoch-1"
    get_peft_model(tiny_model, LoraConfig(r=2, target_modules="all-linear")).save_pretrained(
        adapter)
    (adapter / CHECKPOINT_INFO).write_text(json.dumps({"base_model": path, "revision": "v1"}))
    seen.clear()
    load_model(str(adapter), device="cpu")
    assert seen[0] == {"revision": "v1", "trust_remote_code": None}
