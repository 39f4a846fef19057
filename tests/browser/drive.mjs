// Drives the real ComfyUI frontend in Debian's chromium via playwright-core (no browser download).
// Usage: node drive.mjs config.json  -> prints one JSON result line. Config: {url, playwright, shots,
// workflows: [{name, ui}], run: {ui, api, summaryNode, smallNode}}
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

function graphBounds() {  // [x0, y0, x1, y1] around all nodes (title bars included) and groups
  const graph = window.app.graph, T = window.LiteGraph.NODE_TITLE_HEIGHT;
  const boxes = graph._nodes.map((n) => [n.pos[0], n.pos[1] - T, n.pos[0] + n.size[0], n.pos[1] + n.size[1]])
    .concat((graph._groups || []).map((g) => { const [x, y, w, h] = g.boundingRect; return [x, y, x + w, y + h]; }));
  return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
          Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
}

async function fitGraph(page, width, height) {  // height null: the graph's own aspect ratio (between 700 and 1250)
  const margin = 30, [x0, y0, x1, y1] = await page.evaluate(graphBounds);
  if (height === null) {
    height = Math.round(Math.min(1250, Math.max(700, (width - 2 * margin) * (y1 - y0) / (x1 - x0) + 2 * margin)));
  }
  await page.setViewportSize({ width, height });
  await page.evaluate(([W, H, x0, y0, x1, y1]) => {  // fit the whole graph into the view, centred
    const c = window.app.canvas, margin = 30;
    const scale = Math.min((W - 2 * margin) / (x1 - x0), (H - 2 * margin) / (y1 - y0), 1);
    c.ds.scale = scale;
    c.ds.offset[0] = (W / scale - (x1 - x0)) / 2 - x0;
    c.ds.offset[1] = (H / scale - (y1 - y0)) / 2 - y0;
    c.setDirty(true, true);
  }, [width, height, x0, y0, x1, y1]);
  await page.waitForTimeout(300);
}

async function previewMode(page) {  // only the graph on screen: focus mode, no minimap or canvas info, full detail
  await page.evaluate(async () => {
    const settings = window.app.extensionManager.setting;
    await settings.set("Comfy.Minimap.Visible", false);
    await settings.set("Comfy.Graph.CanvasInfo", false);
    await settings.set("Comfy.Graph.CanvasMenu", false);  // the zoom buttons
    await settings.set("LiteGraph.Canvas.MinFontSizeForLOD", 1);  // no low-detail rendering at preview zoom
    await window.app.extensionManager.command.execute("Workspace.ToggleFocusMode");
  });
}

// How the loaded graph is laid out, in the frontend's own geometry (sizes after load, socket positions).
function layoutReport() {
  const graph = window.app.graph, T = window.LiteGraph.NODE_TITLE_HEIGHT, nodes = graph._nodes;
  const groups = graph._groups || [];
  const box = (n) => [n.pos[0], n.pos[1] - T, n.pos[0] + n.size[0], n.pos[1] + n.size[1]];
  const overlap = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
  const overlaps = [];
  nodes.forEach((a, i) => nodes.slice(i + 1).forEach((b) => {
    if (overlap(box(a), box(b))) overlaps.push([a.title, b.title]);
  }));
  const tooSmall = nodes.filter((n) => { const [w, h] = n.computeSize(); return n.size[0] < w || n.size[1] < h; })
    .map((n) => n.title);
  const inside = (b, g) => {
    const [x, y, w, h] = g.boundingRect;
    return b[0] >= x && b[1] >= y && b[2] <= x + w && b[3] <= y + h;
  };
  const ungrouped = nodes.filter((n) => !groups.some((g) => inside(box(n), g))).map((n) => n.title);
  const links = Object.values(graph.links instanceof Map ? Object.fromEntries(graph.links) : graph.links);
  const wires = links.map((l) => {
    const from = graph.getNodeById(l.origin_id), to = graph.getNodeById(l.target_id);
    return { from, to, a: from.getConnectionPos(false, l.origin_slot), b: to.getConnectionPos(true, l.target_slot) };
  });
  const backwards = wires.filter((w) => w.from.pos[0] + w.from.size[0] > w.to.pos[0])
    .map((w) => [w.from.title, w.to.title]);
  const side = (p, q, r) => (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
  let crossings = 0;  // wires as straight lines between their sockets
  wires.forEach((u, i) => wires.slice(i + 1).forEach((v) => {
    if (side(u.a, u.b, v.a) * side(u.a, u.b, v.b) < 0 && side(v.a, v.b, u.a) * side(v.a, v.b, u.b) < 0) crossings++;
  }));
  return { groups: groups.map((g) => g.title), overlaps, tooSmall, ungrouped, backwards, crossings,
           wires: wires.length };
}

async function runAndWait(page, prompt, summaryNode) {  // queue as this client; wait for the node's summary
  const queued = await page.evaluate(async (p) => {
    const api = window.comfyAPI.api.api;
    const r = await fetch("/prompt", { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify({ prompt: p, client_id: api.clientId }) });
    return await r.json();
  }, prompt);
  await page.waitForFunction((id) => window.app.graph.getNodeById(id)?.fireflowSummary?.includes("evaluations"),
                             summaryNode, { timeout: 300000 });
  await page.waitForTimeout(500);
  return queued;
}

async function nodeSize(page, id) {
  return await page.evaluate((id) => [...window.app.graph.getNodeById(id).size], id);
}

async function showAtZoom1(page, id) {  // the node near the top left of the view, at zoom 1 (canvas unit = CSS px)
  const corner = await page.evaluate((id) => {
    const c = window.app.canvas, n = window.app.graph.getNodeById(id);
    c.ds.scale = 1;
    c.ds.offset[0] = 150 - n.pos[0];
    c.ds.offset[1] = 150 - n.pos[1];
    c.setDirty(true, true);
    const r = c.canvas.getBoundingClientRect();
    return { x: r.left + 150 + n.size[0], y: r.top + 150 + n.size[1] };
  }, id);
  await page.waitForTimeout(400);
  return corner;
}

async function dragCorner(page, id, dx, dy) {  // resize a node as a user does: drag its bottom-right corner
  const { x, y } = await showAtZoom1(page, id);
  await page.mouse.move(x - 3, y - 3);
  await page.mouse.down();
  await page.mouse.move(x - 3 + dx, y - 3 + dy, { steps: 8 });
  await page.mouse.up();
  await page.waitForTimeout(200);
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
  await previewMode(page);
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
    out.workflows[wf.name].layout = await page.evaluate(layoutReport);
    await fitGraph(page, 2000, null);
    await closeDialogs(page);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(cfg.shots, `${wf.name}.jpg`), type: "jpeg", quality: 70 });
  }

  if (cfg.run) {
    await page.evaluate(async (g) => { await window.app.loadGraphData(g); }, cfg.run.ui);
    await page.waitForTimeout(500);
    // A user drags the corner of the summary node to make it larger; another pack node is left at the smallest size
    // the frontend allows before the run (computeSize), where its summary will need more room.
    const dragged = cfg.run.summaryNode, small = cfg.run.smallNode;
    out.resize = { node: dragged, loaded: await nodeSize(page, dragged) };
    await dragCorner(page, dragged, 160, 120);
    out.resize.dragged = await nodeSize(page, dragged);
    out.grow = { node: small, before: await page.evaluate((id) => {
      const n = window.app.graph.getNodeById(id);
      n.setSize(n.computeSize());
      return [...n.size];
    }, small) };
    out.queued = await runAndWait(page, cfg.run.api, cfg.run.summaryNode);
    out.resize.afterRun = await nodeSize(page, dragged);
    out.grow.afterRun = await nodeSize(page, small);
    out.summaries = await page.evaluate(() => Object.fromEntries(window.app.graph._nodes
      .filter((n) => n.fireflowSummary).map((n) => [n.type, n.widgets.find((w) => w.name === "fireflow_summary")?.value])));
    out.summaryFit = {};  // each summary box at zoom 1: does the text fit without scrolling?
    for (const id of await page.evaluate(() => window.app.graph._nodes.filter((n) => n.fireflowSummary).map((n) => n.id))) {
      await showAtZoom1(page, id);
      out.summaryFit[id] = await page.evaluate((id) => {
        const n = window.app.graph.getNodeById(id), el = n.widgets.find((w) => w.name === "fireflow_summary").inputEl;
        return { type: n.type, size: [...n.size], scrollHeight: el.scrollHeight, clientHeight: el.clientHeight };
      }, id);
    }
    out.presetWidget = await page.evaluate(() => {
      const n = window.app.graph._nodes.find((x) => x.type === "FireFlowFeatureCache");
      const w = n?.widgets?.find((x) => x.name === "preset");
      if (!w) return null;
      w.callback("RF-Edit (single 20-37, 5 steps)");
      return { values: w.options.values, single: n.widgets.find((x) => x.name === "single_blocks").value,
               inject: n.widgets.find((x) => x.name === "inject_steps").value,
               serialized: window.app.graph.serialize().nodes.find((x) => x.type === "FireFlowFeatureCache").widgets_values };
    });
    // The workflow as a user opens and runs it (the server's cache emptied first, so every node runs and reports
    // again): every node keeps at least the size it was saved with; that is the screenshot.
    await page.evaluate(() => fetch("/free", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ free_memory: true }) }));
    await page.waitForTimeout(1500);
    await page.evaluate(async (g) => { await window.app.loadGraphData(g); }, cfg.run.ui);
    await page.waitForTimeout(500);
    const sizes = () => page.evaluate(() => Object.fromEntries(window.app.graph._nodes.map((n) => [n.id, [...n.size]])));
    out.untouched = { loaded: await sizes() };
    await runAndWait(page, cfg.run.api, cfg.run.summaryNode);
    out.untouched.afterRun = await sizes();
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
