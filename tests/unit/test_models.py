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
    with pytest.raises(MixsdError, match="HF_HUB_OFFLINE is set"):  # offline: no hub either
        load_model_and_tokenizer("no-such-model")
    with pytest.raises(MixsdError, match="holds no model"):
        load_model_and_tokenizer(str(tmp_path))


def test_a_local_path_that_is_no_model_says_so_in_one_line(tmp_path, tiny_tok):
    """Issue 27: a path that does not exist was taken for a hub id ("Repo id must use
    alphanumeric chars"), a folder without a config for a tokenizer to convert ("install
    sentencepiece")."""
    missing = tmp_path / "no" / "such" / "model"
    for name in (str(missing), "./no/such/model"):
        with pytest.raises(MixsdError, match=r"the path .*no/such/model does not exist") as err:
            load_model_and_tokenizer(name)
        assert "\n" not in str(err.value) and "flag --model" in str(err.value)
        assert "Repo id" not in str(err.value)
    not_a_model = tmp_path / "tokenizer-only"
    tiny_tok.save_pretrained(not_a_model)  # a folder, but no config.json of a model
    (not_a_model / "tokenizer.json").unlink()
    with pytest.raises(MixsdError, match=r"holds no model \(no config.json\)") as err:
        load_model_and_tokenizer(str(not_a_model))
    assert "sentencepiece" not in str(err.value)
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"\0" * 8)
    with pytest.raises(MixsdError, match="is a file, not a model"):
        load_model_and_tokenizer(str(a_file))


def test_a_hub_id_without_network_fails_in_seconds_naming_hf_hub_offline(tmp_path):
    """Issue 27: with no network an unknown hub id retried for ~46 s. The hub here is an
    endpoint whose name never resolves (.invalid, RFC 2606): a network without the hub."""
    import os
    import subprocess
    import sys

    # Imports and plug-ins load before the clock starts: only the attempt is timed.
    script = ("import time\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
              "from mixsd.errors import MixsdError\n"
              "from mixsd.models import load_model_and_tokenizer, resolve_model_path\n"
              "resolve_model_path('toy-free-name')\n"
              "start = time.perf_counter()\n"
              "try:\n    load_model_and_tokenizer('no-such-org/no-such-model')\n"
              "except MixsdError as exc:\n    print(round(time.perf_counter() - start, 1))\n"
              "    print(exc)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://hub.mixsd-test.invalid", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seconds, message = result.stdout.strip().split("\n", 1)
    assert float(seconds) < 15, (seconds, message)
    assert "cannot be reached" in message and "HF_HUB_OFFLINE" in message
    assert "a local folder" in message and "alias" in message
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
