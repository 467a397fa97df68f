"""What every record-returning encoder shares: a learned null condition and condition dropout."""
from __future__ import annotations

import torch

from .record import ConditioningRecord, drop_mask


class NullConditionMixin:
    """Classifier-free guidance support (Ho & Salimans 2022, Algorithm 1).

    Subclasses implement :meth:`null`; :meth:`drop` then replaces each sample's record by the
    null one with probability p, so one network learns p(x | c) and p(x).
    """

    def null(self, batch_size: int, device: torch.device | str | None = None) -> ConditioningRecord:
        raise NotImplementedError

    def drop(self, record: ConditioningRecord, p: float, generator: torch.Generator | None = None) -> ConditioningRecord:
        """Replace each sample of ``record`` by the learned null condition with probability ``p``."""
        if not isinstance(record, ConditioningRecord):
            raise TypeError(f"record must be a ConditioningRecord (the encoder's output), got {type(record).__name__}")
        keep = drop_mask(record.batch_size, p, generator, record.tokens.device)
        return record.where(keep, self.null(1, record.tokens.device))
