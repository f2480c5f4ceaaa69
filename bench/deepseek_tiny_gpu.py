"""The deepseek reader's real load and read path on a GPU, with the tiny random DeepSeek-OCR 2 model.

Run from the repository root on a machine with CUDA and the [deepseek,test] extras:
    python bench/deepseek_tiny_gpu.py
It builds the tiny checkpoint the tests use, loads it through `load_reader("deepseek")` (cuda, bf16)
and reads two rows of a rendered page; the text is the tiny model's fixed answer mapped onto rows.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, "tests")
import test_deepseek_reader as t
import torch
import transformers
from PIL import Image

from optical_memory.pages import HEADER, PageFormat, PlannedRow
from optical_memory.readers import load_reader
from optical_memory.render import Renderer

print(
    "torch",
    torch.__version__,
    "cuda",
    torch.cuda.is_available(),
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
)
print("transformers", transformers.__version__)
folder = Path(tempfile.mkdtemp()) / "tiny"
folder.mkdir()
tok = t._tokenizer()
proc = t.DeepseekOcr2Processor(image_processor=t.DeepseekOcr2ImageProcessorPil(), tokenizer=tok)
torch.manual_seed(0)
image_token_id = tok.convert_tokens_to_ids("<image>")
model = t.DeepseekOcr2ForConditionalGeneration(t._config(len(tok), image_token_id))
ids = [tok.encode(ch, add_special_tokens=False)[0] for ch in "." + t.ANSWER]
t._teach_chain(model, [*ids, tok.eos_token_id])
model.generation_config.eos_token_id = tok.eos_token_id
model.generation_config.pad_token_id = tok.pad_token_id
model.save_pretrained(folder)
proc.save_pretrained(folder)
renderer = Renderer(PageFormat(columns=40, rows=12))
rows = [PlannedRow(HEADER, "user · default · 2026-11-25 18:00")] + [PlannedRow(c, t.DRAWN[c]) for c in sorted(t.DRAWN)]
image, geometry = Image.fromarray(renderer.render(rows)), renderer.geometry
reader = load_reader("deepseek", model=str(folder), local_files_only=True)
wanted = sorted(t.DRAWN)[:2]
start = time.perf_counter()
out = reader.read_rows(image, geometry, wanted)
first = time.perf_counter() - start
start = time.perf_counter()
out2 = reader.read_rows(image, geometry, wanted)
second = time.perf_counter() - start
m = reader._model
print(
    json.dumps(
        {
            "rows": wanted,
            "read": out,
            "again": out2,
            "device": str(next(m.parameters()).device),
            "dtype": str(next(m.parameters()).dtype),
            "first_call_s": round(first, 3),
            "second_call_s": round(second, 3),
        }
    )
)
