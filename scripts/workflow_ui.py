"""The UI (LiteGraph) format of a workflow from its API graph and the real server's /object_info: sockets, links and
widget values as the frontend creates them, and a layout in labelled groups, left to right (as ComfyUI's own
templates do): inside a group, columns by dependency depth; inside a column, nodes top to bottom in a given order."""
from collections import defaultdict

def _widget_default(spec):
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if "default" in opts:
        return opts["default"]
    choices = kind if isinstance(kind, list) else opts.get("options")
    return choices[0] if choices else None


def _sockets(info, linked=()):
    """Names of an object_info node's socket inputs, in the order the frontend creates them: the non-widget inputs and
    the widgets in `linked` (widget inputs a link feeds, such as CreateVideo's fps from GetVideoComponents)."""
    spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    order = info.get("input_order", {})
    return [n for n in order.get("required", []) + order.get("optional", []) if not _is_widget(spec[n]) or n in linked]


def _upload(opts):
    """Whether a combo gets the frontend's upload button (one more widget row and one more saved value)."""
    return bool(opts.get("image_upload") or opts.get("video_upload"))


def widget_names(info):
    """Names of an object_info node's widget inputs, in the order the frontend saves their values (seed controls and
    upload buttons add a value after theirs)."""
    spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    order = info.get("input_order", {})
    return [n for n in order.get("required", []) + order.get("optional", []) if _is_widget(spec[n])]


def _is_widget(spec):
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 else {}
    if opts.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


STAGES = ("load", "prompt", "invert", "edit", "sample", "save")  # left to right

GROUP_COLORS = {"load": "#3f789e", "prompt": "#8A8", "invert": "#8A8", "edit": "#b58b2a", "sample": "#b58b2a",
                "save": "#88A"}  # colours of LiteGraph's group palette

# Node sizes: at least what the frontend's computeSize gives (1.32.9: 20 per socket row, 24 per widget, 14 padding;
# the canvas draws the 30-unit title bar above pos), plus room for what appears later (images, run summaries).
SLOT_H, WIDGET_H, NODE_PAD, TITLE_H = 20, 24, 14, 30
TEXT_H = 96  # a multiline prompt box showing a few lines
WIDTH = {"CLIPTextEncode": 400, "VAEEncode": 200, "VAEDecode": 200}
NODE_WIDTH = 300
ROOM = {"LoadImage": 240, "SaveImage": 150, "LoadVideo": 240, "SaveVideo": 240,  # image and video previews
        "FireFlowFeatureCache": WIDGET_H,  # the preset picker the js extension adds
        "FireFlowInverter": 84, "FireFlowSampler": 84, "FireFlowVInjection": 84}  # summary shown after a run
COL_GAP, GROUP_GAP, ROW_GAP, GROUP_PAD, GROUP_TITLE_H = 70, 70, 60, 24, 44


def _node_size(cls, n_slots, widget_specs):
    """[w, h] for a node with n_slots socket rows and these widget specs (image upload and seed control count)."""
    h = SLOT_H * max(n_slots, 1) + NODE_PAD
    for s in widget_specs:
        opts = s[1] if len(s) > 1 else {}
        h += TEXT_H if opts.get("multiline") else WIDGET_H * (1 + bool(opts.get("control_after_generate"))
                                                             + _upload(opts))
    return [WIDTH.get(cls, NODE_WIDTH), h + ROOM.get(cls, 0)]


def _layout(api, links, sizes, stages, rank):
    """{id: [x, y]}: stages left to right, columns by depth inside a stage, nodes in a column ordered by rank; each
    node then sits level with the sockets it connects to (longer wires weigh more, as they bend less gracefully)
    where its column leaves room, so most wires run straight to the right."""
    inputs_of, local = defaultdict(list), {}
    for _, src, _, dst, _, _ in links:
        inputs_of[str(dst)].append(str(src))

    def depth(nid):
        if nid not in local:
            local[nid] = 1 + max((depth(u) for u in inputs_of[nid] if stages[u] == stages[nid]), default=-1)
        return local[nid]
    col, x, xs = {}, 0, []  # column of each node; left edge of each column
    for stage in [s for s in STAGES if s in stages.values()]:
        members = [nid for nid in api if stages[nid] == stage]
        first = len(xs)
        col.update({nid: first + depth(nid) for nid in members})
        x += GROUP_PAD
        for c in range(first, max(col.values()) + 1):
            xs.append(x)
            x += max(sizes[nid][0] for nid in members if col[nid] == c) + COL_GAP
        x += GROUP_PAD - COL_GAP + GROUP_GAP
    ups, downs = defaultdict(list), defaultdict(list)  # id -> [(other id, its socket row, own socket row, weight)]
    for _, src, src_slot, dst, dst_slot, _ in links:
        src, dst = str(src), str(dst)
        ups[dst].append((src, src_slot, dst_slot, col[dst] - col[src]))
        downs[src].append((dst, dst_slot, src_slot, col[dst] - col[src]))
    columns = [sorted((nid for nid in api if col[nid] == c), key=rank.get) for c in range(len(xs))]
    y = {}

    def stack(column, neighbours):  # in order: each node level with its neighbours' sockets (weighted mean), or
        bottom = None  # just below the node above it
        for nid in column:
            wires = neighbours.get(nid)
            if wires:
                top = sum(w * (y[m] + SLOT_H * (theirs - own)) for m, theirs, own, w in wires) / sum(
                    w[3] for w in wires)
            else:
                top = y.get(nid, 0) if bottom is None else bottom
            if bottom is not None:
                top = max(top, bottom + ROW_GAP + TITLE_H)
            y[nid], bottom = top, top + sizes[nid][1]

    for column in columns:
        stack(column, {})
    for _ in range(4):
        for column in columns:
            stack(column, ups)
        for column in columns[::-1]:
            stack(column, downs)
    for column in columns:  # last: level with the inputs
        stack(column, ups)
    top = min(y.values()) - TITLE_H - GROUP_TITLE_H - GROUP_PAD
    return {nid: [round(xs[col[nid]]), round(y[nid] - top)] for nid in api}


def _groups(pos, sizes, stages, titles):
    """LiteGraph groups: one per stage, side by side with one top and bottom, each around its nodes (title bars
    included) with a strip for its title."""
    used = [s for s in STAGES if s in stages.values()]
    y0 = min(p[1] for p in pos.values()) - TITLE_H - GROUP_TITLE_H
    y1 = max(pos[n][1] + sizes[n][1] for n in pos) + GROUP_PAD
    groups = []
    for stage in used:
        members = [nid for nid in pos if stages[nid] == stage]
        x0 = min(pos[n][0] for n in members) - GROUP_PAD
        x1 = max(pos[n][0] + sizes[n][0] for n in members) + GROUP_PAD
        groups.append({"id": len(groups) + 1, "title": titles[stage], "bounding": [x0, y0, x1 - x0, y1 - y0],
                       "color": GROUP_COLORS[stage], "font_size": 24, "flags": {}})
    return groups


def to_ui(api, object_info, stages, titles, rank):
    """LiteGraph (UI) format from an API graph and /object_info: sockets, links, widgets_values, and a layout in
    labelled groups (stages: {id: stage}; titles: {stage: group title}; rank: {id: order inside a column})."""
    nodes, links, consumers, sizes = [], [], defaultdict(list), {}
    for nid, node in api.items():
        for name, v in node["inputs"].items():
            if isinstance(v, list):
                consumers[(v[0], v[1])].append((nid, name))
    link_ids = {}
    for key in sorted(consumers):
        for target in consumers[key]:
            link_ids[(key, target)] = len(link_ids) + 1
    for order, (nid, node) in enumerate(api.items()):
        info = object_info[node["class_type"]]
        spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        order_names = info.get("input_order", {})
        names = order_names.get("required", []) + order_names.get("optional", [])
        inputs, widgets, widget_specs = [], [], []
        for name in names:
            s = spec[name]
            value = node["inputs"].get(name)
            if _is_widget(s):
                widget_specs.append(s)
                opts = s[1] if len(s) > 1 else {}
                if isinstance(value, list):  # a link feeds the widget: a socket naming it; the widget keeps its default
                    inputs.append({"name": name, "type": s[0], "widget": {"name": name},
                                   "link": link_ids[((value[0], value[1]), (nid, name))]})
                    value = None
                widgets.append(value if value is not None else _widget_default(s))
                if opts.get("control_after_generate"):
                    widgets.append("fixed")
                if _upload(opts):
                    widgets.append("image")
            else:
                link = link_ids[((value[0], value[1]), (nid, name))] if isinstance(value, list) else None
                inputs.append({"name": name, "type": s[0], "link": link})
        outputs = []
        for slot, (otype, oname) in enumerate(zip(info["output"], info["output_name"])):
            ls = [link_ids[((nid, slot), t)] for t in consumers.get((nid, slot), [])]
            outputs.append({"name": oname, "type": otype, "links": ls, "slot_index": slot})
            for t, lid in zip(consumers.get((nid, slot), []), ls):
                linked = {k for k, v in api[t[0]]["inputs"].items() if isinstance(v, list)}
                target_slot = _sockets(object_info[api[t[0]]["class_type"]], linked).index(t[1])
                links.append([lid, int(nid), slot, int(t[0]), target_slot, otype])
        sizes[nid] = _node_size(node["class_type"], max(len(inputs), len(outputs)), widget_specs)
        nodes.append({"id": int(nid), "type": node["class_type"], "pos": None, "size": sizes[nid],
                      "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                      "title": node["_meta"]["title"], "properties": {"Node name for S&R": node["class_type"]},
                      "widgets_values": widgets})
    links.sort()
    pos = _layout(api, links, sizes, stages, rank)
    for n in nodes:
        n["pos"] = pos[str(n["id"])]
    groups = _groups(pos, sizes, stages, titles)
    width = max(g["bounding"][0] + g["bounding"][2] for g in groups)
    height = max(g["bounding"][1] + g["bounding"][3] for g in groups)
    scale = round(min(1.0, 1500 / width, 800 / height), 2)  # the whole graph in view on a laptop screen
    return {"last_node_id": max(int(n) for n in api), "last_link_id": len(link_ids), "nodes": nodes, "links": links,
            "groups": groups, "config": {}, "extra": {"ds": {"scale": scale, "offset": [40, 80]}}, "version": 0.4}
