"""What a layer-by-layer comparison found: per module, and for the whole model (table, verdict, JSON)."""
import json
from dataclasses import asdict, dataclass, field

from .tolerances import tolerance_for

ROOT_NAME = "(model)"  # how the whole model is named in reports (its torch module name is "")


def display_name(name):
    return name or ROOT_NAME


def compact_shape(shape):
    """[4, 7, 8, 64] -> '4x7x8x64'; several outputs -> the first and how many more."""
    if shape and isinstance(shape[0], list):
        return "x".join(map(str, shape[0])) + (f" +{len(shape) - 1}" if len(shape) > 1 else "")
    return "x".join(map(str, shape)) if shape else "-"


@dataclass
class Comparison:
    """One call's outputs compared over all their arrays."""

    max_abs: float
    max_rel: float
    cosine: float
    scale: float  # the largest |PyTorch output| value: what rel is relative to
    problem: str = ""  # why the outputs could not be compared (count or shape mismatch, no counterpart)


def mismatch(problem):
    """A Comparison of outputs that cannot be compared: fails whatever the tolerance."""
    return Comparison(float("inf"), float("inf"), 0.0, 0.0, problem)


@dataclass
class ModuleParity:
    name: str
    kind: str
    calls: int
    shape: object
    max_abs: float = 0.0
    max_rel: float = 0.0
    cosine: float = 1.0
    scale: float = 0.0  # the largest |PyTorch output| value: what rel is relative to
    passed: bool = True
    problem: str = ""  # why it failed beyond the numbers (no counterpart, shape mismatch)
    first_bad_call: int = None  # sequence number of its first call beyond tolerance (orders the failures)

    def record(self, comparison, sequence, tolerance):
        """Fold one call's comparison into this entry; each call is judged on its own."""
        self.max_abs = max(self.max_abs, comparison.max_abs)
        self.max_rel = max(self.max_rel, comparison.max_rel)
        self.cosine = min(self.cosine, comparison.cosine)
        self.scale = max(self.scale, comparison.scale)
        self.problem = self.problem or comparison.problem
        model_output = self.name == ROOT_NAME  # the model's own output: the absolute bound alone (tolerances.py)
        if comparison.problem or not tolerance.passes_output(comparison.max_abs, comparison.scale, model_output):
            self.passed = False
            if self.first_bad_call is None or sequence < self.first_bad_call:
                self.first_bad_call = sequence


@dataclass
class ParityReport:
    dtype: str
    samples: int
    batch: int
    modes: dict = field(default_factory=dict)  # mode -> [ModuleParity] in execution (completion) order
    keras_only: list = field(default_factory=list)

    def first_failure(self, mode):
        """The module whose call went beyond tolerance first in the forward pass (None if all agree)."""
        failing = [m for m in self.modes[mode] if not m.passed]
        return min(failing, key=lambda m: m.first_bad_call).name if failing else None

    @property
    def passed(self):
        return not self.keras_only and all(m.passed for entries in self.modes.values() for m in entries)

    def worst(self, mode):
        return max(self.modes[mode], key=lambda m: m.max_abs)

    def verdict(self):
        tolerance = tolerance_for(self.dtype)
        count = len(next(iter(self.modes.values())))
        modes = " and ".join(self.modes)
        if self.passed:
            worst = self.worst(next(iter(self.modes)))
            return (f"PASS: all {count} modules agree in {modes} mode ({self.dtype}, {self.samples} samples; "
                    f"tolerance abs {tolerance.max_abs:.0e} + rel {tolerance.max_rel:.0e}; worst max abs diff "
                    f"{worst.max_abs:.2e} at {worst.name})")
        parts = [f"{mode}: first diverging module {self.first_failure(mode)}" for mode in self.modes
                 if self.first_failure(mode)]
        if self.keras_only:
            parts.append(f"Keras layers with no PyTorch twin: {', '.join(self.keras_only[:3])}")
        return f"FAIL ({self.dtype}): " + "; ".join(parts)

    def table(self):
        modes = list(self.modes)
        rows = [("module", "shape") + tuple(f"{mode} {col}" for mode in modes for col in ("abs", "rel", "cos"))
                + ("status",)]
        by_mode = [{m.name: m for m in self.modes[mode]} for mode in modes]
        for entry in self.modes[modes[0]]:
            cells = [entry.name, compact_shape(entry.shape)]
            ok = True
            for index in by_mode:
                m = index[entry.name]
                ok = ok and m.passed
                cells += [f"{m.max_abs:.1e}", f"{m.max_rel:.1e}", f"{m.cosine:.9f}"[:11]]
            problem = next((index[entry.name].problem for index in by_mode if index[entry.name].problem), "")
            rows.append(tuple(cells) + ("ok" if ok else f"FAIL {problem}".strip(),))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)

    def to_json(self):
        return json.dumps({"dtype": self.dtype, "samples": self.samples, "batch": self.batch, "passed": self.passed,
                           "verdict": self.verdict(), "keras_only": self.keras_only,
                           "first_failure": {mode: self.first_failure(mode) for mode in self.modes},
                           "tolerance": asdict(tolerance_for(self.dtype)),
                           "modes": {mode: [asdict(m) for m in entries] for mode, entries in self.modes.items()}},
                          indent=1)
