"""Save / Load Inversion: round trip, refusals of foreign, damaged and hostile files (issue 4, item 5)."""
import json
import os

import pytest
import torch

import folder_paths
from hostlib import PACK, comfy_nodes, latent
from test_editing import cache, invert, patch, sample

storage = PACK.fireflow.storage


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


@pytest.fixture(scope="module")
def saved(tiny):
    inv, rec = invert(tiny, cache(dtype="bf16"))
    ui = N("FireFlowSaveInversion").save(inv, rec, "fireflow/test_inversion")["ui"]["text"][0]
    name = ui.split("saved ")[1].split(" [output]")[0]
    return inv, rec, name + " [output]"


def load(name, max_gb=16.0):
    return N("FireFlowLoadInversion").load(name, max_gb)["result"]


def test_round_trip_edits_identically(tiny, saved):
    inv, rec, name = saved
    assert name in N("FireFlowLoadInversion").INPUT_TYPES()["required"]["inversion_file"][0]
    inv2, rec2 = load(name)
    assert torch.equal(inv2["samples"], inv["samples"]) and rec2.grid == rec.grid
    assert rec2.features.nbytes == rec.features.nbytes
    a, _ = sample(patch(tiny, rec), inv, rec)
    b, _ = sample(patch(tiny, rec2), inv2, rec2)
    assert torch.equal(a, b)


def test_file_of_another_model_refused_by_patch(saved):
    import fixtures
    _, _, name = saved
    _, rec = load(name)
    with pytest.raises(ValueError, match="recorded with another model"):
        patch(fixtures.tiny_flux(1), rec)


def _write_input(name, data):
    path = os.path.join(folder_paths.get_input_directory(), name)
    with open(path, "wb") as f:
        f.write(data)
    return name


def _saved_path(name):
    return os.path.join(folder_paths.get_output_directory(), name.removesuffix(" [output]"))


def _rewrite(saved_name, new_name, mutate):
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(_saved_path(saved_name), "pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    mutate(meta, tensors)
    save_file(tensors, os.path.join(folder_paths.get_input_directory(), new_name), metadata=meta)
    return new_name


def _set_version(meta, tensors):
    meta["format_version"] = "99"


def _tamper_grid(meta, tensors):
    rec = json.loads(meta["record"])
    rec["latent_shape"] = [1, 16, 16, 16]
    meta["record"] = json.dumps(rec)


def _drop_feature(meta, tensors):
    tensors.pop(sorted(k for k in tensors if k.startswith("f."))[0])


def _extra_tensor(meta, tensors):
    tensors["payload"] = torch.zeros(3)


def _bad_json(meta, tensors):
    meta["plan"] = "{not json"


BAD = {
    "other version": (_set_version, "format version '99'"),
    "tampered record": (_tamper_grid, "does not match its record"),
    "missing feature": (_drop_feature, "needs"),
    "unexpected tensor": (_extra_tensor, "unexpected tensor"),
    "damaged plan": (_bad_json, "damaged metadata"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_damaged_files_refused(saved, case):
    mutate, needle = BAD[case]
    name = _rewrite(saved[2], f"bad_{case.replace(' ', '_')}.safetensors", mutate)
    with pytest.raises(ValueError, match=needle):
        load(name)


def test_not_safetensors_refused():
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load(_write_input("garbage.safetensors", os.urandom(300)))


def test_truncated_file_refused(saved):
    data = open(_saved_path(saved[2]), "rb").read()
    with pytest.raises(ValueError, match="not a readable safetensors|damaged"):
        load(_write_input("truncated.safetensors", data[: len(data) // 2]))


def test_plain_safetensors_without_metadata_refused():
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(2)}, os.path.join(folder_paths.get_input_directory(), "plain.safetensors"))
    with pytest.raises(ValueError, match="not a FireFlow inversion"):
        load("plain.safetensors")


def test_oversize_refused(saved):
    with pytest.raises(ValueError, match="over the"):
        load(saved[2], max_gb=1e-6)


@pytest.mark.parametrize("name", ["../secret.safetensors", "/etc/passwd", "a/../../x.safetensors", "~/x.safetensors"])
def test_hostile_load_names_refused(name):
    with pytest.raises(ValueError, match="relative name|may not contain"):
        load(name)


@pytest.mark.parametrize("prefix", ["../escape", "/tmp/escape", "fireflow/../../escape"])
def test_hostile_save_prefix_refused(tiny, saved, prefix):
    inv, rec, _ = saved
    with pytest.raises(ValueError, match="relative name|may not contain|outside"):
        N("FireFlowSaveInversion").save(inv, rec, prefix)


def test_link_leading_outside_refused(tmp_path, saved):
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(open(_saved_path(saved[2]), "rb").read())
    link = os.path.join(folder_paths.get_input_directory(), "link.safetensors")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(outside, link)
    with pytest.raises(ValueError, match="leads outside"):
        load("link.safetensors")


def test_save_refuses_latent_of_another_inversion(saved):
    _, rec, _ = saved
    with pytest.raises(ValueError, match="not the one this inversion made"):
        N("FireFlowSaveInversion").save(latent(0, size=16), rec, "fireflow/x")
