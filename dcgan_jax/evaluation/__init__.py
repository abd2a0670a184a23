"""Sample quality: the metrics by name (`metrics`), the feature networks
(`inception`, the offline `classifier`) and their features and statistics
files (`features`), the distances, the `Evaluator` that scores a
generator or a set of images, and comparisons of recipes over seeds
(`comparison`).

May import `gan/`, `models/`, `run.hosts` and `output/`. Feature networks'
weights load from .npz files, which cannot execute code.
"""

# pylint: disable=unused-import
from dcgan_jax.evaluation.evaluator import Evaluator
from dcgan_jax.evaluation.metrics import best_metric
from dcgan_jax.evaluation.metrics import best_mode
from dcgan_jax.evaluation.metrics import metric_names
from dcgan_jax.evaluation.metrics import METRICS
