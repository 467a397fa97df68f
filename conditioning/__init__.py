"""Conditioning encoders shared by every generator; each returns one :class:`ConditioningRecord`."""
from .class_label import ClassLabelEncoder
from .record import ConditioningRecord

__all__ = ["ClassLabelEncoder", "ConditioningRecord"]
