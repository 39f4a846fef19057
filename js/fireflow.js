// FireFlow frontend extension (UI only; the backend never depends on it).
// 1. After a run, the pack's nodes show what they resolved (solver, grid, evaluations, blocks, cache bytes).
// 2. The Attention Feature Cache node gets a preset picker that fills its block and step widgets.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const PREFIX = "FireFlow";
const SUMMARY = "fireflow_summary";
const PRESETS = {
  "FireFlow (all single blocks, 1 step)": { single_blocks: "all", double_blocks: "none", inject_steps: 1 },
  "RF-Edit (single 20-37, 5 steps)": { single_blocks: "20-37", double_blocks: "none", inject_steps: 5 },
  "All blocks, 1 step": { single_blocks: "all", double_blocks: "all", inject_steps: 1 },
  "Late single blocks (30-37), 2 steps": { single_blocks: "30-37", double_blocks: "none", inject_steps: 2 },
};

function showSummary(node, text) {
  let widget = node.widgets?.find((w) => w.name === SUMMARY);
  if (!widget) {
    widget = ComfyWidgets.STRING(node, SUMMARY, ["STRING", { multiline: true }], app).widget;
    widget.serialize = false; // never written into the workflow or the prompt
    if (widget.inputEl) {
      widget.inputEl.readOnly = true;
      widget.inputEl.style.opacity = 0.75;
    }
  }
  widget.value = text;
  node.fireflowSummary = text;
  node.setSize?.(node.computeSize());
  node.setDirtyCanvas?.(true, true);
}

function addPresetPicker(node) {
  const picker = node.addWidget("combo", "preset", "custom", (value) => {
    const preset = PRESETS[value];
    if (!preset) return;
    for (const [name, v] of Object.entries(preset)) {
      const w = node.widgets.find((x) => x.name === name);
      if (w) w.value = v;
    }
    node.setDirtyCanvas?.(true, true);
  }, { values: ["custom", ...Object.keys(PRESETS)] });
  picker.serialize = false;
}

app.registerExtension({
  name: "fireflow.nodes",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith(PREFIX)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text?.join("\n");
      if (text) showSummary(this, text);
    };
    if (nodeData.name === "FireFlowFeatureCache") {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        const r = onNodeCreated?.apply(this, arguments);
        addPresetPicker(this);
        return r;
      };
    }
  },
});
console.log("[FireFlow] frontend extension loaded");
