"""The pack imports inside the real ComfyUI through its own custom-node loader."""
import pathlib

from hostlib import PACK, PACK_LINK, comfy_nodes

PACK_NODES = tuple(node_id for node_id, _, _ in PACK.nodes.REGISTRY)


def test_registry_ids_are_prefixed_and_complete():
    assert all(node_id.startswith("FireFlow") for node_id in PACK_NODES)
    assert {"FireFlowInverter", "FireFlowSampler", "FireFlowSolverSampler", "FireFlowFeatureCache",
            "FireFlowVInjection", "FireFlowSaveInversion", "FireFlowLoadInversion"} <= set(PACK_NODES)


def test_nodes_registered_by_comfyui_loader():
    for node_id in PACK_NODES:
        cls = comfy_nodes.NODE_CLASS_MAPPINGS[node_id]
        assert cls.DESCRIPTION and cls.CATEGORY.startswith("FireFlow")
        assert node_id in comfy_nodes.NODE_DISPLAY_NAME_MAPPINGS


def test_every_input_has_a_tooltip():
    for node_id in PACK_NODES:
        spec = comfy_nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
        for group in spec.values():
            for name, (_, opts) in group.items():
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_web_directory_registered():
    # ComfyUI registers WEB_DIRECTORY under the pack's folder name and serves it at /extensions/<that name>/.
    registered = comfy_nodes.EXTENSION_WEB_DIRS.get(PACK_LINK.name)
    assert registered, f"no web directory registered for {PACK_LINK.name!r}: {sorted(comfy_nodes.EXTENSION_WEB_DIRS)}"
    web_dir = pathlib.Path(registered)
    assert web_dir.resolve() == (PACK_LINK / PACK.WEB_DIRECTORY).resolve()
    assert (web_dir / "fireflow.js").is_file()



def test_one_copy_of_the_core_and_comfyui_nodes_not_shadowed():
    """Tooling that imports `fireflow` gets the pack's own modules (isinstance works across them), and `nodes` is
    ComfyUI's module, not the pack's nodes/ package."""
    import sys

    import fireflow.features
    import fireflow.injection
    import nodes
    from hostlib import ROOT
    assert fireflow.features is PACK.fireflow.features and fireflow.injection is PACK.fireflow.injection
    assert fireflow.features.CacheSpec is PACK.nodes.editing_nodes.CacheSpec
    assert "KSampler" in nodes.NODE_CLASS_MAPPINGS and nodes is comfy_nodes
    assert str(ROOT) not in sys.path and "" not in [p for p in sys.path if p == str(ROOT)]
