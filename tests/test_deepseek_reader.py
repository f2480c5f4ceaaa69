"""The DeepSeek-OCR reader end to end on a tiny model of the real class: load, crop, generate, map back.

No weights can be downloaded here, so the checkpoint is built: a DeepseekOcr2ForConditionalGeneration
a few hundred kB in size, with a byte-level tokenizer and the real processor class, saved with
`save_pretrained` into a temp folder and loaded through the reader's own loading code. Its weights
are random except for the language model's output: attention and MLP outputs are zeroed, so each
position's hidden state is its token's embedding, and the output head is set so that every token
predicts a fixed successor. The prompt ends in "." and the chain is . -> H i \\n y o u -> end, so
whatever the image, the model answers "Hi\\nyou" after running the whole vision path on the band.
That makes line mapping checkable: a two-row band maps line for line; any other band falls back to
reading row by row.

If transformers lacks DeepSeek-OCR 2 this module fails at import, on purpose: it is not skipped.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    DeepseekOcr2Config,
    DeepseekOcr2ForConditionalGeneration,
    DeepseekOcr2Processor,
    PreTrainedTokenizerFast,
)
from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import DeepseekOcr2ImageProcessorPil

from optical_memory.errors import InvalidArgument, ReaderUnavailable
from optical_memory.pages import HEADER, PageFormat, PlannedRow
from optical_memory.readers import load_reader
from optical_memory.readers.deepseek import DeepSeekReader, band_image, lines_to_rows, place_cells
from optical_memory.render import Geometry, Renderer

SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<image>"]
ANSWER = "Hi\nyou"  # what the tiny model says about any image, after the prompt's final "."

# Drawn rows (physical row -> cells). Rows 1 and 2 have as many inked cells as "Hi" and "you" have
# characters, so the reader can put each character into its cell and recover the spaces.
DRAWN = {1: "H  i", 2: "    you", 3: "abc def"}


def _tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges: every byte is a token, so any text round-trips."""
    vocab = {token: i for i, token in enumerate(SPECIALS + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=SPECIALS[0],
        eos_token=SPECIALS[1],
        pad_token=SPECIALS[2],
        extra_special_tokens=[SPECIALS[3]],
    )


def _config(vocab_size: int, image_token_id: int) -> DeepseekOcr2Config:
    # The vision tower's learned queries are fixed at 144 (768-px tiles) and 256 (1024-px view), so
    # the processor's sizes stay the real ones; the layers are what is made tiny.
    return DeepseekOcr2Config(
        vision_config={
            "sam_config": {
                "hidden_size": 16,
                "output_channels": 8,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "window_size": 8,
                "global_attn_indexes": [],
                "downsample_channels": [16, 32],
            },
            "encoder_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "max_position_embeddings": 8192,
            },
        },
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 8192,
            "mlp_layer_types": ["dense"],
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 2,
        },
        image_token_id=image_token_id,
    )


def _teach_chain(model: DeepseekOcr2ForConditionalGeneration, chain: list[int]) -> None:
    """Make greedy decoding follow `chain`: each token's successor is the next one in it."""
    text_model = model.model.language_model
    with torch.no_grad():
        for layer in text_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = text_model.embed_tokens.weight
        embed.normal_(0.0, 1.0)
        model.lm_head.weight.zero_()
        for current, successor in itertools.pairwise(chain):
            model.lm_head.weight[successor] = embed[current]  # logit ~ |e|^2 = 64 vs ~N(0, 8) elsewhere


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DeepSeek-OCR 2 checkpoint folder: config, weights, processor and tokenizer files."""
    folder = tmp_path_factory.mktemp("tiny-deepseek-ocr2")
    tokenizer = _tokenizer()
    processor = DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tokenizer)
    torch.manual_seed(0)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    assert isinstance(image_token_id, int)
    model = DeepseekOcr2ForConditionalGeneration(_config(len(tokenizer), image_token_id))
    ids = [tokenizer.encode(ch, add_special_tokens=False)[0] for ch in "." + ANSWER]
    _teach_chain(model, [*ids, tokenizer.eos_token_id])
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def page() -> tuple[Image.Image, Geometry]:
    """A rendered 40 x 12 page: a header, the DRAWN rows, then blank rows."""
    renderer = Renderer(PageFormat(columns=40, rows=12))
    rows = [PlannedRow(HEADER, "user · default · 2026-11-25 18:00")]
    rows += [PlannedRow(code, DRAWN[code]) for code in sorted(DRAWN)]
    return Image.fromarray(renderer.render(rows)), renderer.geometry


def _count_generate(reader: DeepSeekReader) -> list[int]:
    """Record how many times the model is asked to generate (the real generate still runs)."""
    calls: list[int] = []
    real: Callable[..., Any] = reader._model.generate

    def generate(**inputs: Any) -> Any:
        calls.append(int(inputs["pixel_values"].shape[0]))
        return real(**inputs)

    reader._model.generate = generate
    return calls


@pytest.fixture
def reader(checkpoint: Path) -> DeepSeekReader:
    loaded = load_reader("deepseek", model=str(checkpoint), device="cpu", local_files_only=True)
    assert isinstance(loaded, DeepSeekReader)
    return loaded


def test_loads_the_native_class_lazily_and_once(reader: DeepSeekReader, caplog: pytest.LogCaptureFixture) -> None:
    assert reader._model is None  # nothing loads until it is needed
    with caplog.at_level(logging.WARNING, logger="optical_memory.readers.deepseek"):
        reader.load()
    model: Any = reader._model
    assert type(model).__name__ == "DeepseekOcr2ForConditionalGeneration"
    assert reader.variant == "native"
    assert model.device.type == "cpu" and model.dtype == torch.float32  # bf16 is for CUDA only
    assert "runs on the CPU" in caplog.text
    reader.load()
    assert reader._model is model


def test_a_band_whose_lines_match_maps_line_to_row(reader: DeepSeekReader, page: tuple[Image.Image, Geometry]) -> None:
    image, geometry = page
    reader.load()
    calls = _count_generate(reader)
    # Asked out of order: the answer keeps the order asked; rows 1-2 are one band, one generate call.
    assert reader.read_rows(image, geometry, [2, 1]) == ["    you", "H  i"]
    assert calls == [1]


def test_a_band_whose_line_count_is_off_is_read_row_by_row(
    reader: DeepSeekReader, page: tuple[Image.Image, Geometry]
) -> None:
    image, geometry = page
    reader.load()
    calls = _count_generate(reader)
    read = reader.read_rows(image, geometry, [1, 2, 3])
    # Two lines for three rows: rather than guess, each row is read alone; a row's lines are joined.
    # "Hi you" no longer fits the inked cells one to one, so it starts at each row's first inked cell.
    assert read == ["Hi you", "    Hi you", "Hi you"]
    assert len(calls) == 4  # the band, then its three rows
    assert all(isinstance(text, str) and len(text) <= geometry.columns for text in read)


def test_blank_rows_read_blank_without_the_model(reader: DeepSeekReader, page: tuple[Image.Image, Geometry]) -> None:
    image, geometry = page
    assert reader.read_rows(image, geometry, [5, 11, 4]) == ["", "", ""]
    assert reader._model is None


def test_row_outside_the_page_is_refused(reader: DeepSeekReader, page: tuple[Image.Image, Geometry]) -> None:
    image, geometry = page
    with pytest.raises(InvalidArgument, match=r"outside the page's rows 0\.\.11"):
        reader.read_rows(image, geometry, [12])


def test_band_is_only_the_requested_rows_on_white(page: tuple[Image.Image, Geometry]) -> None:
    image, geometry = page
    band = band_image(image, geometry, 1, 2)
    assert band.mode == "RGB"
    assert band.width / band.height <= 3.0  # tiles 3 x 1 at most: no stretched glyphs
    pixels = np.asarray(band.convert("L"))
    inked_rows = np.flatnonzero(pixels.min(axis=1) < 128)
    text_height = 2 * geometry.cell_height
    assert inked_rows[0] > 0 and inked_rows[-1] - inked_rows[0] < text_height  # rows 1-2 only, no header
    assert pixels[inked_rows[-1] + 1 :].min() == 255  # white below: padding, not row 3


# -- errors -----------------------------------------------------------------------------------------


def test_a_missing_checkpoint_says_how_to_get_one(tmp_path: Path, page: tuple[Image.Image, Geometry]) -> None:
    reader = DeepSeekReader(model=str(tmp_path / "nowhere"), device="cpu", local_files_only=True)
    with pytest.raises(ReaderUnavailable, match=r"no DeepSeek-OCR checkpoint at .*hf download"):
        reader.read_rows(*page, [1])


def test_another_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    with pytest.raises(ReaderUnavailable, match=r"not a DeepSeek-OCR checkpoint \(model_type 'bert'\)"):
        DeepSeekReader(model=str(tmp_path), device="cpu").load()


def _remote_code_checkpoint(folder: Path, with_code: bool) -> Path:
    """config.json as deepseek-ai/DeepSeek-OCR ships it: its model classes live in the repository."""
    auto_map = {
        "AutoConfig": "modeling_deepseekocr.DeepseekOCRConfig",
        "AutoModel": "modeling_deepseekocr.DeepseekOCRForCausalLM",
    }
    (folder / "config.json").write_text(json.dumps({"model_type": "deepseek_vl_v2", "auto_map": auto_map}))
    if with_code:
        (folder / "modeling_deepseekocr.py").write_text("raise ImportError('never imported by these tests')\n")
    return folder


def test_v1_without_its_remote_code_says_to_download_the_repository(tmp_path: Path) -> None:
    reader = DeepSeekReader(model=str(_remote_code_checkpoint(tmp_path, with_code=False)), trust_remote_code=True)
    with pytest.raises(ReaderUnavailable, match=r"modeling_deepseekocr\.py\): download the whole model repository"):
        reader.load()


def test_v1_remote_code_runs_only_when_trusted(tmp_path: Path) -> None:
    reader = DeepSeekReader(model=str(_remote_code_checkpoint(tmp_path, with_code=True)), device="cpu")
    with pytest.raises(ReaderUnavailable, match=r"set trust_remote_code = true in \[reader.options\]"):
        reader.load()


# -- line mapping and cell placement --------------------------------------------------------------


def test_lines_to_rows() -> None:
    assert lines_to_rows("a\n\nb  \r\nc", 3) == ["a", "b", "c"]  # blank lines between paragraphs dropped
    assert lines_to_rows("a\nb", 3) is None
    assert lines_to_rows("a\nb\nc\nd", 3) is None
    assert lines_to_rows(" a\n b ", 1) == ["a b"]
    assert lines_to_rows("", 1) == [""]


def test_place_cells() -> None:
    ink = [False, True, True, False, False, True, False]
    assert place_cells("ab c", ink) == " ab  c"  # one character per inked cell: spaces come from pixels
    assert place_cells("abcd", ink) == " abcd"  # counts differ: indented by the leading blank cells
    assert place_cells("abcdefghij", ink) == " abcdef"  # never wider than the row
    assert place_cells("", ink) == ""


# -- v1: remote code, called through infer(eval_mode=True) ------------------------------------------

# A stand-in for deepseek-ai/DeepSeek-OCR's repository code: its infer() has the real signature,
# opens the band file it is given, and returns text only when eval_mode=True (as the real one does).
FAKE_CONFIG_PY = """
from transformers import PretrainedConfig


class FakeOcrConfig(PretrainedConfig):
    model_type = "fake_deepseek_ocr"
"""
FAKE_MODELING_PY = """
import torch
from PIL import Image
from transformers import PreTrainedModel

from .configuration_fake import FakeOcrConfig


class FakeOcrModel(PreTrainedModel):
    config_class = FakeOcrConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(2, 2)
        self.post_init()

    def infer(self, tokenizer, prompt='', image_file='', output_path='', base_size=1024, image_size=640,
              crop_mode=True, test_compress=False, save_results=False, eval_mode=False):
        with Image.open(image_file) as band:
            band.load()
        assert prompt.startswith("<image>") and tokenizer is not None
        if not eval_mode:
            print(ANSWER)
            return None
        return ANSWER


ANSWER = "Hi\\nyou"
"""


@pytest.fixture
def remote_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint whose model class comes from code in the folder, as v1's does; modules cached in tmp."""
    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", [*sys.path])  # transformers appends its modules cache to it
    folder = tmp_path / "fake-deepseek-ocr"
    folder.mkdir()
    (folder / "configuration_fake.py").write_text(FAKE_CONFIG_PY, encoding="utf-8")
    (folder / "modeling_fake.py").write_text(FAKE_MODELING_PY, encoding="utf-8")
    auto_map = {"AutoConfig": "configuration_fake.FakeOcrConfig", "AutoModel": "modeling_fake.FakeOcrModel"}
    config = {"model_type": "fake_deepseek_ocr", "auto_map": auto_map, "architectures": ["FakeOcrModel"]}
    save_file({"proj.weight": torch.zeros(2, 2), "proj.bias": torch.zeros(2)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    _tokenizer().save_pretrained(folder)
    return folder


def test_v1_remote_code_is_called_with_eval_mode(remote_checkpoint: Path, page: tuple[Image.Image, Geometry]) -> None:
    reader = DeepSeekReader(model=str(remote_checkpoint), device="cpu", trust_remote_code=True, local_files_only=True)
    assert reader.read_rows(*page, [1, 2]) == ["H  i", "    you"]
    assert reader.variant == "remote"
