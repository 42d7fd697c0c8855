"""training.tokens_per_param: a run trains for tokens proportional to its non-embedding parameters."""

import math

from test_training import run


def test_token_budget_sets_the_number_of_steps(tmp_path, tiny_tokens, one_thread):
    metrics = run(tmp_path, tiny_tokens, "budget", tokens_per_param=0.02, max_steps=1000)
    n = metrics["params_non_embedding"]
    steps = math.ceil(0.02 * n / (4 * 32))  # batch_size 4 x seq_len 32 tokens per step
    assert 1 < steps < 1000
    assert metrics["global_step"] == steps and metrics["hparams"]["max_steps"] == steps
    assert metrics["tokens_seen"] == steps * 4 * 32 >= 0.02 * n
