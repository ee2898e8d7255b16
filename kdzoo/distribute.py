"""tf.distribute in one place: choosing a strategy, batch sizes per replica, dataset sharding,
and the replica scaling of losses that the ``Distiller`` relies on (defined in
``kdzoo.backend``, which needs no TensorFlow, and re-exported here).

``resolve_strategy("auto")`` picks, in this order:

1. ``TPUStrategy`` if a TPU cluster resolver connects: the ``tpu=`` argument, ``$TPU_NAME``,
   Colab's ``$COLAB_TPU_ADDR`` (a TPU node, ``grpc://<addr>``), or a TPU attached to this VM
   (``/dev/accel*``, or ``$TPU_ACCELERATOR_TYPE`` as on Colab's TPU-VM runtime: ``"local"``);
2. ``MultiWorkerMirroredStrategy`` if ``$TF_CONFIG`` names several workers (``chief`` plus
   ``worker`` tasks);
3. ``MirroredStrategy`` over the GPUs if there is more than one;
4. the default strategy otherwise.

It logs what it chose and why (logger ``"kdzoo"``). Strategies are created before any other
TensorFlow op: ``MultiWorkerMirroredStrategy`` must configure the runtime's collective ops at
start-up, and logical devices (``configure_logical_cpus``) can only be set up then too.

Example:

>>> strategy = kdzoo.distribute.resolve_strategy("auto")
>>> per_replica = kdzoo.distribute.per_replica_batch_size(64, strategy)
>>> train = kdzoo.distribute.with_shard_policy(train)  # FILE for TFRecords, DATA otherwise
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os

import tensorflow as tf

# Re-exported: the replica scaling of losses lives in kdzoo.backend (no TensorFlow needed off
# the TensorFlow backend), callers have always found it here.
from kdzoo.backend import num_replicas_in_sync as num_replicas_in_sync
from kdzoo.backend import scale_for_replicas as scale_for_replicas
from kdzoo.backend import unscale_for_replicas as unscale_for_replicas

log = logging.getLogger("kdzoo")

#: Names accepted by ``resolve_strategy``.
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")

#: Op names of tf.data sources that read files: their datasets are sharded by file.
_FILE_READER_OPS = frozenset(
    {
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "TextLineDataset",
        "ArrayRecordDataset",
    }
)


# ---------------------------------------------------------------------------- choosing
@dataclasses.dataclass(frozen=True)
class StrategyPlan:
    """What ``plan_strategy`` decided, before any strategy exists.

    Attributes:
        kind: ``"default"``, ``"mirrored"``, ``"multiworker"`` or ``"tpu"``.
        reason: why, in words (logged).
        tpu: the TPU to connect to (a name, ``grpc://`` address or ``"local"``), for
            ``kind="tpu"``.
    """

    kind: str
    reason: str
    tpu: str | None = None


@dataclasses.dataclass(frozen=True)
class StrategyChoice:
    """A created strategy and why it was chosen (``select_strategy``).

    Attributes:
        strategy: the ``tf.distribute.Strategy``.
        kind: ``"default"``, ``"mirrored"``, ``"multiworker"`` or ``"tpu"``.
        reason: why it was chosen.
    """

    strategy: tf.distribute.Strategy
    kind: str
    reason: str

    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def __str__(self) -> str:
        return f"{describe_strategy(self.strategy)}: {self.reason}"


def tf_config_workers(environ=None) -> int:
    """How many training tasks (``chief`` plus ``worker``) ``$TF_CONFIG`` names; 0 if unset.

    Raises:
        ValueError: ``TF_CONFIG`` is not JSON with a ``cluster`` dict, or names parameter
            servers (``ps``), which this library does not support.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        config = json.loads(raw)
        cluster = config.get("cluster", {})
        if not isinstance(cluster, dict):
            raise TypeError
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        raise ValueError(
            f'$TF_CONFIG must be JSON like {{"cluster": {{"worker": ["host:port", ...]}}, '
            f'"task": {{"type": "worker", "index": 0}}}}; got {raw[:200]!r}.'
        ) from err
    if cluster.get("ps"):
        raise ValueError(
            "$TF_CONFIG names parameter servers ('ps'); kdzoo supports synchronous "
            "MultiWorkerMirroredStrategy only: list every host under 'worker' (and 'chief')."
        )
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def _tpu_address(tpu, environ) -> tuple[str | None, str]:
    """The TPU to try and where it came from; ``(None, "")`` if nothing suggests a TPU."""
    if tpu:
        return tpu, f"tpu={tpu!r}"
    if environ.get("TPU_NAME"):
        return environ["TPU_NAME"], "$TPU_NAME"
    if environ.get("COLAB_TPU_ADDR"):
        return f"grpc://{environ['COLAB_TPU_ADDR']}", "$COLAB_TPU_ADDR (Colab TPU node)"
    if environ.get("TPU_ACCELERATOR_TYPE") or glob.glob("/dev/accel[0-9]*"):
        return "local", "a TPU attached to this VM"
    return None, ""


def plan_strategy(name="auto", *, tpu=None, environ=None, num_gpus=None) -> StrategyPlan:
    """Decides which strategy ``name`` means here, without creating it.

    Args:
        name: one of ``STRATEGIES``. Defaults to ``"auto"``.
        tpu: a TPU name or ``grpc://`` address (``"local"`` for a TPU VM). Defaults to None:
            found from the environment.
        environ: the environment to read (``$TF_CONFIG``, ``$TPU_NAME``, ``$COLAB_TPU_ADDR``).
            Defaults to ``os.environ``.
        num_gpus: GPUs visible. Defaults to ``len(tf.config.list_physical_devices("GPU"))``.

    Returns:
        A ``StrategyPlan``. For ``"auto"`` a planned TPU may still fail to connect;
        ``select_strategy`` then plans again with ``tpu=False``.

    Raises:
        ValueError: an unknown ``name``, or a malformed ``$TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}. Valid strategies: {', '.join(STRATEGIES)}.")
    environ = os.environ if environ is None else environ
    if name == "default":
        return StrategyPlan("default", "asked for the default strategy")
    if name == "tpu":
        address, source = _tpu_address(tpu, environ)
        if address is None:
            # TPUClusterResolver() may still find a Cloud TPU from GCE metadata.
            return StrategyPlan("tpu", "asked for a TPU (address from the TPU resolver)", "")
        return StrategyPlan("tpu", f"asked for a TPU, from {source}", address)
    workers = tf_config_workers(environ)
    if name == "multiworker":
        if workers:
            return StrategyPlan("multiworker", f"asked for it; $TF_CONFIG names {workers} tasks")
        return StrategyPlan("multiworker", "asked for it; no $TF_CONFIG, so this process only")
    gpus = len(tf.config.list_physical_devices("GPU")) if num_gpus is None else num_gpus
    if name == "mirrored":
        where = f"{gpus} GPUs" if gpus else "the logical CPU devices (no GPU)"
        return StrategyPlan("mirrored", f"asked for it; over {where}")
    # auto
    if tpu is not False:
        address, source = _tpu_address(tpu or None, environ)
        if address is not None:
            return StrategyPlan("tpu", f"auto: a TPU is suggested by {source}", address)
    if workers > 1:
        return StrategyPlan("multiworker", f"auto: $TF_CONFIG names {workers} tasks")
    if gpus > 1:
        return StrategyPlan("mirrored", f"auto: {gpus} GPUs on this machine")
    found = "1 GPU" if gpus == 1 else "no GPU"
    return StrategyPlan(
        "default", f"auto: no TPU, no multi-worker $TF_CONFIG and {found} on this machine"
    )


def connect_tpu(tpu="") -> tf.distribute.TPUStrategy:
    """Connects to a TPU and returns a ``TPUStrategy`` over all its cores.

    Args:
        tpu: a TPU name, a ``grpc://host:port`` address (Colab TPU node), ``"local"`` for a
            TPU VM (Colab's current TPU runtime, Cloud TPU VMs), or ``""`` to let
            ``TPUClusterResolver`` find one.
    """
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    if tpu != "local":  # a TPU VM's chips are local devices: nothing to connect to
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _create(plan: StrategyPlan, devices=None) -> tf.distribute.Strategy:
    if plan.kind == "tpu":
        return connect_tpu(plan.tpu or "")
    if plan.kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if plan.kind == "mirrored":
        if devices is None and not tf.config.list_physical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def select_strategy(name="auto", *, tpu=None, devices=None) -> StrategyChoice:
    """``resolve_strategy``, returning the strategy with the reason it was chosen.

    Args:
        name: one of ``STRATEGIES``. Defaults to ``"auto"``.
        tpu: a TPU name or address for ``"tpu"``/``"auto"`` (see ``plan_strategy``).
        devices: device names for ``"mirrored"`` (default: all GPUs, else all logical CPUs).

    Raises:
        RuntimeError: ``name="tpu"`` and no TPU connects (the message says what was tried).
    """
    plan = plan_strategy(name, tpu=tpu)
    try:
        strategy = _create(plan, devices)
    except Exception as err:  # any TPU connection failure means "no TPU"
        if plan.kind != "tpu":
            raise
        target = plan.tpu or "the resolver's default TPU"
        if name == "tpu":
            raise RuntimeError(
                f"strategy='tpu': could not connect to {target} ({type(err).__name__}: "
                f"{err}). On Colab choose a TPU runtime; elsewhere pass tpu=<name or "
                f"grpc://host:port> or set $TPU_NAME."
            ) from err
        log.warning("The TPU at %s did not connect (%s); choosing without it.", target, err)
        plan = plan_strategy(name, tpu=False)
        strategy = _create(plan, devices)
    choice = StrategyChoice(strategy, plan.kind, plan.reason)
    log.info("Strategy: %s", choice)
    return choice


def resolve_strategy(name="auto", *, tpu=None, devices=None) -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` that ``name`` means on this machine; logs the choice.

    Call it before any other TensorFlow op (see the module docstring).

    Args:
        name: ``"auto"`` (see the module docstring), ``"default"``, ``"mirrored"`` (all GPUs,
            or all logical CPU devices when there is no GPU), ``"multiworker"`` (from
            ``$TF_CONFIG``) or ``"tpu"``. Defaults to ``"auto"``.
        tpu: a TPU name, ``grpc://`` address or ``"local"``. Defaults to the environment's.
        devices: device names for ``"mirrored"``.

    Example:

    >>> strategy = resolve_strategy("auto")
    >>> with strategy.scope():
    ...     model = build_model()
    """
    return select_strategy(name, tpu=tpu, devices=devices).strategy


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """One line: the strategy's class, replicas and, for multi-worker, this worker's task."""
    n = strategy.num_replicas_in_sync
    text = f"{type(strategy).__name__} with {n} replica{'s' if n != 1 else ''}"
    resolver = getattr(strategy, "cluster_resolver", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver:
        if resolver.task_type is not None:
            text += f" (this is task {resolver.task_type}:{resolver.task_id})"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        devices = strategy.extended.worker_devices
        text += f" on {', '.join(d.split('device:')[-1] for d in devices)}"
    return text


def strategy_kind(strategy: tf.distribute.Strategy) -> str:
    """``"tpu"``, ``"multiworker"``, ``"mirrored"`` or ``"default"`` for ``strategy``."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "default"


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes checkpoints and exports (always true on one worker).

    Under ``MultiWorkerMirroredStrategy`` the chief is the ``chief`` task, or ``worker`` 0
    when the cluster has no ``chief``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def num_workers(strategy: tf.distribute.Strategy | None = None) -> int:
    """Processes taking part in training (1 unless multi-worker)."""
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.extended._num_workers  # private: no public accessor in TF 2.21
    return 1


def per_replica_batch_size(global_batch_size: int, strategy=None) -> int:
    """``global_batch_size / num_replicas_in_sync``; configs give the global size.

    Raises:
        ValueError: the global batch does not split evenly over the replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    n = strategy.num_replicas_in_sync
    if isinstance(global_batch_size, bool) or not isinstance(global_batch_size, int):
        raise ValueError(f"`global_batch_size` must be an int; got {global_batch_size!r}.")
    if global_batch_size < n or global_batch_size % n:
        raise ValueError(
            f"`global_batch_size={global_batch_size}` must be a positive multiple of the "
            f"{n} replicas of {type(strategy).__name__}, so each replica gets the same batch."
        )
    return global_batch_size // n


def configure_logical_cpus(count: int) -> list[str]:
    """Splits the CPU into ``count`` logical devices, e.g. to try ``MirroredStrategy`` on a
    laptop. Must run before any other TensorFlow op; returns the device names.

    Raises:
        RuntimeError: TensorFlow has already initialised its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError as err:
        raise RuntimeError(
            "configure_logical_cpus() must run before TensorFlow initialises its devices "
            "(before any op or strategy); call it first thing in the program."
        ) from err
    return [d.name for d in tf.config.list_logical_devices("CPU")]


# ---------------------------------------------------------------------------- datasets
def reads_files(dataset: tf.data.Dataset) -> bool:
    """Whether ``dataset``'s graph reads records from files (TFRecord, text lines...)."""
    # The serialised graph is what tf.data's own FILE auto-sharding inspects.
    ignore = tf.data.experimental.ExternalStatePolicy.IGNORE
    serialized = dataset._as_serialized_graph(external_state_policy=ignore)
    graph = tf.compat.v1.GraphDef.FromString(serialized.numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    return bool(ops & _FILE_READER_OPS)


def shard_policy(dataset: tf.data.Dataset) -> tf.data.experimental.AutoShardPolicy:
    """``FILE`` for datasets read from sharded files (each worker reads whole files),
    ``DATA`` otherwise (every worker builds the same pipeline and keeps its part of each
    global batch, so a global batch is the one a single process would see)."""
    policy = tf.data.experimental.AutoShardPolicy
    return policy.FILE if reads_files(dataset) else policy.DATA


def with_shard_policy(dataset: tf.data.Dataset, policy=None) -> tf.data.Dataset:
    """``dataset`` with its auto-shard policy set (``shard_policy(dataset)`` by default).

    Keras ``fit`` distributes the dataset with this policy. With ``FILE`` there must be at
    least as many files as workers, and the number of batches per worker may differ: pass
    ``steps_per_epoch`` and repeat the dataset.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        shard_policy(dataset) if policy is None else policy
    )
    return dataset.with_options(options)


def distribute_dataset(dataset: tf.data.Dataset, strategy=None, policy=None):
    """``strategy.experimental_distribute_dataset`` with the right shard policy, for custom
    training loops (``fit`` distributes a ``with_shard_policy`` dataset itself)."""
    strategy = strategy or tf.distribute.get_strategy()
    return strategy.experimental_distribute_dataset(with_shard_policy(dataset, policy))


#: Dtype policies ``resolve_precision`` accepts.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")


def resolve_precision(name: str, kind: str) -> str:
    """The Keras dtype policy for ``name`` on a strategy of ``kind``: ``"auto"`` is
    bfloat16 on TPUs, float16 on GPUs and float32 otherwise."""
    if name not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}; got {name!r}.")
    if name != "auto":
        return name
    if kind == "tpu":
        return "mixed_bfloat16"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def float32_outputs(model):
    """Makes the layers that produce ``model``'s outputs compute in float32.

    Under a mixed policy the logits would otherwise be float16/bfloat16; softmax and the
    losses of near-equal large logits need float32 (Keras' mixed-precision guide).
    """
    for output in model.outputs:
        layer = output._keras_history.operation  # private: the producing layer
        if layer.compute_dtype != "float32":
            layer.dtype_policy = "float32"
    return model
