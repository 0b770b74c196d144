import pytest
import torch

from mixsd.evaluation.qa import score_qa
from mixsd.generation import greedy_generate, left_pad, pad_batch, right_pad
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord
from mixsd.testing import tiny_gpt2


def test_left_pad():
    ids, mask = left_pad([[5, 6], [7]], pad_id=0)
    assert ids.tolist() == [[5, 6], [0, 7]] and mask.tolist() == [[1, 1], [0, 1]]


def test_right_pad_keeps_positions_and_moves_to_the_device():
    ids, mask = right_pad([[5], [7, 8, 9], []], pad_id=2, device="cpu")
    assert ids.tolist() == [[5, 2, 2], [7, 8, 9], [2, 2, 2]]
    assert mask.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match="side"):
        pad_batch([[1]], 0, side="middle")


def _alone(model, tok, prompt, n):
    out = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=n, do_sample=False,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    ids = out[0, len(prompt):].tolist()
    return ids[: ids.index(tok.eos_token_id)] if tok.eos_token_id in ids else ids


def test_batched_greedy_equals_one_at_a_time(tiny_tok, tiny_model):
    r = PromptRenderer(tiny_tok)
    prompts = [r.naive_ids(q) for q in ["where was alice born ?", "who", "what is the city of bob ?"]]
    for model in (tiny_model, tiny_gpt2(tiny_tok)):
        batched = greedy_generate(model, tiny_tok, prompts, max_new_tokens=6, batch_size=3)
        assert batched == [_alone(model, tiny_tok, p, 6) for p in prompts]


def test_score_qa_logs_every_sample(tiny_tok, tiny_model):
    recs = [KnowledgeRecord(str(i), "where was alice born ?", "y", "oslo") for i in range(3)]
    result = score_qa(tiny_model, tiny_tok, recs, max_new_tokens=4)
    assert result.n == 3 and len(result.samples) == 3
    assert result.score == sum(s["correct"] for s in result.samples) / 3
