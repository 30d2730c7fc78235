"""Segmentation heads over a video's window features: a registry with one contract.

Every body maps (B, T, D) standardised features and a (B, T) validity mask to (B, T, C) logits,
and gives the same logits for a video whether it is batched with longer videos or alone: padding
is packed away (LSTMs), zeroed after every layer (convolutions) or masked out of attention.
Bodies are trained by Adam for fixed epochs, except one with a `solve` method (`logreg`), which is
solved to convergence: the reference a head scoring below it on the same backbone has to explain.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.core.errors import BouldersegError


class Linear(nn.Module):
    """The paper's 'MLP': one linear layer applied to each window on its own."""

    def __init__(self, *, feature_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x))


class LogReg(Linear):
    """One linear layer per window whose weights come from `solve`, not from the optimiser."""

    def __init__(self, *, feature_dim: int, n_classes: int, Cs: Sequence[float] = (0.001, 0.01, 0.1, 1.0),
                 max_iter: int = 1000):
        super().__init__(feature_dim=feature_dim, n_classes=n_classes)
        self.Cs, self.max_iter = tuple(float(c) for c in Cs), max_iter

    def solve(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, seed: int, splits: int = 3,
              say: Callable[[str], None] | None = None) -> dict:
        """Fit on (N, D) standardised windows, (N,) class indices, (N,) climb of each window; returns the choice:
        {"C": the C of best mean window accuracy over at most `splits` climb-grouped inner splits (ties: the smaller
        C), "splits": how many there were, "inner_accuracy": {C: percent}}; each split standardises on its own
        training part. With one climb there is nothing to split: the middle C, and inner_accuracy empty. `say` hears
        a line per C.

        scikit-learn's BLAS runs on one thread here: on 2 busy cores its second thread made each fit of the smoke
        profile's (186, 2048) windows 10-30x slower, for the same solution (2026-12-05)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits

        def accuracy(c: float, train: np.ndarray, test: np.ndarray) -> float:
            if len(np.unique(y[train])) < 2:  # scikit-learn needs two classes; one class is predicted everywhere
                return float(np.mean(y[test] == y[train][0]))
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=self.max_iter, random_state=seed))
            return model.fit(x[train], y[train]).score(x[test], y[test])

        def mean_accuracy(c: float, folds: list) -> float:
            start = time.monotonic()
            percent = 100 * float(np.mean([accuracy(c, tr, te) for tr, te in folds]))
            if say is not None:
                say(f"C={c:g}: inner accuracy {percent:.1f} % over {len(folds)} splits ({time.monotonic() - start:.1f} s)")
            return percent

        splits = min(splits, len(set(groups)))
        with threadpool_limits(1):
            if splits < 2:
                best, inner = self.Cs[len(self.Cs) // 2], {}
            else:
                folds = list(GroupKFold(splits).split(x, y, groups))
                inner = {c: mean_accuracy(c, folds) for c in self.Cs}
                best = max(self.Cs, key=lambda c: (round(inner[c], 6), -c))
            if len(np.unique(y)) < 2:
                self.copy_from(np.unique(y), np.zeros((0, x.shape[1])), np.zeros(0))
            else:
                clf = LogisticRegression(C=best, max_iter=self.max_iter, random_state=seed).fit(x, y)
                self.copy_from(clf.classes_, clf.coef_, clf.intercept_)
        return {"C": best, "splits": splits, "inner_accuracy": {str(c): round(a, 2) for c, a in inner.items()}}

    @torch.no_grad()
    def copy_from(self, classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        """scikit-learn's (K, D) coefficients of its K seen classes (K = 1: binary) into the (C, D) layer; a class never
        seen in training gets a logit it cannot win with."""
        weight = torch.zeros_like(self.fc.weight)
        bias = torch.full_like(self.fc.bias, -1e4)
        if len(classes) == 1:
            bias[int(classes[0])] = 0.0
        elif coef.shape[0] == 1:  # binary: logit(second) - logit(first) = w x + b
            bias[int(classes[0])], bias[int(classes[1])] = 0.0, float(intercept[0])
            weight[int(classes[1])] = torch.from_numpy(coef[0]).float()
        else:
            idx = torch.from_numpy(classes.astype(np.int64))
            weight[idx], bias[idx] = torch.from_numpy(coef).float(), torch.from_numpy(intercept).float()
        self.fc.weight.copy_(weight)
        self.fc.bias.copy_(bias)


class MLP(nn.Module):
    """One hidden layer per window: Linear -> GELU -> dropout -> Linear."""

    def __init__(self, *, feature_dim: int, n_classes: int, hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout / 2), nn.Linear(feature_dim, hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LSTM(nn.Module):
    """An LSTM over the window sequence (the paper's: 1 layer, hidden 128); padding is packed away."""

    def __init__(self, *, feature_dim: int, n_classes: int, hidden: int = 128, layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(feature_dim, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(x), mask.sum(1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.fc(out)  # (B, T, C)


def bilstm(*, feature_dim: int, n_classes: int, hidden: int = 128, layers: int = 1,
           dropout: float = 0.0) -> LSTM:
    return LSTM(feature_dim=feature_dim, n_classes=n_classes, hidden=hidden, layers=layers, bidirectional=True,
                dropout=dropout)


class _DilatedResidual(nn.Module):
    def __init__(self, dilation: int, channels: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:  # (B, ch, T), m (B, 1, T)
        return (x + self.drop(self.out(F.relu(self.conv(x))))) * m


class _Stage(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, *, layers: int, channels: int, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(_DilatedResidual(2**i, channels, dropout) for i in range(layers))
        self.out = nn.Conv1d(channels, n_classes, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:  # (B, in, T) -> (B, C, T)
        h = self.inp(x) * m
        for layer in self.layers:
            h = layer(h, m)
        return self.out(h) * m


class MSTCN(nn.Module):
    """MS-TCN (Farha & Gall, 2019): stages of dilated residual temporal convolutions, each refining
    the softmax of the one before; trained on every stage with the truncated-MSE smoothing loss."""

    def __init__(self, *, feature_dim: int, n_classes: int, stages: int = 4, layers: int = 10, channels: int = 64,
                 dropout: float = 0.5, smoothing: float = 0.15):
        super().__init__()
        self.stages = nn.ModuleList(_Stage(feature_dim if s == 0 else n_classes, n_classes, layers=layers,
                                           channels=channels, dropout=dropout) for s in range(stages))
        self.smoothing = smoothing

    def all_stages(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        m = mask[:, None].float()  # (B, 1, T)
        h, outs = x.transpose(1, 2) * m, []  # (B, D, T)
        for stage in self.stages:
            h = stage(F.softmax(h, dim=1) * m if outs else h, m)
            outs.append(h.transpose(1, 2))  # (B, T, C)
        return outs

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.all_stages(x, mask)[-1]


class Transformer(nn.Module):
    """Pre-norm transformer encoder over the window sequence, full self-attention with padding masked
    out of the keys; position comes from a depthwise temporal convolution before it (no fixed length)."""

    def __init__(self, *, feature_dim: int, n_classes: int, dim: int = 64, layers: int = 2, heads: int = 4,
                 dropout: float = 0.3):
        super().__init__()
        self.inp = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, dim))
        self.position = nn.Conv1d(dim, dim, 9, padding=4, groups=dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) * mask[..., None]  # (B, T, dim)
        h = h + (self.position(h.transpose(1, 2)).transpose(1, 2) * mask[..., None])
        return self.fc(self.encoder(h, src_key_padding_mask=~mask))


@dataclass(frozen=True)
class HeadSpec:
    name: str
    kind: Literal["window", "sequence"]  # window: each window on its own; sequence: the whole video at once
    make: Callable[..., nn.Module]  # keyword-only: feature_dim, n_classes, then the options below
    options: tuple[str, ...]  # keys of train.heads.<name>.model it reads
    about: str


HEADS: dict[str, HeadSpec] = {h.name: h for h in (
    HeadSpec("linear", "window", Linear, ("dropout",), "one linear layer (the paper's 'MLP')"),
    HeadSpec("logreg", "window", LogReg, ("Cs", "max_iter"),
             "L2 logistic regression (scikit-learn), C chosen by climb-grouped splits of the training videos"),
    HeadSpec("mlp", "window", MLP, ("hidden", "dropout"), "one hidden layer, GELU, dropout"),
    HeadSpec("lstm", "sequence", LSTM, ("hidden", "layers", "dropout"), "LSTM (the paper's: 1 layer, hidden 128)"),
    HeadSpec("bilstm", "sequence", bilstm, ("hidden", "layers", "dropout"), "bidirectional LSTM"),
    HeadSpec("mstcn", "sequence", MSTCN, ("stages", "layers", "channels", "dropout", "smoothing"),
             "multi-stage dilated temporal convolutions + truncated-MSE smoothing loss"),
    HeadSpec("transformer", "sequence", Transformer, ("dim", "layers", "heads", "dropout"),
             "transformer encoder, padding masked out of attention"),
)}


class Head(nn.Module):
    """Standardises features with train-set statistics, then applies the registry's body."""

    def __init__(self, body: nn.Module, feature_dim: int):
        super().__init__()
        self.body = body
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        self.class_weight: torch.Tensor | None = None  # the loss's, set by training: kept with a fold's model

    def fit_scaler(self, x: torch.Tensor) -> None:  # x: (N, D) training windows, padding excluded
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-6))

    def inputs(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardised (B, T, D) features, zero on padding; (B, T) mask, true on real windows)."""
        mask = torch.arange(x.shape[1])[None] < lengths[:, None]
        return ((x - self.mean) / self.std) * mask[..., None], mask

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, C)
        return self.body(*self.inputs(x, lengths))

    def outputs(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        """Every (B, T, C) output the loss sees, from `inputs(...)`: each stage of a multi-stage head, else the one."""
        return self.body.all_stages(*inputs) if hasattr(self.body, "all_stages") else [self.body(*inputs)]


def solved(name: str) -> bool:
    """Whether head `name` is solved to convergence (logreg), not trained for a number of epochs."""
    return name in HEADS and hasattr(HEADS[name].make, "solve")


def build_head(name: str, *, feature_dim: int, n_classes: int, options: dict[str, Any]) -> Head:
    if name not in HEADS:
        raise BouldersegError(f"unknown head '{name}' in train.heads. Known: {', '.join(HEADS)}.")
    unknown = sorted(set(options) - set(HEADS[name].options))
    if unknown:
        raise BouldersegError(f"train.heads.{name}.model in params.yaml: unknown option(s) {unknown}; "
                              f"{name} reads {', '.join(HEADS[name].options)}.")
    return Head(HEADS[name].make(feature_dim=feature_dim, n_classes=n_classes, **options), feature_dim)


def n_parameters(name: str, *, feature_dim: int = 2048, n_classes: int = 5) -> int:
    return sum(p.numel() for p in build_head(name, feature_dim=feature_dim, n_classes=n_classes, options={}).body
               .parameters())
