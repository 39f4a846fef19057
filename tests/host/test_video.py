"""Video families in the real host (issue 13): Wan 2.1 / 2.2 and HunyuanVideo 1 / 1.5 on 5-frame tiny latents built
through ComfyUI's own classes.

As in test_families.py, each case writes out from the model's own code where the image tokens sit in the hooked
attention and which attention call of an evaluation belongs to which block; the assertions slice the spy's tensors
with those constants. Wan's blocks make a self-attention call over the image tokens alone, then a text
cross-attention call (and, for I2V, a CLIP-vision one first): only the self-attention may be recorded or replaced.
"""
import dataclasses
from dataclasses import dataclass
from typing import Tuple

import pytest
import torch

import family_fixtures as ff
from familylib import N, cache, edit, edit_plain_and_patched, invert, patch, with_spy
from hostlib import PACK, counting_clone
from test_families import _hunyuan_text_first

SINGLE = 1
FIRST, MID = 0, 1
STEPS = 4
SOURCE = (STEPS - 1, MID)
FRAMES = 5


@dataclass
class VideoCase:
    name: str
    T: int  # text tokens in the hooked attention (0: self-attention only)
    per_frame: int  # image tokens per latent frame
    blocks: Tuple[Tuple[int, int, int], ...]  # (kind, block, attention call number) of the default recipe
    calls: int  # attention calls of one evaluation
    text_first: bool = True
    heads: int = 2

    @property
    def L(self):
        return FRAMES * self.per_frame

    def image(self, lead=0):
        return slice(self.T + lead, self.T + lead + self.L) if self.text_first else slice(lead, lead + self.L)


# wan/model.py: per block a self-attention call, then WanT2VCrossAttention (1 call) or WanI2VCrossAttention (CLIP-vision
# call, then text call); 4 blocks, the default recipe takes the later half (2, 3). Patch (1, 2, 2): 64 px / 8 = 8 x 8
# latent -> 16 tokens per frame (Wan 2.2 5B: 64 px / 16 = 4 x 4 -> 4).
# hunyuan_video/model.py: two text-refiner calls, then the double block (n=2), single blocks (n=3, 4); later half of
# the single blocks = block 1. HunyuanVideo 1.5: patch 1 on a 1/16 latent -> 16 tokens per frame.
CASES = {
    "wan21": VideoCase("wan21", T=0, per_frame=16, blocks=((SINGLE, 2, 4), (SINGLE, 3, 6)), calls=8),
    "wan21_i2v": VideoCase("wan21_i2v", T=0, per_frame=16, blocks=((SINGLE, 2, 6), (SINGLE, 3, 9)), calls=12),
    "wan22_5b": VideoCase("wan22_5b", T=0, per_frame=4, blocks=((SINGLE, 2, 4), (SINGLE, 3, 6)), calls=8),
    "hunyuan_video": VideoCase("hunyuan_video", T=7, per_frame=16, blocks=((SINGLE, 1, 4),), calls=5,
                               text_first=_hunyuan_text_first()),
    "hunyuan_video15": VideoCase("hunyuan_video15", T=7, per_frame=16, blocks=((SINGLE, 1, 4),), calls=5,
                                 text_first=_hunyuan_text_first()),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    c = CASES[request.param]
    c.model = ff.build(c.name)
    return c


def test_inverts_and_reconstructs_a_5_frame_latent(case):
    src, x0 = ff.conditioning(case.name, 7, 1), ff.latent(case.name)
    assert x0.ndim == 5 and x0.shape[2] == FRAMES
    inv, rec = invert(case.model, src, x0, steps=8)
    assert rec.nfe == 9 and inv["samples"].shape == x0.shape
    out, summary = edit(case.model, inv, rec, src, cfg=1.0, guidance=1.0)
    assert "9 evaluations" in summary and out.shape == x0.shape and torch.isfinite(out).all()
    assert (out - x0).abs().mean() < 0.5 * x0.abs().mean()


def test_default_recipe_records_v_of_the_later_blocks_in_fp8_host_memory(case):
    """Video defaults: 'auto' blocks = the later half, 'auto' dtype = fp8, 'auto' device = host memory; the bytes held
    are exactly entries x heads x L x head_dim fp8 values (image tokens only: Wan has no text in its self-attention,
    text_tokens image_only for HunyuanVideo)."""
    base, spy = with_spy(case.model)
    inv, rec = invert(base, ff.conditioning(case.name, 7, 1), ff.latent(case.name), cache(dtype="auto", text="image_only"))
    store = rec.features
    assert store.plan.blocks == tuple((k, i) for k, i, _ in case.blocks)
    assert store.plan.spec.dtype == "fp8" and store.device.type == "cpu" and store.image_tokens == case.L
    head_dim = spy.bhsd(("invert",) + SOURCE + (case.blocks[0][2],)).shape[-1]
    assert store.nbytes == len(case.blocks) * case.heads * case.L * head_dim
    assert all(t.dtype == torch.float8_e4m3fn for _, t in store.items())


def test_budget_estimate_is_the_bytes_recorded(case):
    """The Inverter's estimate before the first evaluation equals what it then holds: Wan's self-attention carries no
    text tokens (text enters by cross-attention), so a budget one byte short is refused and the exact one is not."""
    spec = N("FireFlowFeatureCache").make(True, False, False, "auto", "auto", 1, "reference", "auto", "auto",
                                          "auto", 8.0)[0]
    inv, rec = invert(case.model, ff.conditioning(case.name, 7, 1), ff.latent(case.name), spec)
    exact = rec.features.nbytes
    tight = dataclasses.replace(spec, max_gb=exact / 2 ** 30)
    invert(case.model, ff.conditioning(case.name, 7, 1), ff.latent(case.name), tight)
    with pytest.raises(ValueError, match=r"over max_cache_gb") as refused:
        invert(case.model, ff.conditioning(case.name, 7, 1), ff.latent(case.name),
               dataclasses.replace(spec, max_gb=(exact - 1) / 2 ** 30))
    assert "device cpu" not in str(refused.value)  # video already keeps it in host memory
    if case.name.startswith("wan"):  # 4 blocks, the later half recorded: the last quarter is what is left to offer
        assert "single_blocks 3-3" in str(refused.value)


def test_records_the_self_attention_image_tokens_frame_by_frame(case):
    base, spy = with_spy(case.model)
    inv, rec = invert(base, ff.conditioning(case.name, 7, 1), ff.latent(case.name), cache(text="image_only"))
    store = rec.features
    assert store.plan.entries == len(case.blocks)
    assert len(spy.keys() & {("invert",) + SOURCE + (n,) for n in range(case.calls + 1)}) == case.calls
    for kind, index, n in case.blocks:
        seen = spy.bhsd(("invert",) + SOURCE + (n,))
        assert seen.shape[2] == case.T + case.L
        stored = store.get(*SOURCE, kind, index)["v"]
        for f in range(FRAMES):  # frame f's tokens, in the model's own (frame, row, column) order
            tokens = slice(f * case.per_frame, (f + 1) * case.per_frame)
            assert torch.equal(stored[:, :, tokens], seen[:, :, case.image()][:, :, tokens])


def test_edit_replaces_only_the_self_attention_image_tokens(case):
    base, spy = with_spy(case.model)
    inv, rec = invert(base, ff.conditioning(case.name, 7, 1), ff.latent(case.name), cache(text="image_only"))
    target = ff.conditioning(case.name, 7, 2)
    plain, summary = edit_plain_and_patched(base, spy, inv, rec, target)
    assert f"{STEPS + 1} evaluations" in summary
    assert f"injected {len(case.blocks)} block calls at (step, call) [(0, 1)]" in summary
    if case.T == 0:
        assert "self-attention over the image tokens" in summary
    first = min(case.blocks, key=lambda b: b[2])
    for kind, index, n in case.blocks:
        got = spy.bhsd(("sample", 0, MID, n))
        assert torch.equal(got[:, :, case.image()], rec.features.get(*SOURCE, kind, index)["v"])
    for n in range(case.calls):  # every other call keeps its own keys and values (text and CLIP-vision included)
        if n in {b[2] for b in case.blocks}:
            continue
        if case.T == 0 and n > first[2]:  # cross-attention after the injected block: k, v come from the text alone
            for feature in ("k", "v"):
                assert torch.equal(spy.bhsd(("sample", 0, MID, n), feature), plain.bhsd(("sample", 0, MID, n), feature))
        elif n < first[2]:
            assert torch.equal(spy.bhsd(("sample", 0, MID, n)), plain.bhsd(("sample", 0, MID, n)))


# --- lead reference frames, image conditioning, refusals -------------------------------------------------------------

def test_hunyuan_video_ref_latent_frames_come_before_the_image_and_are_left_alone():
    """hunyuan_video/model.py: ref_latent tokens are concatenated in front of the image tokens ([ref | img | txt] on
    0.3.75, [txt | ref | img] where text comes first); they are context, never recorded or replaced."""
    c = CASES["hunyuan_video"]
    base, spy = with_spy(ff.build("hunyuan_video"))
    ref = ff.latent("hunyuan_video", seed=5)[:, :, :1]  # one reference frame: 16 tokens

    def cond(seed):
        return [[t, {**d, "ref_latent": ref}] for t, d in ff.conditioning("hunyuan_video", 7, seed)]
    inv, rec = invert(base, cond(1), ff.latent("hunyuan_video"), cache(text="image_only"))
    kind, index, n = c.blocks[0]
    seen = spy.bhsd(("invert",) + SOURCE + (n,))
    assert seen.shape[2] == c.T + 16 + c.L
    assert torch.equal(rec.features.get(*SOURCE, kind, index)["v"], seen[:, :, c.image(lead=16)])
    plain, _ = edit_plain_and_patched(base, spy, inv, rec, cond(2))
    got, ref_run = spy.bhsd(("sample", 0, MID, n)), plain.bhsd(("sample", 0, MID, n))
    lead = slice(c.T, c.T + 16) if c.text_first else slice(0, 16)
    assert torch.equal(got[:, :, lead], ref_run[:, :, lead])
    assert torch.equal(got[:, :, c.image(lead=16)], rec.features.get(*SOURCE, kind, index)["v"])


@pytest.mark.parametrize("name", ["wan21_i2v", "hunyuan_video15"])
def test_image_to_video_with_another_start_image_is_refused_before_work(name):
    base = ff.build(name)
    inv, rec = invert(base, ff.conditioning(name, 7, 1), ff.latent(name), cache())
    other = [[t, {**d, "concat_latent_image": ff.latent(name, seed=7)}] for t, d in ff.conditioning(name, 7, 2)]
    model, calls = counting_clone(patch(base, rec))
    with pytest.raises(ValueError, match="image conditioning .* differ"):
        edit(model, inv, rec, other, cfg=1.0)
    assert calls == []


def test_video_latent_shapes_are_checked():
    wan = ff.build("wan21")
    with pytest.raises(ValueError, match="video model; it takes a video latent"):
        invert(wan, ff.conditioning("wan21", 7, 1), ff.latent("wan21")[:, :, 0])
    with pytest.raises(ValueError, match="video latents need a video model"):
        invert(ff.build("chroma"), ff.conditioning("chroma", 7, 1), torch.randn(1, 16, 5, 8, 8))


def test_meanflow_hunyuan_video15_is_refused_before_work():
    model, calls = counting_clone(ff.build("hunyuan_video15_meanflow"))
    with pytest.raises(ValueError, match="MeanFlow-distilled"):
        invert(model, ff.conditioning("hunyuan_video15_meanflow", 7, 1), ff.latent("hunyuan_video15_meanflow"))
    assert calls == []


def test_context_windows_are_refused_before_work():
    """ComfyUI's Context Windows (Manual) node splits sampling into blended windows: not one ODE."""
    import comfy.context_windows as cw
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode as node
    import inspect
    extra = {"freenoise": False} if "freenoise" in inspect.signature(node.execute).parameters else {}  # newer hosts
    out = node.execute(ff.build("wan21"), 4, 1, cw.ContextSchedules.UNIFORM_STANDARD, 1, False,
                       cw.ContextFuseMethods.PYRAMID, 2, **extra)
    windowed = out.result[0] if hasattr(out, "result") else out[0]
    assert windowed.model_options.get("context_handler") is not None
    model, calls = counting_clone(windowed)
    with pytest.raises(ValueError, match="context windows"):
        invert(model, ff.conditioning("wan21", 7, 1), ff.latent("wan21"))
    assert calls == []


def test_wan_flowrvs_is_refused_before_work():
    """Wan FlowRVS (ComfyUI after 0.3.75) runs an image-to-image flow (IMG_TO_IMG_FLOW sampling), not a velocity
    from noise to data: there is no ODE from the clip to noise to invert."""
    import comfy.model_patcher
    import comfy.model_sampling
    import comfy.supported_models
    if not hasattr(comfy.supported_models, "WAN21_FlowRVS"):
        pytest.skip("this ComfyUI has no Wan FlowRVS (added after 0.3.75)")
    base = ff.build("wan21")
    mc = comfy.supported_models.WAN21_FlowRVS(dict(base.model.model_config.unet_config, model_type="flow_rvs"))
    mc.set_inference_dtype(torch.float32, None)
    model = mc.get_model({}, device="cpu")
    model.diffusion_model.load_state_dict(base.model.diffusion_model.state_dict())
    assert isinstance(model.model_sampling, comfy.model_sampling.IMG_TO_IMG_FLOW)
    cpu = torch.device("cpu")
    rvs, calls = counting_clone(comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu))
    with pytest.raises(ValueError, match="image-to-image flow"):
        invert(rvs, ff.conditioning("wan21", 7, 1), ff.latent("wan21"))
    assert calls == []


def test_video_recipe_is_the_later_half_of_the_blocks_the_model_has():
    """'later' = the later half: Wan's 40 blocks -> 20-39; HunyuanVideo's 40 single blocks -> 20-39 (its 20 double
    blocks left alone); HunyuanVideo 1.5 has 54 double blocks and no single ones -> double 27-53."""
    from fireflow.features import CacheSpec
    fams = PACK.nodes.families
    auto = CacheSpec(single_blocks="auto", double_blocks="auto")
    wan, hyv = fams.WAN.with_recipe(auto, (0, 40)), fams.HUNYUAN_VIDEO.with_recipe(auto, (20, 40))
    hyv15 = fams.HUNYUAN_VIDEO.with_recipe(auto, (54, 0))
    assert (wan.single_blocks, wan.dtype, wan.device) == ("20-39", "fp8", "cpu")
    assert (hyv.double_blocks, hyv.single_blocks) == ("none", "20-39")
    assert (hyv15.double_blocks, hyv15.single_blocks) == ("27-53", "none")
    assert fams.FLUX1.with_recipe(auto, (19, 38)).dtype == "model"  # images keep the model's dtype


def test_hunyuan_video15_super_resolution_model_is_refused_before_work():
    """The distilled SR model is conditioned on a low-resolution video, not a velocity field from noise."""
    import comfy.model_patcher
    import comfy.supported_models
    base = ff.build("hunyuan_video15")
    config = dict(base.model.model_config.unet_config, in_channels=98)
    mc = comfy.supported_models.HunyuanVideo15_SR_Distilled(config)
    mc.set_inference_dtype(torch.float32, None)
    cpu = torch.device("cpu")
    sr, calls = counting_clone(comfy.model_patcher.ModelPatcher(mc.get_model({}, device="cpu"), load_device=cpu,
                                                                offload_device=cpu))
    with pytest.raises(ValueError, match="super-resolution"):
        invert(sr, ff.conditioning("hunyuan_video15", 7, 1), ff.latent("hunyuan_video15"))
    assert calls == []
