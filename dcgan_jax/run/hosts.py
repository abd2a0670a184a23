"""A run over several processes (one per host): who writes, who decides, and
which rows of each global batch a host feeds its devices.

Every process runs the same program and drives its local devices with
`jax.pmap`; the pmap axis spans every device of every process. Process 0 (the
chief) writes the run's files and makes the decisions all must share
(which checkpoint to resume from, the evaluation classifier, cached
features); the others wait for its answer and raise its error if it fails.
In a single-process run every function here is a plain local call.
"""

import functools
import itertools
from typing import Any, Callable

import jax
from jax import lax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

# How long the others wait at a barrier for process 0, which may be training
# the evaluation classifier meanwhile. A process that dies is caught sooner:
# JAX's heartbeat check stops every process within its timeout.
BARRIER_TIMEOUT_S = 3600

_barrier_ids = itertools.count()


def is_chief() -> bool:
  """Whether this process writes the run's files and decides for all."""
  return jax.process_index() == 0


@functools.cache
def local_axis_indices() -> tuple[int, ...]:
  """The pmap axis index of each local device, in local device order."""
  indices = jax.pmap(lambda _: lax.axis_index('i'), axis_name='i')(
      np.zeros(jax.local_device_count()))
  return tuple(int(i) for i in np.asarray(indices))


def local_rows(global_batch: int) -> np.ndarray:
  """The rows of each global batch that this host's devices take.

  The device at pmap axis index i takes rows [i * b, (i + 1) * b) (b: the
  per-device batch), so the global batch is the same whatever the number of
  hosts sharing it. Rows come in local device order.
  """
  per_device = global_batch // jax.device_count()
  return np.concatenate([np.arange(i * per_device, (i + 1) * per_device)
                         for i in local_axis_indices()])


def local_batch_layout(global_batch: int) -> tuple[int, int]:
  """Returns (local_devices, per_device_batch) for a global batch size.

  Raises:
    ValueError: if the device count does not divide the global batch.
  """
  num_devices = jax.device_count()
  if global_batch <= 0 or global_batch % num_devices:
    raise ValueError(
        f'config.batch_size={global_batch} must be a positive multiple of the '
        f'number of devices ({num_devices}).')
  return jax.local_device_count(), global_batch // num_devices


def reads_own_files(config: Any) -> bool:
  """Whether each host reads its own share of the dataset's files (TFDS
  datasets, unless Debian's files stand in for Fashion-MNIST), so that the
  global batch depends on the number of hosts. Folders and in-memory data
  are tables every host indexes (`input_pipeline`)."""
  return config.data.name not in ('fake', 'folder')


def gather_rows(local: np.ndarray, global_batch: int) -> np.ndarray:
  """Every host's rows, in global order, on every host.

  Args:
    local: (num_batches, local rows, ...): this host's `local_rows` of each
      of num_batches global batches.
    global_batch: the global batch size.

  Returns:
    (num_batches * global_batch, ...).
  """
  rows = local_rows(global_batch)
  if jax.process_count() == 1:
    every, every_rows = local[None], rows[None]
  else:
    every, every_rows = multihost_utils.process_allgather((local, rows))
  out = np.empty((local.shape[0], global_batch, *local.shape[2:]), local.dtype)
  for host_rows, host_values in zip(every_rows, every):
    out[:, host_rows] = host_values
  return out.reshape(-1, *local.shape[2:])


def barrier(name: str) -> None:
  """Waits until every process has reached the barrier of this name."""
  if jax.process_count() > 1:
    ocp.multihost.get_barrier_sync_fn()(
        key=f'dcgan_jax_{name}_{next(_barrier_ids)}',
        timeout_ms=BARRIER_TIMEOUT_S * 1000)


def all_true(flag: bool) -> bool:
  """Whether flag is true on every process."""
  if jax.process_count() == 1:
    return flag
  return bool(np.all(multihost_utils.process_allgather(np.array(flag))))


def _broadcast_bytes(data: bytes) -> bytes:
  size = int(multihost_utils.broadcast_one_to_all(np.array(len(data))))
  if not size:
    return b''
  mine = (np.frombuffer(data, np.uint8) if is_chief()
          else np.zeros(size, np.uint8))
  return multihost_utils.broadcast_one_to_all(mine).tobytes()


def run_on_chief(fn: Callable[[], bytes], what: str) -> bytes:
  """fn() run on process 0 only, its result given to every process.

  Args:
    fn: the decision; its result is serialised as bytes.
    what: the decision, in words, for errors ('load the classifier').

  Raises:
    The chief's exception on the chief, and RuntimeError with its message on
    the others, so that all processes fail together.
  """
  if jax.process_count() == 1:
    return fn()
  result, error = b'', None
  if is_chief():
    try:
      result = fn()
    except Exception as e:  # pylint: disable=broad-except
      error = e
  barrier(what.replace(' ', '_'))
  message = _broadcast_bytes(
      f'{type(error).__name__}: {error}'.encode() if error else b'')
  if message:
    if error:
      raise error
    raise RuntimeError(f'Process 0 failed to {what}: {message.decode()}')
  return _broadcast_bytes(result)
