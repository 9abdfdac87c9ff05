"""MedGen Eval's metric library: plain Python, torch and numpy, no Django.

Modules:
- ``pixel``: per-sample fidelity metrics (MSE, MAE, NMSE, PSNR, SSIM, MS-SSIM).
- ``feature``: distribution metrics on feature vectors (Fréchet distance with streaming
  statistics, KID, precision/recall).
- ``radiomics``: IBSI radiomics features (first order, GLCM, GLRLM; original and LoG images)
  for the Fréchet Radiomics Distance.
- ``extractors``: the registry of feature extractors (radiomics by default, Inception-v3 from
  a local weights file).
- ``bootstrap``: seeded case-resampling confidence intervals.
- ``catalog``: every metric declared once: name, tier, direction, unit, definition, version and
  the function that computes it.
"""
