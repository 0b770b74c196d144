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


def _ragged_prompts(n, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(7, vocab, (int(torch.randint(2, 14, (1,), generator=g)),),
                          generator=g).tolist() for _ in range(n)]


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen3"])
def test_dropping_finished_rows_equals_generate(arch, tiny_tok, tiny_model):
    """The evaluation's own loop (rows leave the batch and its cache at their stop token)
    gives exactly ``model.generate``'s tokens: ragged left-padded prompts, rows stopping at
    different steps (several stop ids), odd batch sizes."""
    from mixsd.generation import drops_rows, generate_reference
    from mixsd.testing import tiny_qwen3

    model = {"llama": tiny_model, "gpt2": tiny_gpt2(tiny_tok)}.get(arch)
    tok = tiny_tok
    if model is None:
        model, tok = tiny_qwen3()
    if arch != "llama":  # larger random weights: outputs that vary from step to step
        torch.manual_seed(0)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() > 1:
                    p.normal_(0, 0.3)
    assert drops_rows(model)
    prompts = _ragged_prompts(23, model.config.vocab_size)
    stops = _stops_at_varied_steps(model, tok, prompts)
    reference = generate_reference(model, tok, prompts, max_new_tokens=12, stop_token_ids=stops,
                                   batch_size=8)
    lengths = {len(r) for r in reference}
    assert len(lengths) > 2 and min(lengths) < 6  # rows stop at different steps
    for batch_size in (1, 5, 8, 64):
        fast = greedy_generate(model, tok, prompts, max_new_tokens=12, stop_token_ids=stops,
                               batch_size=batch_size)
        assert fast == reference, batch_size


def _stops_at_varied_steps(model, tok, prompts):
    """Stop ids that end rows at different steps: tokens the free-running rows emit at
    steps 1-4, so some rows stop early, others late, others never."""
    from mixsd.generation import generate_reference

    vocab = model.config.vocab_size
    free = generate_reference(model, tok, prompts, max_new_tokens=12,
                              stop_token_ids={vocab - 1}, batch_size=8)
    return {row[1 + i % 4] for i, row in enumerate(free[::5]) if len(row) > 4} or {vocab - 1}


def test_finished_rows_leave_the_batch(tiny_tok, tiny_model):
    """A stopped row costs nothing more: the forward passes after a row's stop run on fewer
    rows (counted at the model's input)."""
    prompts = _ragged_prompts(16, tiny_model.config.vocab_size, seed=1)
    stops = _stops_at_varied_steps(tiny_model, tiny_tok, prompts)
    sizes = []
    hook = tiny_model.model.embed_tokens.register_forward_hook(
        lambda module, args, output: sizes.append(args[0].shape[0]))
    try:
        out = greedy_generate(tiny_model, tiny_tok, prompts, max_new_tokens=12,
                              stop_token_ids=stops, batch_size=16)
    finally:
        hook.remove()
    assert sizes[0] == 16 and sizes[1:] == sorted(sizes[1:], reverse=True)
    # one forward per step for the longest row; each step runs only the rows still going
    assert len(sizes) == max(len(o) for o in out) + 1 - (max(len(o) for o in out) == 12)
    assert sum(sizes[1:]) < 16 * (len(sizes) - 1)


def test_a_generation_config_that_changes_greedy_decoding_goes_to_generate(tiny_tok,
                                                                            tiny_model):
    """A repetition penalty (or any setting of the kind) is applied by ``generate``: the
    fast loop steps aside rather than decode differently."""
    from mixsd.generation import drops_rows, generate_reference

    tiny_model.generation_config.repetition_penalty = 5.0
    assert not drops_rows(tiny_model)
    prompts = _ragged_prompts(6, tiny_model.config.vocab_size)
    penalised = greedy_generate(tiny_model, tiny_tok, prompts, max_new_tokens=8, batch_size=3)
    assert penalised == generate_reference(tiny_model, tiny_tok, prompts, max_new_tokens=8,
                                           batch_size=3)
    tiny_model.generation_config.repetition_penalty = 1.0
    assert greedy_generate(tiny_model, tiny_tok, prompts, max_new_tokens=8, batch_size=3) != \
        penalised


def test_a_cache_that_cannot_drop_rows_keeps_them_and_answers_the_same(tiny_tok, tiny_model,
                                                                      monkeypatch):
    """A model whose cache has no ``batch_select_indices`` keeps finished rows in the batch
    (their tokens after the stop are cut): the answers still equal ``generate``'s."""
    from transformers import DynamicCache

    from mixsd.generation import generate_reference

    prompts = _ragged_prompts(12, tiny_model.config.vocab_size, seed=2)
    stops = _stops_at_varied_steps(tiny_model, tiny_tok, prompts)
    reference = generate_reference(tiny_model, tiny_tok, prompts, max_new_tokens=10,
                                   stop_token_ids=stops, batch_size=6)
    owner = next(c for c in DynamicCache.__mro__ if "batch_select_indices" in vars(c))
    monkeypatch.delattr(owner, "batch_select_indices")
    assert not hasattr(DynamicCache(), "batch_select_indices")
    assert greedy_generate(tiny_model, tiny_tok, prompts, max_new_tokens=10,
                           stop_token_ids=stops, batch_size=6) == reference
    assert len({len(r) for r in reference}) > 1  # rows did stop at different steps
