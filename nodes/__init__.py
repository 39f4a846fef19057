"""ComfyUI glue for the FireFlow core: one registry table generates both mappings.

Node IDs are permanent (prefix "FireFlow"); display names may change.
"""
from .control_nodes import FireFlowForwardControl, FireFlowReverseControl
from .editing_nodes import FireFlowFeatureCache, FireFlowVInjection
from .file_nodes import FireFlowLoadInversion, FireFlowSaveInversion
from .flowedit_nodes import FireFlowFlowEdit, FireFlowFlowEditGuider, FireFlowFlowEditSampler
from .sampling_nodes import FireFlowInverter, FireFlowSampler, FireFlowSolverSampler

REGISTRY = (
    ("FireFlowInverter", FireFlowInverter, "FireFlow Inverter"),
    ("FireFlowSampler", FireFlowSampler, "FireFlow Sampler"),
    ("FireFlowSolverSampler", FireFlowSolverSampler, "FireFlow Solver (SAMPLER)"),
    ("FireFlowFeatureCache", FireFlowFeatureCache, "Attention Feature Cache"),
    ("FireFlowVInjection", FireFlowVInjection, "V-Injection Patch"),
    ("FireFlowSaveInversion", FireFlowSaveInversion, "Save Inversion"),
    ("FireFlowLoadInversion", FireFlowLoadInversion, "Load Inversion"),
    ("FireFlowFlowEdit", FireFlowFlowEdit, "FlowEdit"),
    ("FireFlowFlowEditGuider", FireFlowFlowEditGuider, "FlowEdit Guider"),
    ("FireFlowFlowEditSampler", FireFlowFlowEditSampler, "FlowEdit Sampler (SAMPLER)"),
    ("FireFlowForwardControl", FireFlowForwardControl, "RF-Inversion Forward Control"),
    ("FireFlowReverseControl", FireFlowReverseControl, "RF-Inversion Reverse Control"),
)
NODE_CLASS_MAPPINGS = {node_id: cls for node_id, cls, _ in REGISTRY}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, _, name in REGISTRY}
