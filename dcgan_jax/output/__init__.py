"""What a run writes, and the path layer every file goes through: `paths`
(local or bucket paths, atomic writes), `images` (grids, PNG, GIF),
`metrics_file` (metrics.jsonl), `trackers` (W&B, MLflow, Neptune) and
`plots`.

`paths` and `images` import nothing else from the package; the writers may
import `evaluation`'s metric registry.
"""
