"""The frozen reference of the KL or DPO term, and sharding the policy (and the reference) under FSDP2."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from pareto_lightning.losses.modules import AlignmentLoss
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.sharding import is_fsdp, mixed_precision_policy, shard_causal_lm


class ReferenceModel:
    """Mixin of :class:`~pareto_lightning.algorithms.base.PreferenceAlignmentModule`: the reference's lifecycle.

    The reference is the policy's starting weights: with LoRA, the base model with the adapter disabled (no second
    copy); otherwise a frozen copy made when fitting starts, only when the loss needs one. It is rebuilt from the
    policy's own source whenever the module is built, so checkpoints leave it out.
    """

    policy: PreferencePolicy
    loss: AlignmentLoss
    reference_model: nn.Module | None
    _trainer: Any

    def make_reference(self, stage: str) -> None:
        """Copy the policy's weights into a frozen reference when fitting starts (once; not under LoRA)."""
        needs_copy = self.loss.needs_reference and not self.policy.uses_lora
        if stage == "fit" and needs_copy and self.reference_model is None:
            self.reference_model = copy.deepcopy(self.policy.model).eval().requires_grad_(False)

    def configure_model(self) -> None:
        """Under ``ModelParallelStrategy`` (FSDP2): shard the policy (and the frozen reference) per decoder layer.

        Reward models are not sharded: they are small next to the policy, frozen, and never seen by the optimizer;
        each rank holds a full copy on its own device. With ``precision="bf16-mixed"`` FSDP2 computes in bf16 on
        float32 master shards (:func:`~pareto_lightning.sharding.mixed_precision_policy`). The strategy's
        distributed checkpoint holds the sharded policy, optimizer and normalizer state, not the reward models.
        Other strategies (single device, ``ddp``) leave the modules as they are.
        """
        mesh = getattr(self, "device_mesh", None)
        if mesh is None or is_fsdp(self.policy.model):
            return
        dp_mesh = mesh["data_parallel"] if "data_parallel" in (mesh.mesh_dim_names or ()) else mesh
        # "bf16-mixed": FSDP2 gathers bf16 copies of the float32 shards (see `mixed_precision_policy`).
        mp = mixed_precision_policy(self._trainer.precision if self._trainer is not None else None)
        shard_causal_lm(self.policy.model, dp_mesh, mixed_precision=mp)
        if self.reference_model is not None:
            shard_causal_lm(self.reference_model, dp_mesh, mixed_precision=mp)

    def sequence_log_probs(self, rollout: Rollout) -> tuple[Tensor, Tensor | None]:
        """Per-token log-probs ``[N, T]`` under the policy and (when the loss needs it) the reference."""
        logp = self.policy.log_probs(rollout)
        ref = self.reference_log_probs(rollout) if self.loss.needs_reference else None
        return logp, ref

    @torch.no_grad()
    def reference_log_probs(self, rollout: Rollout) -> Tensor:
        """Per-token log-probs ``[N, T]`` under the reference: the starting weights (the base model, adapter
        disabled, with LoRA)."""
        if self.policy.uses_lora:
            with self.policy.model.disable_adapter():
                return self.policy.log_probs(rollout)
        if self.reference_model is None:
            raise RuntimeError(
                "no reference model: it is made when fitting starts with `model.init_args.beta` > 0."
            )
        return self.policy.log_probs(rollout, self.reference_model)


__all__ = ["ReferenceModel"]
