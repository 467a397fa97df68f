"""Conditioning encoders shared by every generator; each returns one :class:`ConditioningRecord`.

Heavy encoders are imported from their modules (``conditioning.text.TextEncoder``,
``conditioning.graph.GraphEncoder``, ``conditioning.image``, ``conditioning.control``) so that
importing the package stays cheap.
"""
from .base import NullConditionMixin
from .class_label import ClassLabelEncoder
from .record import ConditioningRecord, drop_mask

__all__ = ["ClassLabelEncoder", "ConditioningRecord", "NullConditionMixin", "drop_mask"]
