"""The self-generated data loop: render -> label -> train -> export (needs the [train] extra: torch, onnx).

    corpus     text of the kinds an agent remembers, and the awkward cases (escapes, look-alikes)
    generate   pages planned, rendered and faded by the archive's own code; labels by construction
    model      the cell reader (config dataclass, forward -> (logits, loss))
    train      the training script (its docstring holds the command that made the shipped weights)
    checkpoint checkpoints that rebuild exactly, and a torch-backed Reader
    export     checkpoint -> optical_memory/models/reader.onnx + reader.json
    evaluate   per-tier CER, exact lines, px per character and image tokens on held-out pages

Serving needs none of this: `optical_memory.readers.trained` runs the exported file with onnxruntime.
"""
