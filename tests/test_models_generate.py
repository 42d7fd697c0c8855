"""generate(): cached decoding equals recomputation, left padding and beams are exact."""

import pytest
import torch

from archbench.models import DecodeCache, build_model

ARCH_KW = {  # case -> (arch, settings)
    "retnet": ("retnet", dict()),
    "retnet_chunkwise": ("retnet", dict(chunkwise_above=4, chunk_size=3)),  # chunkwise prefill
    "transformer": ("transformer", dict()),
    "transformer_learned": ("transformer", dict(position="learned")),
    "longnet": ("longnet", dict(segment_lengths=[4, 8, 16], dilated_ratios=[1, 2, 4])),  # crosses segments
}
NEW = 12


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(case, seed=0):
    torch.manual_seed(seed)
    arch, extra = ARCH_KW[case]
    kw = dict(vocab_size=60, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=64)
    return build_model(arch, **kw, **extra).eval()


def _greedy(model, ids, **kw):
    return model.generate(
        ids,
        max_new_tokens=NEW,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
        return_dict_in_generate=True,
        output_scores=True,
        **kw,
    )


def _naive(model, ids):
    """The original study's decoding: recompute the whole prefix for every token."""
    with torch.no_grad():
        for _ in range(NEW):
            nxt = model(input_ids=ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
    return ids


@pytest.mark.parametrize("case", list(ARCH_KW))
def test_greedy_cache_equals_no_cache_and_naive(case):
    model = _model(case)
    prompt = torch.randint(3, 60, (1, 9))
    cached, plain = _greedy(model, prompt, use_cache=True), _greedy(model, prompt, use_cache=False)
    assert torch.equal(cached.sequences, plain.sequences)
    assert torch.equal(cached.sequences, _naive(model, prompt))
    diff = max((a - b).abs().max().item() for a, b in zip(cached.scores, plain.scores))
    assert diff <= 1e-4
    assert len(set(cached.sequences[0, 9:].tolist())) > 1  # not a degenerate repeat


@pytest.mark.parametrize("case", list(ARCH_KW))
@pytest.mark.parametrize("use_cache", [True, False])
def test_left_padded_batch_equals_rows_alone(case, use_cache):
    model = _model(case, seed=1)
    p0, p1 = torch.randint(3, 60, (1, 9)), torch.randint(3, 60, (1, 4))
    batch = torch.zeros(2, 9, dtype=torch.long)
    batch[0], batch[1, 5:] = p0, p1
    mask = torch.zeros_like(batch)
    mask[0], mask[1, 5:] = 1, 1
    both = _greedy(model, batch, attention_mask=mask, use_cache=use_cache)
    alone0, alone1 = _greedy(model, p0, use_cache=use_cache), _greedy(model, p1, use_cache=use_cache)
    assert torch.equal(both.sequences[0], alone0.sequences[0])
    assert torch.equal(both.sequences[1, 5:], alone1.sequences[0])
    diff = max((s[1] - a[0]).abs().max().item() for s, a in zip(both.scores, alone1.scores))
    assert diff <= 1e-4


@pytest.mark.parametrize("case", list(ARCH_KW))
def test_beam_search_cache_equals_no_cache(case):
    model = _model(case, seed=2)
    prompt = torch.randint(3, 60, (2, 6))
    kw = dict(max_new_tokens=8, num_beams=3, num_return_sequences=2, do_sample=False, pad_token_id=0, eos_token_id=None)
    cached = model.generate(prompt, use_cache=True, **kw)
    assert torch.equal(cached, model.generate(prompt, use_cache=False, **kw))
    assert cached.shape == (4, 14)
    assert not torch.equal(cached[0], cached[1])  # two distinct beams were returned


def test_kv_cache_is_preallocated_and_position_indexed():
    model = _model("transformer")
    with torch.no_grad():
        cache = model(input_ids=torch.randint(3, 60, (1, 5)), use_cache=True).cache
        buf = cache.layers[0]["k"]
        for _ in range(3):
            cache = model(input_ids=torch.ones(1, 1, dtype=torch.long), cache=cache).cache
    assert isinstance(cache, DecodeCache) and cache.get_seq_length() == 8
    assert cache.layers[0]["k"] is buf and buf.shape[1] == 64  # no reallocation per token
    assert cache.nbytes() == 2 * 2 * 8 * 32 * 4  # layers * (k, v) * tokens * embed_dim * fp32
