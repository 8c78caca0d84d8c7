"""The transformers adapter end to end, on a tiny randomly initialised LLaVA built here.

The model, tokenizer (a byte-level BPE trained on a few strings), chat template and image
processor are saved to a temporary folder and loaded back through the adapter's normal
`from_pretrained` path: no download, CPU only.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cvbench.core.types import (
    Capabilities,
    GenerationConfig,
    Option,
    Prompt,
    PromptImage,
    Request,
)
from cvbench.model_adapters.local_common import require_module
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.transformers_local import (
    TransformersAdapter,
    chat_messages,
    count_generated,
    generation_kwargs,
    make_adapter,
)

SPECIAL_TOKENS = ["<pad>", "<unk>", "<|end|>", "<image>", "<|user|>", "<|assistant|>", "<|system|>"]
CORPUS = [
    "Which object in Image 2 is the one marked in Image 1?",
    "A. the red one",
    "B. the blue one",
    "C. the green one",
    " A B C D E F G H",
    "A B C D",
    "Answer: A",
    "Answer: B",
    "the object highlighted in red",
    "You are a careful assistant.",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}"
    "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
IMAGE_SIDE = 28  # CLIP input side; 14-px patches -> 4 image tokens per image


def build_tiny_llava(folder: Path) -> None:
    """Save a tiny random LLaVA (CLIP vision tower + Llama text model) with its processor to `folder`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=330, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS * 4, trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|end|>",
        extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    image_processor_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    image_processor = image_processor_cls(
        size={"shortest_edge": IMAGE_SIDE}, crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}
    )
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=IMAGE_SIDE,
            patch_size=14,
            projection_dim=32,
        ),
        text_config=transformers.LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(1234)
    model = transformers.LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llava")
    build_tiny_llava(folder)
    return folder


@pytest.fixture(scope="module")
def adapter(model_dir: Path) -> TransformersAdapter:
    return make_adapter(
        str(model_dir), ModelOptions(seed=7, extra={"device": "cpu", "batch_size": 3, "max_wait_ms": 50})
    )


@pytest.fixture(scope="module")
def single_adapter(model_dir: Path) -> TransformersAdapter:
    return make_adapter(str(model_dir), ModelOptions(seed=7, extra={"device": "cpu", "batch_size": 1}))


def png(seed: int, size: tuple[int, int] = (40, 52)) -> PromptImage:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return PromptImage(buffer.getvalue(), "image/png", size[1], size[0], f"Image {seed}")


OPTIONS = (Option("A", "the red one"), Option("B", "the blue one"), Option("C", "the green one"))


def make_request(
    images: tuple[PromptImage, ...],
    *,
    scoring: bool = False,
    text: str | None = None,
    max_tokens: int = 6,
    system: str | None = None,
    sample_id: str = "s",
) -> Request:
    body = text or ("Which object in Image 2 is the one marked in Image 1?\n" + "\n".join(o.line for o in OPTIONS))
    prompt = Prompt(sample_id=sample_id, text=body, images=images, options=OPTIONS, mode="overlay", system=system)
    return Request("hf:tiny", prompt, GenerationConfig(max_tokens=max_tokens, option_logprobs=scoring))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------- pure parts


def test_chat_messages_put_images_in_order_then_text() -> None:
    request = make_request((png(1), png(2)), system="You are a careful assistant.")
    messages = chat_messages(request.prompt)
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "You are a careful assistant."}]}
    assert messages[1]["role"] == "user"
    assert [part["type"] for part in messages[1]["content"]] == ["image", "image", "text"]
    assert messages[1]["content"][-1]["text"] == request.prompt.text
    assert chat_messages(make_request(()).prompt)[0]["content"] == [
        {"type": "text", "text": make_request(()).prompt.text}
    ]


def test_generation_kwargs_greedy_at_temperature_zero_and_sampling_otherwise() -> None:
    greedy = generation_kwargs(GenerationConfig(temperature=0.0, max_tokens=12), pad_token_id=0)
    assert greedy["do_sample"] is False and greedy["max_new_tokens"] == 12 and greedy["temperature"] is None
    sampled = generation_kwargs(GenerationConfig(temperature=0.7, top_p=0.9, max_tokens=5), pad_token_id=0)
    assert sampled == {"max_new_tokens": 5, "pad_token_id": 0, "do_sample": True, "temperature": 0.7, "top_p": 0.9}


def test_count_generated_stops_at_the_first_end_token() -> None:
    assert count_generated([5, 6, 2, 0, 0], {2}) == (3, "stop")
    assert count_generated([5, 6, 7], {2}) == (3, "length")


# ---------------------------------------------------------------------------------- end to end


def test_adapter_identity_capabilities_and_settings(adapter: TransformersAdapter, model_dir: Path) -> None:
    assert adapter.info.model_id == f"hf:{model_dir}"
    assert adapter.info.access == "open"
    assert adapter.capabilities == Capabilities(
        max_images=None, native_regions=False, option_logprobs=True, system_prompt=True
    )
    settings = adapter.settings()
    assert settings["batch_size"] == 3 and settings["dtype"] == "float32" and settings["answer_prefix"] == "Answer:"


def test_chat_template_renders_every_image_before_the_text(adapter: TransformersAdapter) -> None:
    request = make_request((png(1), png(2), png(3)), system="You are a careful assistant.")
    text = adapter.render_text(request.prompt, scoring=True)
    assert text.startswith("<|system|>You are a careful assistant.<|end|><|user|><image><image><image>Which object")
    assert text.endswith("<|end|><|assistant|>Answer:")
    assert adapter.render_text(request.prompt, scoring=False).endswith("<|assistant|>")


def reference_scores(model_dir: Path, adapter: TransformersAdapter, request: Request) -> dict[str, float]:
    """Option scores computed here, without the adapter's batching, from the saved model."""
    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    text = adapter.render_text(request.prompt, scoring=True)
    images = [Image.open(io.BytesIO(im.data)).convert("RGB") for im in request.prompt.images]
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    tokenizer = processor.tokenizer
    scores = {}
    for option in request.prompt.options:
        ids = {
            tokenizer.encode(s, add_special_tokens=False)[0]
            for s in (option.letter, " " + option.letter)
            if len(tokenizer.encode(s, add_special_tokens=False)) == 1
        }
        scores[option.letter] = max(float(logprobs[i]) for i in ids)
    return scores


def test_option_scoring_matches_a_direct_forward_pass(adapter: TransformersAdapter, model_dir: Path) -> None:
    request = make_request((png(11), png(12)), scoring=True)
    response = run(adapter.generate(request))
    assert response.ok, response.error
    assert set(response.option_scores) == {"A", "B", "C"}
    expected = reference_scores(model_dir, adapter, request)
    for letter, value in expected.items():
        assert response.option_scores[letter] == pytest.approx(value, abs=1e-4)
        assert value < 0.0  # log-probabilities
    assert response.text == max(expected, key=expected.get)
    assert response.finish_reason == "scored"
    # 2 images x 4 image tokens plus the text tokens, all counted as input
    assert response.usage.input_tokens > 8 and response.usage.output_tokens == 0


def test_scores_depend_on_the_images_and_their_order(adapter: TransformersAdapter) -> None:
    async def scores() -> list[dict[str, float]]:
        requests = [
            make_request((png(21), png(22)), scoring=True),
            make_request((png(22), png(21)), scoring=True),
            make_request((png(23), png(22)), scoring=True),
        ]
        responses = await asyncio.gather(*(adapter.generate(r) for r in requests))
        return [dict(r.option_scores or {}) for r in responses]

    base, swapped, other = run(scores())
    assert base != swapped
    assert base != other


def test_concurrent_requests_are_batched_and_match_unbatched_generation(
    adapter: TransformersAdapter, single_adapter: TransformersAdapter
) -> None:
    # different text lengths and image counts -> left padding inside a batch
    requests = [
        make_request((png(30 + i), png(40 + i)), text="Which object in Image 2" + " is the one" * i, sample_id=f"s{i}")
        for i in range(5)
    ]

    async def answer(target: TransformersAdapter) -> list[Any]:
        return list(await asyncio.gather(*(target.generate(r) for r in requests)))

    before = len(adapter._batcher.batch_sizes)
    batched = run(answer(adapter))
    sizes = adapter._batcher.batch_sizes[before:]
    assert sum(sizes) == 5 and max(sizes) > 1 and max(sizes) <= 3
    single = run(answer(single_adapter))
    for b, s in zip(batched, single):
        assert b.ok and s.ok
        assert b.text == s.text
        assert b.usage == s.usage
        assert b.finish_reason in ("stop", "length")
        assert 1 <= b.usage.output_tokens <= 6


def test_a_bad_image_fails_only_its_own_request(adapter: TransformersAdapter) -> None:
    broken = PromptImage(b"not an image", "image/png", 10, 10, "Image 2")

    async def answer() -> list[Any]:
        return list(
            await asyncio.gather(
                adapter.generate(make_request((png(50), png(51)), scoring=True)),
                adapter.generate(make_request((png(50), broken), scoring=True)),
                adapter.generate(make_request((png(52), png(53)), scoring=True)),
            )
        )

    good, bad, also_good = run(answer())
    assert good.ok and also_good.ok
    assert not bad.ok and bad.text is None and bad.option_scores is None
    assert bad.error.kind == "invalid_request" and "Image 2" in bad.error.message


def test_text_only_prompts_work(adapter: TransformersAdapter) -> None:
    response = run(adapter.generate(make_request((), scoring=True)))
    assert response.ok and response.text in {"A", "B", "C"}


def test_unknown_option_and_missing_model_are_clear_errors(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ModelResolutionError, match="unknown model option.*batchsize"):
        make_adapter(str(model_dir), ModelOptions(extra={"batchsize": 2}))
    with pytest.raises(ModelResolutionError, match="could not load the processor"):
        make_adapter(str(tmp_path / "nowhere"), ModelOptions(extra={"device": "cpu", "local_files_only": True}))
    with pytest.raises(ModelResolutionError, match="dtype"):
        make_adapter(str(model_dir), ModelOptions(extra={"device": "cpu", "dtype": "int3"}))


def test_missing_backend_package_names_the_extra() -> None:
    with pytest.raises(ModelResolutionError, match=r"pip install 'cvbench\[local\]'"):
        require_module("cvbench_no_such_package_xyz", "local", "The transformers backend (hf:)")
