"""Training: the one loop every command and baseline uses, and what it needs around it.

- `loop`: the optimisation loop (schedule, evaluation, best weights, resumable state, DDP, autocast).
- `sampler`: which (task, language) pair each step trains on, a pure function of (seed, step).
- `resume`: saving and restoring the loop's state.
- `distributed`: torchrun / DistributedDataParallel setup and helpers.
- `precision`: fp32 / bf16 / fp16 autocast.
- `prefetch`: batches prepared on a background thread, in step order.
- `objectives`: HyperX's per-step loss (the baselines bring their own).
"""
