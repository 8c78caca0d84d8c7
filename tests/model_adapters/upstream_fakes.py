"""Stand-ins for the upstream model packages, written for cvbench's tests (no upstream code).

`write_crossviewer_checkout(root)` writes `root/CrossViewer/crossviewer/{model,gpu_preprocess}.py`
whose public signatures are those of Thinkirin/Crossview-Suite (`CrossViewerModel.__init__`,
`CrossViewerModel.forward`, `gpu_preprocess.resize_image_mask_torch`; facts from
docs/formats.md §3.1 and the upstream files' signatures). The model records every
argument it receives, expands deferred `<region>` placeholders the way the upstream model does
(token counts from its own `resize_image_mask_torch` over every mask of each view, clamped to its
processor's `max_pixels`), and answers with logits from its one trained parameter.

The CoLVA stand-in (`COLVA_MODELING`) is a transformers remote-code model whose `chat` has the
upstream signature of `InternVLChatModel.chat` and records its arguments.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

VOCAB = {" A": 1, "A": 2, "A.": 3, " B": 4, "B": 5, "B.": 6, " C": 7, "C)": 8, " D": 9, "D": 10}

GPU_PREPROCESS_PY = textwrap.dedent('''
    """Test stand-in: the documented PixelRefer-style per-mask crop and token count, in torch."""
    import math

    import torch
    import torch.nn.functional as F

    CALLS = []


    def resize_image_mask_torch(images, masks, mask_ids, patch_size=14, max_tokens=32, debug=False,
                                debug_prefix="", debug_max=0, debug_every=1, max_resize_pixels=None):
        CALLS.append({"n_masks": len(masks), "mask_ids": list(mask_ids), "max_tokens": max_tokens,
                      "max_resize_pixels": max_resize_pixels})
        resize_images, resize_masks, mask_nums, box_params = [], [], [], []
        for i, mask in enumerate(masks):
            image = images[mask_ids[i]]
            image = image if torch.is_tensor(image) else torch.as_tensor(image)
            h, w = int(image.shape[0]), int(image.shape[1])
            m = mask if torch.is_tensor(mask) else torch.from_numpy(mask)
            m = m.float()
            on = m > 0.5
            if not bool(on.any()):
                crop = torch.zeros((h, w))
                area = 1.0
                box = (0, 0, h - 1, w - 1)
            else:
                ys, xs = torch.nonzero(on, as_tuple=True)
                pad = 2 * patch_size
                top, left = max(0, int(ys.min()) - pad), max(0, int(xs.min()) - pad)
                bottom, right = min(h - 1, int(ys.max()) + pad), min(w - 1, int(xs.max()) + pad)
                crop = m[top:bottom, left:right]
                area = float(on.sum())
                box = (top, left, bottom, right)
                if crop.numel() == 0:
                    crop = torch.zeros((h, w))
            scale = math.ceil(math.sqrt(196 * max_tokens / area))
            if scale == 1 and area / 196 > 100:
                scale = 1 / math.sqrt(area / 196 / 100)
            rh = max(patch_size, int(math.ceil(crop.shape[0] * scale / patch_size) * patch_size))
            rw = max(patch_size, int(math.ceil(crop.shape[1] * scale / patch_size) * patch_size))
            if max_resize_pixels is not None and rh * rw > max_resize_pixels:
                k = math.sqrt(max_resize_pixels / (rh * rw))
                rh = max(patch_size, int(math.floor(rh * k / patch_size)) * patch_size)
                rw = max(patch_size, int(math.floor(rw * k / patch_size)) * patch_size)
            grid = F.interpolate(crop[None, None].float(), size=(rh // patch_size, rw // patch_size),
                                 mode="bilinear", align_corners=False)[0, 0]
            mask_nums.append(min(max_tokens, int(grid.sum().item())))
            resize_images.append(None)
            resize_masks.append(grid)
            box_params.append((box, h, w))
        return resize_images, resize_masks, mask_nums, box_params
''')

MODEL_PY = textwrap.dedent('''
    """Test stand-in for crossviewer.model with the upstream constructor and forward signatures."""
    import inspect

    import numpy as np
    import torch

    from .gpu_preprocess import resize_image_mask_torch

    CALLS = []
    INITS = []
    VOCAB = %r
    MAX_PIXELS = None  # the tests set this to exercise the clamp


    class _Tokenizer:
        def encode(self, text, add_special_tokens=False):
            if text in VOCAB:
                return [VOCAB[text]]
            return [99] * max(2, len(text.split()))


    class _ImageProcessor:
        @property
        def max_pixels(self):
            return MAX_PIXELS


    class _Processor:
        image_processor = _ImageProcessor()

        def __call__(self, text, images, return_tensors):
            return {"pixel_values": torch.zeros(len(images), 3), "image_grid_thw": torch.ones(len(images), 3)}


    class CrossViewerModel(torch.nn.Module):
        def __init__(self,
                     vision_encoder_path="Qwen/Qwen3-VL-8B-Instruct",
                     freeze_vision_encoder=True,
                     freeze_llm=True,
                     use_lora=False,
                     num_object_tokens=10,
                     num_cross_attn_heads=8,
                     contrast_dim=256,
                     temperature=0.07,
                     infonce_weight=1.0,
                     vqa_weight=0.5,
                     triplet_weight=0.0,
                     attn_implementation=None,
                     load_device=None,
                     low_cpu_mem_usage=True,
                     use_global_attention=False,
                     use_consistency_constraint=False,
                     use_supcon=True,
                     consistency_weight=0.1,
                     match_mode="gt",
                     region_source="fused",
                     pixelrefer_mode="full",
                     preprocess_on_gpu=False,
                     region_placeholder="<region>",
                     mask_num=32,
                     debug_pixelrefer=False,
                     debug_pixelrefer_max_steps=1,
                     debug_pixelrefer_max_masks=50,
                     debug_pixelrefer_every=1,
                     debug_pixelrefer_per_mask_preprocess=False,
                     debug_match=False,
                     debug_max_steps=1,
                     debug_nan=False,
                     freeze_pos_encoder=False,
                     unfreeze_lm_head=False,
                     no_mask_mode="sample_tokens"):
            super().__init__()
            frame = inspect.currentframe()
            INITS.append({k: v for k, v in frame.f_locals.items() if k not in ("self", "frame", "__class__")})
            self.region_placeholder = region_placeholder
            self.mask_num = mask_num
            self.answer_bias = torch.nn.Parameter(torch.zeros(100))  # trained: the checkpoint must supply it
            self.backbone = torch.nn.Parameter(torch.ones(3), requires_grad=False)  # frozen base weights
            self.tokenizer = _Tokenizer()
            self.processor = _Processor()

        def _max_pixels(self):
            value = self.processor.image_processor.max_pixels
            return 28 * 28 * 1280 if value is None else int(value)

        def forward(self, pixel_values, image_grid_thw, masks=None, raw_images=None, questions=None, answers=None,
                    compute_infonce=None, cutoff_len=None, use_all_views_for_vqa=False,
                    use_all_views_for_infonce=False, target_indices=None, object_ids=None,
                    region_refs=None, region_token_counts=None, match_mode=None, region_source=None,
                    use_retrieval_inference=False, retrieval_topk=1,
                    retrieval_source_view=0, retrieval_target_view=1,
                    additional_pixel_values=None, additional_grid_thw=None,
                    additional_masks=None, additional_box_params=None):
            call = dict(pixel_values=pixel_values, image_grid_thw=image_grid_thw, masks=masks, raw_images=raw_images,
                        questions=questions, answers=answers, compute_infonce=compute_infonce, cutoff_len=cutoff_len,
                        use_all_views_for_vqa=use_all_views_for_vqa,
                        use_all_views_for_infonce=use_all_views_for_infonce, target_indices=target_indices,
                        object_ids=object_ids, region_refs=region_refs, region_token_counts=region_token_counts,
                        additional_pixel_values=additional_pixel_values, additional_grid_thw=additional_grid_thw,
                        additional_masks=additional_masks, additional_box_params=additional_box_params)
            expanded = list(questions)
            need = region_token_counts is None or all(c is None for c in region_token_counts)
            if need and raw_images is not None and all(r is not None for r in raw_images):
                counts_all = []
                for b, (images, stacks) in enumerate(zip(raw_images, masks)):
                    tensors = [torch.from_numpy(np.asarray(im)) for im in images]
                    flat, ids = [], []
                    for v, stack in enumerate(stacks):
                        for m in stack:
                            flat.append(m)
                            ids.append(v)
                    _, _, nums, _ = resize_image_mask_torch(tensors, flat, ids, patch_size=14,
                                                            max_tokens=self.mask_num,
                                                            max_resize_pixels=self._max_pixels())
                    per_view, k = [], 0
                    for stack in stacks:
                        per_view.append(nums[k:k + len(stack)])
                        k += len(stack)
                    counts_all.append([per_view[v][o] for v, o in region_refs[b]])
                region_token_counts = counts_all
            if region_token_counts is not None:
                for b, counts in enumerate(region_token_counts):
                    for count in counts or []:
                        expanded[b] = expanded[b].replace(self.region_placeholder, "[" + "<REGION>" * count + "]", 1)
            call["expanded_questions"] = expanded
            call["model_token_counts"] = region_token_counts
            CALLS.append(call)
            logits = self.answer_bias.detach()[None, :].clone()
            if "TIE" in questions[0]:
                logits[0, VOCAB["A"]] = logits[0, VOCAB["B"]] = 9.0
            return {"answer_logits": logits}
''') % (VOCAB,)


def write_crossviewer_checkout(root: Path) -> Path:
    package = root / "CrossViewer" / "crossviewer"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(MODEL_PY)
    (package / "gpu_preprocess.py").write_text(GPU_PREPROCESS_PY)
    return root


COLVA_CONFIGURATION = textwrap.dedent("""
    from transformers import PretrainedConfig


    class StubColvaConfig(PretrainedConfig):
        model_type = "stub_colva_upstream"

        def __init__(self, answer="B", **kwargs):
            self.answer = answer
            super().__init__(**kwargs)
""")

COLVA_MODELING = textwrap.dedent("""
    import torch
    from transformers import PreTrainedModel

    from .configuration_stub import StubColvaConfig

    CALLS = []


    class StubColva(PreTrainedModel):
        config_class = StubColvaConfig

        def __init__(self, config, use_flash_attn=False):
            super().__init__(config)
            self.weight_marker = torch.nn.Parameter(torch.zeros(1))
            self.post_init()

        def chat(self, tokenizer, pixel_values, question, generation_config, history=None, return_history=False,
                 num_patches_list=None, IMG_START_TOKEN="<img>", IMG_END_TOKEN="</img>",
                 IMG_CONTEXT_TOKEN="<IMG_CONTEXT>", verbose=False, ot_pixel_values=None, ot_visual_prompts=None):
            CALLS.append(dict(pixel_values=pixel_values, question=question, generation_config=generation_config,
                              history=history, return_history=return_history, num_patches_list=num_patches_list,
                              ot_pixel_values=ot_pixel_values, ot_visual_prompts=ot_visual_prompts,
                              device=str(pixel_values.device)))
            if pixel_values.shape[0] != sum(num_patches_list):
                raise ValueError("tiles and num_patches_list disagree")
            return f"{self.config.answer}."
""")


def write_colva_checkpoint(folder: Path) -> Path:
    """A remote-code folder loadable with AutoModel/AutoTokenizer(trust_remote_code=True)."""
    import json

    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "configuration_stub.py").write_text(COLVA_CONFIGURATION)
    (folder / "modeling_stub.py").write_text(COLVA_MODELING)
    config = {
        "model_type": "stub_colva_upstream",
        "answer": "B",
        "architectures": ["StubColva"],
        "auto_map": {"AutoConfig": "configuration_stub.StubColvaConfig", "AutoModel": "modeling_stub.StubColva"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"weight_marker": torch.zeros(1)}, str(folder / "model.safetensors"))
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["Objects in Image-1: <query object>", "A. 1"],
        trainers.BpeTrainer(
            vocab_size=300, special_tokens=["<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>").save_pretrained(str(folder))
    return folder
