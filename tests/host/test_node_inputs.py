"""Node inputs as ComfyUI sees them: rarely used knobs are flagged advanced, and only ones that are safe to hide."""
from hostlib import PACK, comfy_nodes

EXPECTED_ADVANCED = {
    "FireFlowFeatureCache": {"record_q", "record_k", "double_blocks", "calls", "device", "max_cache_gb",
                             "inject_until_sigma"},
    "FireFlowVInjection": {"q_mode", "k_mode", "v_ratio", "q_ratio", "k_ratio", "inject_region"},
    "FireFlowInverter": {"schedule", "cfg", "expert_boundary", "keep_trajectory"},
    "FireFlowSampler": {"schedule", "expert_boundary", "mask_blend_until"},
    "FireFlowLoadInversion": {"max_size_gb"}, "FireFlowFlowEdit": {"schedule"},
}


def inputs(node_id):
    spec = comfy_nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    return {name: opts for group in spec.values() for name, (_, opts) in group.items()}


def test_advanced_inputs_are_the_rarely_used_ones_and_have_defaults():
    for node_id, _, _ in PACK.nodes.REGISTRY:
        advanced = {n for n, o in inputs(node_id).items() if o.get("advanced")}
        assert advanced == EXPECTED_ADVANCED.get(node_id, set()), node_id
        assert all("default" in inputs(node_id)[n] for n in advanced), node_id  # hidden, they keep a valid value
