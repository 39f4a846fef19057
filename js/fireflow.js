// FireFlow frontend extension: shows what the pack's nodes resolved (grid, evaluations) on the node after a run.
// UI only; the backend never depends on it.
import { app } from "../../scripts/app.js";

const PREFIX = "FireFlow";

app.registerExtension({
  name: "fireflow.summary",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith(PREFIX)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text?.join("\n");
      if (!text) return;
      let widget = this.widgets?.find((w) => w.name === "fireflow_summary");
      if (!widget) {
        widget = this.addWidget("text", "fireflow_summary", "", () => {}, { serialize: false });
      }
      widget.value = text;
      this.setDirtyCanvas(true, true);
    };
  },
});
