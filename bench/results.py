"""What a bench run measured: the pages it read, fidelity per reader and tier, and the other figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from optical_memory.records import PageRecord
from optical_memory.render import Geometry
from optical_memory.tiers import Tier

__all__ = ["Fidelity", "Page", "Results"]


@dataclass
class Page:
    """A sealed page of the run: its hot record, and its image and geometry at every tier."""

    record: PageRecord
    truth: dict[int, str]  # line number -> the line's text on this page
    images: list[tuple[bytes, Geometry]]  # per tier, hot first
    tokens: int  # BPE tokens of the page's text

    @property
    def characters(self) -> int:
        return sum(len(text) for text in self.truth.values())


@dataclass
class Fidelity:
    reader: str
    tier: Tier
    status: str = ""  # why the reader was not run ("not installed", "unavailable"); empty when it was
    pages: int = 0
    lines: int = 0
    exact: int = 0
    chars: int = 0
    edits: int = 0
    tokens: int = 0
    deepseek: int = 0
    claude: int = 0
    px_per_char: float = 0.0
    read_ms: dict[int, float] = field(default_factory=dict)  # page index -> ms to read all its lines

    @property
    def cer(self) -> float:
        return self.edits / max(1, self.chars)

    @property
    def exact_rate(self) -> float:
        return self.exact / max(1, self.lines)


@dataclass
class Results:
    command: str
    machine: dict[str, str]
    corpus: str
    tiers: tuple[Tier, ...]
    pages: list[Page] = field(default_factory=list)
    fidelity: list[Fidelity] = field(default_factory=list)
    speed: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # name -> (p50 ms, p95 ms, n)
    remember: dict[str, float] = field(default_factory=dict)
    storage: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
