"""Break each feature on purpose and check that the tests named for it fail (issue 10: a test must fail when the
thing it names breaks).

    .host/venv/bin/python scripts/break_check.py            # every breakage (a few minutes)
    .host/venv/bin/python scripts/break_check.py fp8 noop   # the ones whose name contains a word

Each breakage edits one line of a scratch copy of the committed tree (your work tree is never touched) and runs the
named tests there against the same local ComfyUI; the copy's pack is linked into its own ComfyUI base folder.
Prints one line per breakage: CAUGHT (some named test failed) or MISSED, and exits non-zero if any was missed.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOL = "tests/unit/test_solvers.py"
E, HB, BI, DF, INJ = ("tests/host/test_editing.py", "tests/host/test_hardening.py", "tests/host/test_bad_inputs.py",
                      "tests/host/test_defects.py", "tests/unit/test_injection.py")
KX, FAM, SCH, TOK = ("tests/host/test_kontext.py", "tests/host/test_families.py", "tests/host/test_schedules_host.py",
                     "tests/unit/test_tokens.py")
VID, WX = "tests/host/test_video.py", "tests/host/test_wan_experts.py"
Q = "tests/host/test_quality.py"
MU, MH = "tests/unit/test_masking.py", "tests/host/test_masked_edits.py"
RU, RH = "tests/unit/test_rf_inversion.py", "tests/host/test_rf_inversion_host.py"
FU, FH = "tests/unit/test_flowedit.py", "tests/host/test_flowedit_host.py"

# name: (file, exact text, replacement, tests that must fail)
BREAKAGES = {
    "injection is a no-op": ("nodes/attention.py", "q, k, v, text = apply_strategy(", "_, _, _, text = apply_strategy(",
                             [E + "::test_same_prompt_replace_v_reconstructs_at_least_as_well",
                              Q + "::test_v_injection_keeps_the_background_that_plain_editing_loses",
                              E + "::test_fp8_storage_still_edits", E + "::test_prompt_batch_edits_in_one_pass"]),
    "fp8 scale dropped on read": ("fireflow/features.py", "dtype=self.model_dtype) * scale", "dtype=self.model_dtype)",
                                  [DF + "::test_fp8_scales_stay_on_the_device_and_are_applied_on_read",
                                   E + "::test_fp8_storage_still_edits"]),
    "FireFlow carries the start velocity": ("fireflow/solvers.py", "return StepOut(x + h * w, w, x_mid",
                                            "return StepOut(x + h * w, u, x_mid", [SOL]),
    "RF-Solver's 1/2 dropped": ("fireflow/solvers.py", "x + h * v0 + 0.5 * h * h * dv", "x + h * v0 + h * h * dv",
                                [SOL]),
    "tooling loads a second copy of the core": ("scripts/hostlib.py", "host_env.share_core(PACK)", "pass",
                                                ["tests/host/test_pack_loads.py"]),
    "add computed as replace": ("fireflow/injection.py", "return stored if mode == \"replace\" else current + ratio * stored",
                                "return stored", [INJ]),
    "text tokens ignore the policy": ("fireflow/injection.py",
                                      "if text_then == text_now and text_policy != \"image_only\":",
                                      "if text_then == text_now:", [INJ]),
    "core imports the host": ("fireflow/record.py", "import hashlib\n", "import hashlib\nimport latent_preview\n",
                              ["tests/unit/test_core_is_host_free.py"]),
    "reference at N = 1 skips the first call": ("fireflow/injection.py",
                                                "if policy == \"reference\" and not rule.evaluates(steps - 1 - j, c):",
                                                "if policy == \"reference\" and c == FIRST and rule.reuses_midpoint_velocity:",
                                                [INJ, DF + "::test_fireflow_one_step_reference_injects_both_calls"]),
    "missed injections pass silently": ("nodes/attention.py", "        if missed:\n", "        if False:\n",
                                        [DF + "::test_injection_that_never_happens_is_an_error_not_a_plain_sample"]),
    "budget misses a combination that fits": ("fireflow/features.py", "        if best[0] > 1:\n",
                                              "        if False:\n", [INJ]),
    "fingerprint reads the first tensors only": ("nodes/passes.py", "for name, p in dm.state_dict().items():",
                                                 "for name, p in list(dm.state_dict().items())[:4]:",
                                                 [DF + "::test_fine_tune_of_late_blocks_has_another_fingerprint"]),
    "loaded plan trusted": ("fireflow/storage.py", "    if plan != expected:\n", "    if False:\n",
                            [DF + "::test_loaded_plan_must_be_what_its_settings_give"]),
    "load listing rescanned every time": ("nodes/file_nodes.py", "    if dirs and all(", "    if False and all(",
                                          [DF + "::test_load_listing_is_not_rescanned_when_nothing_changed"]),
    "feature conditioning unchecked": ("nodes/checks.py", "    verb, role = (", "    return entries(conds)\n    verb, role = (",
                                       [BI + "::test_recording_refuses_source_conditioning_before_work",
                                        BI + "::test_injection_refuses_target_conditioning_before_work"]),
    "fp16 latent walked as given": ("nodes/passes.py", "return s if s.dtype in (torch.float32, torch.float64) else s.float()",
                                    "return s", [BI + "::test_fp16_latent_gives_the_fp32_result_and_fp32_timesteps"]),
    "fp16 timesteps": ("nodes/flow_sampler.py", "s_in = torch.ones(x.shape[0], device=x.device, dtype=torch.float32)",
                       "s_in = x.new_ones([x.shape[0]])",
                       [BI + "::test_fp16_latent_gives_the_fp32_result_and_fp32_timesteps"]),
    "non-finite output unchecked": ("nodes/flow_sampler.py", "        if not torch.isfinite(v).all():\n",
                                    "        if False:\n",
                                    [BI + "::test_patch_that_divides_by_sigma_is_named_when_output_goes_nan"]),
    "non-finite conditioning unchecked": ("nodes/checks.py", "def check_finite_conditioning(conds, node, what=\"conditioning\"):\n",
                                          "def check_finite_conditioning(conds, node, what=\"conditioning\"):\n    return\n",
                                          [BI + "::test_non_finite_conditioning_refused_before_work"]),
    "text length checked only during the edit": ("nodes/attention.py", "if store.plan.spec.text_tokens == \"full\" and",
                                                 "if False and", [BI + "::test_full_text_policy_refuses_different_lengths_before_work"]),
    # issue 11: family adapters, token layouts, CFG branches, schedules
    "reference tokens taken for the image": ("fireflow/tokens.py",
                                             "return slice(0, text), slice(text + self.lead, text + self.lead + self.image)",
                                             "return slice(0, total - self.image), slice(total - self.image, total)",
                                             [TOK, KX + "::test_edit_replaces_exactly_the_target_image_tokens",
                                              KX + "::test_records_text_and_target_image_only",
                                              FAM + "::test_edit_replaces_exactly_the_target_tokens[flux2]",
                                              FAM + "::test_edit_replaces_exactly_the_target_tokens[qwen_image]"]),
    "image-first order ignored": ("fireflow/tokens.py", "return slice(total - text, total), slice(self.lead, self.lead + self.image)",
                                  "return slice(0, text), slice(text, total)", [TOK, FAM + "::test_records_the_planned_entries_and_tokens[hidream]"]),
    "padding after the image ignored": ("nodes/families.py", "padding=(-image) % self.padding if self.padding else 0",
                                        "padding=0", [FAM + "::test_records_the_planned_entries_and_tokens[z_image]",
                                                      FAM + "::test_edit_replaces_exactly_the_target_tokens[z_image]"]),
    "refiner calls taken for blocks": ("nodes/families.py", "order = [None] * sum(len(getattr(dm, attr)) for attr in self.lead)",
                                       "order = []", [FAM + "::test_records_the_planned_entries_and_tokens[lumina2]",
                                                      FAM + "::test_edit_replaces_exactly_the_target_tokens[z_image]"]),
    "HunyuanImage's host order ignored": ("nodes/families.py", "changes[\"text_first\"] = not getattr(first, \"flipped_img_txt\", False)",
                                          "changes[\"text_first\"] = True",
                                          [FAM + "::test_records_the_planned_entries_and_tokens[hunyuan_image21]"]),
    "numbered calls never restart": ("nodes/attention.py", "            if key != state[\"key\"]:",
                                     "            if state[\"key\"] is None:",
                                     [FAM + "::test_numbered_calls_restart_after_an_interrupted_forward"]),
    "the block's second attention call hooked": ("nodes/families.py", "    attn_call: int = 0", "    attn_call: int = 1",
                                                 [FAM + "::test_records_the_planned_entries_and_tokens[sd35_medium]"]),
    "FLUX.2's front-padded text taken as exact": ("nodes/families.py", "patch=1, text_exact=False, guidance=\"auto\", default_cfg=4.0",
                                                  "patch=1, guidance=\"auto\", default_cfg=4.0",
                                                  [FAM + "::test_edit_replaces_exactly_the_target_tokens[flux2]"]),
    "CFG branch ignored on read": ("fireflow/features.py", "branch = self.branch_for(branch)", "branch = 0",
                                   [FAM + "::test_cfg_inversion_records_each_branch_and_refuses_an_edit_without_cfg"]),
    "CFG rows mixed up": ("nodes/attention.py", "rows = slice(i * size, (i + 1) * size)", "rows = slice(0, size)",
                          [FAM + "::test_cfg_inversion_records_each_branch_and_refuses_an_edit_without_cfg"]),
    "a ModelSampling shift ignored": ("nodes/passes.py", "if \"model_sampling\" in getattr(model, \"object_patches\", {}):",
                                      "if False:", [SCH + "::test_a_shift_set_with_model_sampling_flux_is_followed"]),
    "CFG inversion edited without CFG": ("nodes/attention.py", "if 1 in store.plan.branches and (ctx.cfg == 1 or 1 not in branches):\n                raise",
                                         "if False:\n                raise",
                                         [FAM + "::test_cfg_inversion_records_each_branch_and_refuses_an_edit_without_cfg"]),
    # issue 13: video families
    "Wan's cross-attention hooked": ("nodes/families.py", "recipe=(\"none\", \"later\"),\n             lead_latents",
                                     "recipe=(\"none\", \"later\"), attn_call=1,\n             lead_latents",
                                     [VID + "::test_records_the_self_attention_image_tokens_frame_by_frame[wan21]",
                                      VID + "::test_edit_replaces_only_the_self_attention_image_tokens[wan21]"]),
    "Wan's estimate counts text tokens": ("nodes/sampling_nodes.py", " if fam.joint_text else 0\n", "\n",
                                          [VID + "::test_budget_estimate_is_the_bytes_recorded[wan21]"]),
    "lead frames taken for the image": ("nodes/families.py",
                                        "before = sum(self.image_tokens(tuple(r.shape)) for r in lead)", "before = 0",
                                        [VID + "::test_hunyuan_video_ref_latent_frames_come_before_the_image_and_are_left_alone"]),
    "I2V start image not compared": ("nodes/families.py", "same_conds=(\"c_concat\", \"clip_fea\", \"reference_latent\")",
                                     "same_conds=()",
                                     [VID + "::test_image_to_video_with_another_start_image_is_refused_before_work[wan21_i2v]"]),
    "HunyuanVideo's host order ignored": ("nodes/families.py", "flip_probe=True, video=True", "flip_probe=False, video=True",
                                          [VID + "::test_records_the_self_attention_image_tokens_frame_by_frame[hunyuan_video]"]),
    "video storage defaults ignored": ("nodes/families.py", "            changes[\"dtype\"] = self.storage[0]",
                                       "            changes[\"dtype\"] = \"model\"",
                                       [VID + "::test_default_recipe_records_v_of_the_later_blocks_in_fp8_host_memory[wan21]"]),
    "context windows walked": ("nodes/flow_sampler.py", "    if model_patcher.model_options.get(\"context_handler\") is not None:",
                               "    if False:", [VID + "::test_context_windows_are_refused_before_work"]),
    "Wan 2.2 experts never switch": ("fireflow/schedules.py", "return sum(1 for t in g[:-1] if t >= boundary)",
                                     "return 0", [WX + "::test_each_expert_walks_its_own_steps_in_both_passes"]),
    "segment steps numbered from 0": ("nodes/flow_sampler.py", "ctx.step, ctx.call = ctx.offset + point.step, point.call",
                                      "ctx.step, ctx.call = point.step, point.call",
                                      [WX + "::test_features_are_recorded_by_the_expert_that_walks_the_step"]),
    "an expert's patch plans the other's steps": ("nodes/editing_nodes.py",
                                                  "plan_map = {dst: src for dst, src in whole.items() if dst[0] in span}",
                                                  "plan_map = dict(whole)",
                                                  [WX + "::test_an_injection_window_inside_the_high_noise_steps_needs_no_low_noise_patch"]),
    "unpatched low-noise expert walked": ("nodes/experts.py", "        if lost:\n", "        if False:\n",
                                          [WX + "::test_missing_swapped_or_unpatched_experts_are_refused_before_work"]),
    # issue 12: the toy's quality tests catch a no-op injection (above); a wrong step or mirrored tokens keep the toy's
    # uniform backgrounds just as well (measured: +5.8 and +3.0 dB against +4.7), so the exact tests catch those
    "features injected from the wrong step": ("fireflow/injection.py", "    i = steps - 1 - step\n", "    i = step\n",
                                              [INJ]),
    "features injected into the wrong tokens": ("fireflow/injection.py",
                                                "        rec, include_text = align(cur[f], stored[f], layout, text_policy)\n",
                                                "        rec, include_text = align(cur[f], stored[f].flip(2), layout, text_policy)\n",
                                                [FAM + "::test_edit_replaces_exactly_the_target_tokens[flux2]",
                                                 E + "::test_same_prompt_replace_v_reconstructs_at_least_as_well"]),
    # issue 14: masked edits, RF-Inversion, FlowEdit
    "mask guide never blends": ("fireflow/masking.py", "        return m * x + (1 - m) * ref\n", "        return x\n",
                                [MU + "::test_outside_the_mask_the_edit_returns_the_source_exactly",
                                 MH + "::test_the_unmasked_part_comes_back_as_the_source_latent",
                                 Q + "::test_a_masked_edit_keeps_the_unmasked_pixels_and_edits_inside"]),
    "grid states not projected": ("fireflow/masking.py",
                                  '        return self._blend(x, "state", self.offset + position, t)\n',
                                  "        return x\n",
                                  [MU + "::test_outside_the_mask_the_edit_returns_the_source_exactly",
                                   MH + "::test_the_unmasked_part_comes_back_as_the_source_latent"]),
    "evaluation inputs not blended": ("fireflow/masking.py", "        if point.call == MID:\n            return self._blend(",
                                      "        if False:\n            return self._blend(",
                                      [MU + "::test_every_evaluation_sees_the_inversion_state_outside_the_mask"]),
    "midpoint states filed under the wrong interval": ("fireflow/masking.py",
                                                       "self.mids[self.steps - 1 - (self.offset + point.step)]",
                                                       "self.mids[self.offset + point.step]",
                                                       [MU + "::test_the_trajectory_holds_every_state_the_inversion_evaluated",
                                                        MU + "::test_every_evaluation_sees_the_inversion_state_outside_the_mask"]),
    "tokens weighted column by column": ("fireflow/masking.py", "return F.avg_pool2d(m, patch).flatten(1)",
                                         "return F.avg_pool2d(m, patch).transpose(-1, -2).flatten(1)",
                                         [MU + "::test_token_weights_are_the_mean_over_each_patch_in_row_major_order",
                                          MH + "::test_inject_region_replaces_v_only_in_the_chosen_tokens"]),
    "inject_region ignored": ("nodes/attention.py", 'weights = None if region == "all" else', "weights = None if True else",
                              [MH + "::test_inject_region_replaces_v_only_in_the_chosen_tokens"]),
    "inside and outside swapped": ("nodes/attention.py", 'ctx.token_mask if region == "inside_mask" else 1 - ctx.token_mask',
                                   '1 - ctx.token_mask if region == "inside_mask" else ctx.token_mask',
                                   [MH + "::test_inject_region_replaces_v_only_in_the_chosen_tokens"]),
    "the Inverter drops the noise mask": ("nodes/sampling_nodes.py",
                                          'if k != "samples"}  # a noise mask goes on to the edit',
                                          'if k not in ("samples", "noise_mask")}',
                                          [MH + "::test_a_latent_noise_mask_before_the_inverter_is_the_same_edit"]),
    "SamplerCustom ignores the mask": ("nodes/flow_sampler.py", "    if denoise_mask is not None:\n        hooks.append(",
                                       "    if False:\n        hooks.append(",
                                       [MH + "::test_samplercustom_masked_edit_from_the_inversion_equals_the_sampler_node",
                                        MH + "::test_samplercustom_inpainting_from_noise_keeps_the_latent_outside"]),
    "trajectory not saved": ("fireflow/storage.py", "    if record.trajectory is not None:\n        for kind, items",
                             "    if False:\n        for kind, items",
                             [MH + "::test_a_saved_inversion_keeps_its_trajectory"]),
    "FireFlow carries the controlled velocity": ("fireflow/solvers.py", "        if not self.transforming:\n",
                                                 "        if True:\n",
                                                 [RU + "::test_fireflow_reapplies_the_controller_instead_of_reusing_it",
                                                  RU + "::test_strength_one_lands_on_the_target[last_step-fireflow]"]),
    "reverse controller aims by 1 - t": ("fireflow/control.py", "            u = (x - y) / t\n",
                                         "            u = (x - y) / (1.0 - t + 1e-9)\n",
                                         [RU + "::test_euler_equals_the_papers_algorithms_on_a_linear_grid",
                                          RH + "::test_eta_one_brings_the_edit_back_to_the_source"]),
    "controller window ignored": ("fireflow/control.py", "    for i in range(start, stop):\n",
                                  "    for i in range(steps):\n",
                                  [RU + "::test_strengths_follow_the_window_and_the_trend"]),
    "forward control never installed": ("nodes/sampling_nodes.py", "hooks=[h for h in (controller, path) if h is not None])",
                                        "hooks=[h for h in (path,) if h is not None])",
                                        [RH + "::test_gamma_one_inverts_onto_the_seeded_noise"]),
    "FlowEdit's sides swapped": ("fireflow/flowedit.py", "d = v_tar(z_tar, t, p) - v_src(z_src, t, p)",
                                 "d = v_src(z_src, t, p) - v_tar(z_tar, t, p)",
                                 [FU + "::test_euler_equals_the_published_loop", FH, Q + "::test_flowedit_edits_without_an_inversion"]),
    "FlowEdit's target ignores the noise": ("fireflow/flowedit.py", "                z_tar = z + z_src - x_src\n",
                                            "                z_tar = z\n", [FU + "::test_euler_equals_the_published_loop"]),
    "FlowEdit guider always evaluates the target": ("nodes/flowedit_nodes.py",
                                                    'side = getattr(ctx, "role", None) or "target"', 'side = "target"',
                                                    [FH + "::test_the_node_equals_the_published_loop_on_stock_guiders"]),
    "FlowEdit's source gets the target's guidance": ("nodes/flowedit_nodes.py",
                                                     "with_guidance(source, source_guidance), with_guidance(",
                                                     "with_guidance(source, target_guidance), with_guidance(",
                                                     [FH + "::test_the_node_equals_the_published_loop_on_stock_guiders"]),
}


def scratch_copy():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fireflow-break-"))
    tree = tmp / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), "HEAD"], check=True)
    (tree / ".host").symlink_to(ROOT / ".host")
    return tmp, tree


def run(names):
    tmp, tree = scratch_copy()
    env = {**os.environ, "FIREFLOW_BASE_DIR": str(tmp / "base")}
    (tmp / "base" / "custom_nodes").mkdir(parents=True)
    base = pathlib.Path(os.environ.get("FIREFLOW_BASE_DIR", ROOT / ".host" / "base"))
    if (base / "models").is_dir():  # the model fixtures and the trained toy model, shared rather than rebuilt
        (tmp / "base" / "models").symlink_to(base / "models")
    (tmp / "base" / "custom_nodes" / "fireflow").symlink_to(tree)
    missed = []
    try:
        for name in names:
            path, old, new, tests = BREAKAGES[name]
            target = tree / path
            original = target.read_text()
            assert original.count(old) == 1, f"{name}: the text to break is not found exactly once in {path}"
            target.write_text(original.replace(old, new))
            try:
                r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                                   cwd=tree, env=env, capture_output=True, text=True, timeout=900)
            finally:
                target.write_text(original)
            failed = [ln.split(" ")[1] for ln in r.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
            silent = [t for t in tests if not any(f.startswith(t) for f in failed)]  # a named test that still passes
            caught = r.returncode == 1 and not silent
            print(f"{'CAUGHT' if caught else 'MISSED'}  {name} ({path}): {len(failed)} failed"
                  + "".join(f"\n          {f}" for f in failed[:6]) + "".join(f"\n   passed: {t}" for t in silent),
                  flush=True)
            if not caught:
                missed.append(name)
                print(r.stdout[-2000:])
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return missed


if __name__ == "__main__":
    words = sys.argv[1:]
    chosen = [n for n in BREAKAGES if not words or any(w in n for w in words)]
    sys.exit(1 if run(chosen) else 0)
