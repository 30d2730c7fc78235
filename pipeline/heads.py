"""Segmentation heads over a video's window features: one contract, (B, T, D) -> (B, T, C)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pipeline.errors import BouldersegError


class Head(nn.Module):
    """Standardises features with train-set statistics, then applies `body`."""

    def __init__(self, body: nn.Module, feature_dim: int):
        super().__init__()
        self.body = body
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))

    def fit_scaler(self, x: torch.Tensor) -> None:  # x: (N, D) training windows
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, C)
        return self.body((x - self.mean) / self.std, lengths)


class Linear(nn.Module):
    """The paper's 'MLP': one linear layer applied to each window on its own."""

    def __init__(self, *, feature_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x))


class LSTM(nn.Module):
    """An LSTM over the window sequence; padding is packed away, never seen."""

    def __init__(self, *, feature_dim: int, n_classes: int, hidden: int = 128, layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(feature_dim, hidden, num_layers=layers, batch_first=True,
                            bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(x), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.fc(out)  # (B, T, C)


HEADS: dict[str, Callable[..., nn.Module]] = {"linear": Linear, "lstm": LSTM}


def build_head(name: str, *, feature_dim: int, n_classes: int, options: dict[str, Any]) -> Head:
    if name not in HEADS:
        raise BouldersegError(f"unknown head '{name}' in train.heads. Known: {', '.join(HEADS)}.")
    try:
        body = HEADS[name](feature_dim=feature_dim, n_classes=n_classes, **options)
    except TypeError as e:
        raise BouldersegError(f"train.{name} in params.yaml: {e}") from e
    return Head(body, feature_dim)
