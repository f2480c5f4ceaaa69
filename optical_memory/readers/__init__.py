"""OCR backends behind one small interface (`Reader`), and the registry that loads one by name.

Each reader is registered by import path and imported only when asked for, so a reader's heavy
or optional dependencies (onnxruntime models, torch) cost nothing to the others.
"""

from __future__ import annotations

import importlib
from typing import Any

from optical_memory.errors import InvalidArgument, ReaderUnavailable
from optical_memory.readers.base import Reader

__all__ = ["READERS", "Reader", "load_reader"]

# name -> "module:class"
READERS: dict[str, str] = {
    "rapidocr": "optical_memory.readers.rapid:RapidOcrReader",
    "trained": "optical_memory.readers.trained:TrainedReader",
    "template": "optical_memory.readers.template:TemplateReader",  # exact at the hot tier only
    "deepseek": "optical_memory.readers.deepseek:DeepSeekReader",  # the [deepseek] extra; a GPU
    "endpoint": "optical_memory.readers.endpoint:EndpointReader",  # an OpenAI-compatible server (vLLM)
}


def load_reader(name: str, **options: Any) -> Reader:
    """Construct the reader registered as `name` with `options`; its model loads on first use."""
    try:
        target = READERS[name]
    except KeyError:
        valid = ", ".join(repr(known) for known in READERS)
        raise InvalidArgument(f"unknown reader {name!r}; valid readers: {valid}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ReaderUnavailable(f"reader {name!r} is not part of this installation ({module_name} is missing)") from exc
    reader: Reader = getattr(module, class_name)(**options)
    return reader
