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
