// Drives the real ComfyUI frontend in Debian's chromium via playwright-core (no browser download).
// Usage: node drive.mjs config.json  -> prints one JSON result line. Config: {url, playwright, shots,
// workflows: [{name, ui}], run: {ui, api, summaryNode}}
import fs from "node:fs";
import path from "node:path";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { chromium } = await import(cfg.playwright);
const browser = await chromium.launch({
  executablePath: cfg.chromium || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const out = { console: [], workflows: {}, errors: [] };

async function fitGraph(page, width, height) {
  await page.setViewportSize({ width, height });
  await page.evaluate(([W, H]) => {  // fit the whole graph into the view
    const c = window.app.canvas, nodes = window.app.graph._nodes;
    const xs = nodes.flatMap((n) => [n.pos[0], n.pos[0] + n.size[0]]), ys = nodes.flatMap((n) => [n.pos[1], n.pos[1] + n.size[1]]);
    const w = Math.max(...xs) - Math.min(...xs) + 80, h = Math.max(...ys) - Math.min(...ys) + 120;
    const scale = Math.min((W - 120) / w, (H - 200) / h, 1);
    c.ds.scale = scale;
    c.ds.offset = [-Math.min(...xs) + 80 / scale, -Math.min(...ys) + 150 / scale];
    window.app.graph.setDirtyCanvas(true, true);
  }, [width, height]);
  await page.waitForTimeout(300);
}

async function closeDialogs(page) {
  // The first load opens the "Templates" dialog (late); close it and any other modal before screenshots.
  for (let i = 0; i < 3; i++) {
    const closed = await page.evaluate(() => {
      const buttons = Array.from(document.querySelectorAll(".p-dialog button")).filter((b) =>
        (b.getAttribute("aria-label") || "").toLowerCase().includes("close") || b.className.includes("close"));
      buttons.forEach((b) => b.click());
      return buttons.length;
    });
    await page.keyboard.press("Escape");
    if (!closed) break;
    await page.waitForTimeout(300);
  }
}
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => out.console.push({ type: m.type(), text: m.text(), url: m.location()?.url || "" }));
  page.on("pageerror", (e) => out.console.push({ type: "pageerror", text: String(e), url: "" }));
  await page.goto(cfg.url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types?.FireFlowInverter,
                             null, { timeout: 120000 });
  await page.waitForTimeout(2500);
  await closeDialogs(page);
  out.registered = await page.evaluate(() =>
    Object.keys(window.LiteGraph.registered_node_types).filter((k) => k.startsWith("FireFlow")).sort());
  out.extensions = await page.evaluate(() => window.app.extensions.map((e) => e.name).filter((n) => n.startsWith("fireflow")));

  // The node search box (double-click on an empty canvas) finds the pack's nodes.
  await page.evaluate(() => window.app.extensionManager.command.execute("Workspace.SearchBox.Toggle"));
  await page.waitForTimeout(800);
  await page.keyboard.type("FireFlow", { delay: 30 });
  await page.waitForTimeout(1500);
  out.search = await page.evaluate(() => Array.from(document.querySelectorAll("li, .option-container, [role=option]"))
    .map((e) => e.textContent.trim().replace(/\s+/g, " ")).filter((t) => t.includes("FireFlow") ||
      t.includes("Feature Cache") || t.includes("V-Injection")).slice(0, 30));
  await page.screenshot({ path: path.join(cfg.shots, "search.png") });
  await page.keyboard.press("Escape");

  await page.evaluate(() => {  // dismiss the frontend's own announcement banner (it would cover the previews)
    const banner = Array.from(document.querySelectorAll("div")).find((d) => d.textContent.startsWith("Introducing")
                                                                    && d.querySelectorAll("button").length >= 2);
    const buttons = banner ? banner.querySelectorAll("button") : [];
    if (buttons.length) buttons[buttons.length - 1].click();
  });
  for (const wf of cfg.workflows) {
    await page.evaluate(async (g) => { await window.app.loadGraphData(g); }, wf.ui);
    await page.waitForTimeout(500);
    out.workflows[wf.name] = await page.evaluate(() => {
      const nodes = window.app.graph._nodes;
      return {
        count: nodes.length,
        unknown: nodes.filter((n) => !window.LiteGraph.registered_node_types[n.type]).map((n) => n.type),
        links: Object.keys(window.app.graph.links || {}).length,
      };
    });
    await fitGraph(page, 2000, 1250);
    await closeDialogs(page);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(cfg.shots, `${wf.name}.jpg`), type: "jpeg", quality: 70 });
  }

  if (cfg.run) {
    await page.evaluate(async (g) => { await window.app.loadGraphData(g); }, cfg.run.ui);
    out.queued = await page.evaluate(async (p) => {
      const api = window.comfyAPI.api.api;
      const r = await fetch("/prompt", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ prompt: p, client_id: api.clientId }) });
      return await r.json();
    }, cfg.run.api);
    await page.waitForFunction((id) => window.app.graph.getNodeById(id)?.fireflowSummary?.includes("evaluations"),
                               cfg.run.summaryNode, { timeout: 300000 });
    await page.waitForTimeout(500);
    out.summaries = await page.evaluate(() => Object.fromEntries(window.app.graph._nodes
      .filter((n) => n.fireflowSummary).map((n) => [n.type, n.widgets.find((w) => w.name === "fireflow_summary")?.value])));
    out.presetWidget = await page.evaluate(() => {
      const n = window.app.graph._nodes.find((x) => x.type === "FireFlowFeatureCache");
      const w = n?.widgets?.find((x) => x.name === "preset");
      if (!w) return null;
      w.callback("RF-Edit (single 20-37, 5 steps)");
      return { values: w.options.values, single: n.widgets.find((x) => x.name === "single_blocks").value,
               inject: n.widgets.find((x) => x.name === "inject_steps").value,
               serialized: window.app.graph.serialize().nodes.find((x) => x.type === "FireFlowFeatureCache").widgets_values };
    });
    await closeDialogs(page);
    await fitGraph(page, 2000, 1250);
    await page.screenshot({ path: path.join(cfg.shots, "after_run.png") });
  }
} catch (e) {
  out.errors.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
