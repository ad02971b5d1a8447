"""Training curves and confusion matrices as small PNGs (matplotlib, Agg backend)."""

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(history, path, title):
    """Loss (train, val) and accuracy (train, val) per epoch."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a1.plot(ep, [h["val_loss"] for h in history], label="val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy")
    a1.legend()
    a1.grid(alpha=0.3)
    a2.plot(ep, [100 * h["train_acc"] for h in history], label="train (augmented)")
    a2.plot(ep, [100 * h["val_acc"] for h in history], label="val (float)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy %")
    lo = min(100 * min(h["val_acc"] for h in history), 100 * min(h["train_acc"] for h in history))
    a2.set_ylim(max(0, lo - 2), 100)
    a2.legend()
    a2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(cm, labels, path, title):
    """Row-normalized confusion matrix (rows: true class), counts written in the cells."""
    plt = _plt()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=80)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    n = len(labels)
    ax.set_xticks(range(n), labels, rotation=60, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
