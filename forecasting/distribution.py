"""Data-parallel training (`crossformer train --distribute data`) on Keras's distribution API, JAX backend.

Every visible device (every device of every process, after keras.distribution.initialize) holds a replica of the
model; each global batch (--batch_size windows, as on one device) is split across them and the gradients are
summed over all of them by XLA, so the run computes what the single-device run computes, up to the order of
that sum (docs/pipeline.md#training-on-several-devices-or-hosts).

What it takes to keep the single-device semantics:
- a sharded batch must divide by the device count, and the original keeps the partial last batch: every batch is
  padded to one size (the global batch rounded up to a multiple of the devices) by repeating its first window,
  with sample weight 0 on the padding and a loss that divides by the weights' sum, so padding adds exactly 0 to
  the loss and the gradient; one shape is also one XLA compilation;
- validation and test passes predict on the whole (unpadded) batch, replicated on every device, so their losses
  are the single-device ones and identical in every process; early stopping therefore decides the same
  everywhere;
- exactly one process (index 0) takes the run lock, writes the resumable state and the run folder; the others
  follow its verdict on the folder (train, resume after epoch k, keep, refuse), read the same state to resume,
  and wait for it at the end, so that no process leaves while another still needs the collectives.
"""
import math
import os
from dataclasses import dataclass

import numpy as np

from converter.errors import ConfigError
from converter.validation import check_process_options, require_data_parallel_backend

# Process-group settings keras.distribution.initialize reads when they are not passed (also how a launcher such
# as a cluster scheduler may hand them over).
PROCESS_ENVIRONMENT = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                       "KERAS_DISTRIBUTION_PROCESS_ID")


@dataclass(frozen=True)
class DataParallelPlan:
    """Where a data-parallel run runs: ``devices`` in all, ``processes`` of them, this one ``process_index``."""

    devices: int
    processes: int = 1
    process_index: int = 0

    @property
    def writes(self):
        """Whether this process writes the run folder, the resumable state and the log."""
        return self.process_index == 0

    def padded_batch(self, batch_size):
        """The one batch size every training step gets: ``batch_size`` rounded up to a multiple of the devices."""
        return math.ceil(batch_size / self.devices) * self.devices

    def share(self, value):
        """Process 0's integer ``value``, in every process (a collective: every process must call it)."""
        if self.processes == 1:
            return int(value)
        from jax.experimental import multihost_utils

        return int(multihost_utils.broadcast_one_to_all(np.int64(value)))

    def all_true(self, flag):
        """Whether ``flag`` holds in every process (a collective: every process must call it)."""
        if self.processes == 1:
            return bool(flag)
        from jax.experimental import multihost_utils

        return bool(np.min(multihost_utils.process_allgather(np.int64(bool(flag)))))

    def wait_for_all(self, name):
        """A barrier across the processes (a collective: every process must call it, in the same order)."""
        if self.processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)


def start(distribute, coordinator=None, num_processes=None, process_id=None):
    """The DataParallelPlan of a `--distribute data` run, its processes joined and keras.distribution set; None
    for a single-device run. ConfigError (nothing done) where the backend or the devices cannot do it.

    Must run before any JAX computation in the process: jax.distributed.initialize refuses to run after."""
    check_process_options(distribute, coordinator, num_processes, process_id)
    if distribute != "data":
        return None
    import keras

    require_data_parallel_backend(keras.backend.backend())
    import jax

    if coordinator is not None or any(os.environ.get(name) for name in PROCESS_ENVIRONMENT):
        # CPU devices of several processes exchange through gloo (without it they have no collectives); the
        # setting only concerns the CPU client, and asking the platform first would start JAX too early.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            keras.distribution.initialize(coordinator, num_processes, process_id)
        except (RuntimeError, ValueError) as error:
            raise ConfigError(f"cannot join the processes of the run ({error})") from None
    devices = keras.distribution.list_devices()
    if len(devices) < 2:
        raise ConfigError(f"--distribute data needs several devices, and JAX sees {len(devices)} "
                          f"({devices[0] if devices else 'none'}); on CPU, XLA_FLAGS="
                          "--xla_force_host_platform_device_count=N makes N virtual devices")
    return DataParallelPlan(len(devices), jax.process_count(), jax.process_index())


def use(plan):
    """Lay what is built from here on (the model, its optimizer) and every training batch on all the devices."""
    import keras

    # auto_shard_dataset off: each process feeds its own block of the global batch (padded_batches).
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=keras.distribution.list_devices(), auto_shard_dataset=False))


def stop():
    """Back to single-device placement (for what follows training in this process: the saved copy, metrics)."""
    import keras

    keras.distribution.set_distribution(None)


def padded_batches(batches, plan):
    """A PyDataset of ``batches`` (a WindowBatches) for a data-parallel fit: (x, y, sample weight), every batch
    padded to plan.padded_batch rows (its first window repeated, weight 0), and this process's contiguous block
    of it (process i feeds the mesh's i-th block of devices)."""
    import keras

    size = plan.padded_batch(batches.batch_size)
    block = size // plan.processes
    rows = slice(plan.process_index * block, (plan.process_index + 1) * block)

    class PaddedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.batches = batches

        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            x, y = batches[index]
            weight = np.zeros((size, y.shape[1]), dtype=y.dtype)  # per forecast step: the loss's element shape
            weight[:len(x)] = 1
            if len(x) < size:
                x = np.concatenate([x, np.repeat(x[:1], size - len(x), axis=0)])
                y = np.concatenate([y, np.repeat(y[:1], size - len(y), axis=0)])
            return x[rows], y[rows], weight[rows]

        def on_epoch_end(self):
            batches.on_epoch_end()

    return PaddedBatches()
