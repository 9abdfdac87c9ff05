"""Set and pair metrics on CLIP image embeddings (numpy only, no torch: the catalogue imports it).

``clip_score``: torchmetrics' CLIP score (``clip_score``: 100 · cosine similarity per pair, mean over
pairs, clamped at 0) with both sides images: an output and its case's reference.
``cmmd``: google-research/cmmd's ``distance.mmd`` (Jayasumana et al. 2024).
"""

import numpy as np


def cosine_similarity_score(generated, reference):
    """(n,) 100 · cos(generated_i, reference_i): torchmetrics' CLIP score per pair, before its mean and clamp."""
    g = np.asarray(generated, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if g.shape != r.shape or g.ndim != 2:
        raise ValueError(f"paired embeddings must have the same (n, d) shape, got {g.shape} and {r.shape}")
    norms = np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1)
    if not np.all(norms > 0):
        raise ValueError("an embedding has zero norm; its cosine similarity is undefined")
    return 100.0 * np.einsum("nd,nd->n", g, r) / norms


def clip_score(generated, reference):
    """torchmetrics' CLIP score of paired image embeddings: max(mean_i 100 · cos_i, 0)."""
    return max(float(np.mean(cosine_similarity_score(generated, reference))), 0.0)


def unit_rows(x):
    """Rows scaled to unit L2 norm (CMMD's embeddings: scenic's CLIP encode_image(normalize=True))."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError("an embedding has zero norm")
    return x / norms


CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0


def cmmd(generated, reference, *, sigma=CMMD_SIGMA, scale=CMMD_SCALE):
    """CMMD (Jayasumana et al. 2024) of (n1, d) and (n2, d) embeddings, as google-research/cmmd distance.py.

    The minimum-variance (biased) MMD² with the Gaussian RBF kernel exp(−‖x − y‖² / (2σ²)), σ = 10,
    times 1000, on L2-normalised embeddings; the three kernel means are over all pairs, diagonals
    included. float64 (cmmd runs in jax's default float32).
    """
    x = unit_rows(generated)
    y = unit_rows(reference)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embeddings have different widths ({x.shape[1]} and {y.shape[1]})")
    gamma = 1.0 / (2.0 * sigma**2)
    xx, yy = np.einsum("nd,nd->n", x, x), np.einsum("nd,nd->n", y, y)

    def kernel_mean(a, b, a_sq, b_sq):
        return float(np.mean(np.exp(-gamma * (-2.0 * a @ b.T + a_sq[:, None] + b_sq[None, :]))))

    k_xx = kernel_mean(x, x, xx, xx)
    k_yy = kernel_mean(y, y, yy, yy)
    k_xy = kernel_mean(x, y, xx, yy)
    return scale * (k_xx + k_yy - 2.0 * k_xy)
