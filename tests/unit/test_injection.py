"""The editing plan and the injection arithmetic, against hand computations and an independent model of the
reference code's feature keys (ALGORITHM.md section 4)."""
import pytest
import torch

from fireflow.errors import BudgetError, TextLengthError
from fireflow.features import CacheSpec, parse_blocks
from fireflow.injection import Strategy, align, apply_strategy, combine, injection_map
from fireflow.schedules import flux_grid
from fireflow.solvers import FIRST, MID
from fireflow.tokens import TokenLayout


def official_injected(steps, inject, solver):
    """Which editing evaluations the reference code injects, modelled the way that code works and independently of
    the pack: features live in a dict keyed by (float time, is-midpoint); inversion step (t_cur -> t_prev, ascending)
    writes under t_prev, editing step j (t_cur -> t_prev, descending) reads under t_cur, for the first `inject` steps,
    and a read whose key is missing silently injects nothing. FireFlow makes its step-start model call only on the
    first step of a pass; RF-Solver on every step; Euler has no midpoint call."""
    t = flux_grid(steps, 4096).tolist()          # 1 ... 0
    up = t[::-1]                                 # 0 ... 1
    written = {}
    for i in range(steps):
        t_cur, t_prev = up[i], up[i + 1]
        if solver != "fireflow" or i == 0:
            written[(t_prev, False)] = (i, FIRST)
        if solver != "euler":
            written[(t_prev, True)] = (i, MID)
    got = {}
    for j in range(inject):
        t_cur = t[j]
        calls = []
        if solver != "fireflow" or j == 0:
            calls.append((False, FIRST))
        if solver != "euler":
            calls.append((True, MID))
        for is_mid, call in calls:
            if (t_cur, is_mid) in written:
                got[(j, call)] = written[(t_cur, is_mid)]
    return got


@pytest.mark.parametrize("solver", ["fireflow", "rf_solver", "midpoint", "euler"])
@pytest.mark.parametrize("steps", [1, 2, 3, 8])
def test_reference_policy_is_what_the_reference_code_does(solver, steps):
    for inject in range(1, steps + 1):
        assert injection_map(steps, inject, solver, "reference") == official_injected(steps, inject, solver)


def test_fireflow_one_step_reference_injects_both_calls_from_the_same_interval():
    # The case ALGORITHM.md singles out: the one inversion step writes the key the edit's first call reads.
    assert injection_map(1, 1, "fireflow", "reference") == {(0, FIRST): (0, FIRST), (0, MID): (0, MID)}
    assert injection_map(8, 1, "fireflow", "reference") == {(0, MID): (7, MID)}


def test_both_policy_feeds_fireflow_first_call_from_the_carried_velocity():
    # Editing step 0 starts at t = 1, where inversion's last step used the previous step's midpoint velocity.
    assert injection_map(8, 2, "fireflow", "both") == {(0, FIRST): (6, MID), (0, MID): (7, MID), (1, MID): (6, MID)}


L2 = TokenLayout(image=2)  # FLUX.1 without references: [text | 2 image tokens]


def T(*values):
    """[B=1, H=1, tokens, D=1] from a list of numbers."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, -1, 1)


def test_replace_and_add_on_image_tokens_only():
    cur, rec = T(1, 2, 10, 20), T(5, 6, 7, 8)          # 2 text + 2 image tokens each
    assert combine(cur, rec, "replace", 1.0, False, L2).flatten().tolist() == [1, 2, 7, 8]
    assert combine(cur, rec, "add", 0.5, False, L2).flatten().tolist() == [1, 2, 13.5, 24]
    assert combine(cur, rec, "replace", 1.0, True, L2).flatten().tolist() == [5, 6, 7, 8]
    assert combine(cur, rec, "add", 2.0, True, L2).flatten().tolist() == [11, 14, 24, 36]
    assert cur.flatten().tolist() == [1, 2, 10, 20]      # inputs untouched


def test_align_takes_text_only_when_lengths_agree_and_policy_allows():
    cur = T(1, 2, 3, 10, 20)                              # 3 text + 2 image tokens
    same, other, image_only = T(0, 0, 0, 7, 8), T(0, 0, 7, 8), T(7, 8)
    assert align(cur, same, L2, "auto")[1] is True
    assert align(cur, same, L2, "image_only")[1] is False
    assert align(cur, other, L2, "auto")[1] is False
    assert align(cur, image_only, L2, "auto")[1] is False
    with pytest.raises(TextLengthError) as e:
        align(cur, other, L2, "full")
    assert (e.value.data["recorded"], e.value.data["current"]) == (2, 3)


def test_align_repeats_a_recorded_batch_over_prompt_batches():
    rec = torch.arange(4.0).view(1, 1, 4, 1)
    out, _ = align(torch.zeros(3, 1, 4, 1), rec, L2, "auto")
    assert out.shape == (3, 1, 4, 1) and all(torch.equal(out[i], rec[0]) for i in range(3))


def test_apply_strategy_per_feature():
    q, k, v = T(1, 1, 1, 1), T(2, 2, 2, 2), T(3, 3, 3, 3)
    stored = {"q": T(10, 10, 10, 10), "k": T(20, 20, 20, 20), "v": T(30, 30, 30, 30)}
    s = Strategy(q="add", k="keep", v="replace", q_ratio=0.5)
    q2, k2, v2, text = apply_strategy(s, q, k, v, stored, L2, "auto")
    assert q2.flatten().tolist() == [6, 6, 6, 6] and torch.equal(k2, k) and v2.flatten().tolist() == [30] * 4
    assert text is True


def test_blocks_parse():
    assert parse_blocks("0-2, 5", 8, "single") == (0, 1, 2, 5)
    assert parse_blocks("all", 3, "single") == (0, 1, 2) and parse_blocks("none", 3, "single") == ()


GEOMETRY = (1, 24, 128, 512, 4096)  # FLUX-dev 1024^2: batch, heads, head_dim, text tokens, image tokens
COUNTS = (19, 38)


def budget_error(spec, steps=8):
    with pytest.raises(BudgetError) as e:
        spec.check_budget(COUNTS, steps, "fireflow", GEOMETRY, torch.bfloat16)
    return e.value


def test_budget_options_are_priced_as_printed():
    err = budget_error(CacheSpec(double_blocks="all", inject_steps=3, max_gb=0.5))
    assert err.data["options"]
    for changes, priced, fits in err.data["options"]:
        alt = CacheSpec(**{**CacheSpec(double_blocks="all", inject_steps=3, max_gb=0.5).__dict__, **changes})
        assert alt.resolve(COUNTS, 8, "fireflow").estimate_bytes(*GEOMETRY, torch.bfloat16) == priced
        assert fits == (priced <= 0.5 * 2 ** 30)
    blocks = [c["single_blocks"] for c, _, _ in err.data["options"] if "single_blocks" in c]
    assert blocks and set(blocks) == {"19-37"}  # the later half of 38 blocks, priced and printed alike


KNOBS = ({"dtype": "fp8"}, {"text_tokens": "image_only"}, {"inject_steps": 1},
         {"single_blocks": "19-37", "double_blocks": "none"})


def test_budget_names_a_combination_when_no_single_change_fits():
    spec = CacheSpec(double_blocks="all", inject_steps=3)
    price = lambda ch: CacheSpec(**{**spec.__dict__, **ch}).resolve(COUNTS, 8, "fireflow").estimate_bytes(  # noqa
        *GEOMETRY, torch.bfloat16)
    limit = min(price(k) for k in KNOBS) * 0.99  # no single change fits; fp8 + fewer blocks (and more) do
    assert price({**KNOBS[0], **KNOBS[3]}) <= limit
    err = budget_error(CacheSpec(**{**spec.__dict__, "max_gb": limit / 2 ** 30}))
    fitting = [c for c, b, fits in err.data["options"] if fits]
    assert len(fitting) == 1 and len(fitting[0]) >= 2, err
    assert price(fitting[0]) <= limit


def test_inject_until_sigma_counts_the_steps_that_start_at_or_above_it():
    grid = [1.0, 0.9, 0.7, 0.53, 0.3, 0.0]  # written out: steps start at 1, 0.9, 0.7, 0.53, 0.3
    assert CacheSpec(inject_until_sigma=0.53).for_grid(grid).inject_steps == 4
    assert CacheSpec(inject_until_sigma=0.54).for_grid(grid).inject_steps == 3
    assert CacheSpec(inject_until_sigma=0.95).for_grid(grid).inject_steps == 1
    assert CacheSpec(inject_steps=2).for_grid(grid).inject_steps == 2  # 0: inject_steps as set
    with pytest.raises(Exception, match="above every editing step"):
        CacheSpec(inject_until_sigma=0.9).for_grid([0.8, 0.4, 0.0])
    with pytest.raises(Exception, match=r"must be in \[0, 1\)"):
        CacheSpec(inject_until_sigma=1.5)
