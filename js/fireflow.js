// FireFlow frontend extension (UI only; the backend never depends on it).
// 1. After a run, the pack's nodes show what they resolved (solver, grid, evaluations, blocks, cache bytes); a node grows
//    only where that summary needs room, so a size the user chose is kept.
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

// Height (canvas units) the summary's textarea needs to show `text` without scrolling at a node width, counting
// wrapped lines the way the textarea wraps them (at spaces, long words broken); past MAX_LINES the textarea scrolls.
const MAX_LINES = 12;
let measure = null;
function summaryHeight(widget, text, nodeWidth) {
  const el = widget.inputEl;
  const style = el?.isConnected ? getComputedStyle(el) : null;
  const fontSize = parseFloat(style?.fontSize) || 10;
  const lineHeight = parseFloat(style?.lineHeight) || Math.ceil(fontSize * 1.2); // "normal" is about 1.2 em
  const pad = parseFloat(style?.paddingTop) || 2;
  const margin = widget.margin ?? 10;
  measure ??= document.createElement("canvas").getContext("2d");
  measure.font = style?.font || `${fontSize}px monospace`;
  const room = Math.max(nodeWidth - 2 * margin - 2 * pad - 4, 4 * fontSize);
  const space = measure.measureText(" ").width;
  let lines = 0;
  for (const paragraph of text.split("\n")) {
    let used = 0;
    lines += 1;
    for (const word of paragraph.split(" ")) {
      const w = measure.measureText(word).width;
      if (used > 0 && used + space + w > room) { lines += 1; used = 0; }
      if (w > room) { lines += Math.ceil(w / room) - 1; used = w % room; } else used += (used > 0 ? space : 0) + w;
    }
  }
  return Math.min(lines, MAX_LINES) * lineHeight + 2 * pad + 2 * margin + 2;
}

function showSummary(node, text) {
  let widget = node.widgets?.find((w) => w.name === SUMMARY);
  if (!widget) {
    widget = ComfyWidgets.STRING(node, SUMMARY, ["STRING", { multiline: true }], app).widget;
    widget.serialize = false; // never written into the workflow or the prompt
    if (widget.inputEl) {
      widget.inputEl.readOnly = true;
      widget.inputEl.style.opacity = 0.75;
    }
    // The frontend's layout (computeSize) then reserves room for the whole summary at the node's current width.
    widget.options.getMinHeight = () => summaryHeight(widget, node.fireflowSummary ?? "", node.size[0]);
  }
  widget.value = text;
  node.fireflowSummary = text;
  // Grow only where the summary needs room: a size the user chose that is already large enough is kept as it is.
  const [w, h] = node.computeSize();
  if (w > node.size[0] || h > node.size[1]) node.setSize?.([Math.max(node.size[0], w), Math.max(node.size[1], h)]);
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
