"""An artifact run by its own runtime against reference_torch, under the project's tolerance policy."""
from dataclasses import dataclass

import numpy as np
import torch

from ..parity.tolerances import QUANTIZED_TOLERANCES, diff_stats, tolerance_for

# Batch 1 and 3: the artifact was traced with the batch axis open, so no size was used to build it; 3 (not a
# power of two, not 1) shows that the batch really is free and that series do not mix across it.
VERIFY_BATCHES = (1, 3)


@dataclass
class ArtifactCheck:
    max_abs: float  # worst over all batches
    max_rel: float  # max abs diff / max |reference|
    rms_rel: float  # RMS of the error / RMS of the reference: how quantized artifacts are judged
    batches: tuple
    per_batch: tuple  # max abs diff of each batch
    quantize: str = None
    batch_dynamic: bool = True

    @property
    def passed(self):
        if not self.batch_dynamic:
            return False
        if self.quantize:
            return bool(self.rms_rel <= QUANTIZED_TOLERANCES[self.quantize])
        return tolerance_for("float32").passes(self.max_abs)

    def describe(self):
        batches = " and ".join(str(b) for b in self.batches)
        if self.quantize:
            bound = f"relative RMS error {self.rms_rel:.2e} (bound {QUANTIZED_TOLERANCES[self.quantize]:.0e} for " \
                    f"{self.quantize}), max abs diff {self.max_abs:.2e}"
        else:
            bound = f"max abs diff {self.max_abs:.2e} (tolerance {tolerance_for('float32').max_abs:.0e})"
        dynamic = "" if self.batch_dynamic else " | batch axis NOT dynamic"
        return f"vs reference_torch at batch {batches} (seeded): {bound}{dynamic} {'PASS' if self.passed else 'FAIL'}"


def verify_artifact(artifact, reference, batches=VERIFY_BATCHES, seed=0):
    """Run ``artifact`` (an Artifact) and ``reference`` (reference_torch, float32, eval mode) on seeded series."""
    config = artifact.crossformer_config
    rng = np.random.default_rng(seed)
    per_batch, worst_abs, scale, error_square, reference_square, count = [], 0.0, 0.0, 0.0, 0.0, 0
    for batch in batches:
        x = rng.standard_normal((batch, config["in_len"], config["data_dim"])).astype(np.float32)
        with torch.no_grad():
            expected = reference(torch.from_numpy(x)).numpy().astype(np.float64)
        got = artifact.predict_on_batch(x).astype(np.float64)
        max_abs, _ = diff_stats(got, expected)
        per_batch.append(max_abs)
        worst_abs, scale = max(worst_abs, max_abs), max(scale, float(np.max(np.abs(expected))))
        error_square += float(np.sum((got - expected) ** 2))
        reference_square += float(np.sum(expected ** 2))
        count += expected.size
    rms_rel = float(np.sqrt(error_square / reference_square)) if reference_square > 0 else float(np.sqrt(error_square))
    return ArtifactCheck(worst_abs, worst_abs / scale if scale else worst_abs, rms_rel, tuple(batches),
                         tuple(per_batch), artifact.quantize, artifact.batch_is_dynamic())
