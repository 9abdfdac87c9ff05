"""CLIP ViT-B/32 and DINOv2 ViT-B/14 extractors: ours against the reference models, same weights, same images.

No real weights are needed: weights files of the standard formats and full sizes are generated from the
vendored reference models with a fixed seed (OpenAI's CLIP traced to TorchScript with fp16 tensors, as
ViT-B-32.pt is; DINOv2 ViT-B/14's state dict). The references are those models as their own loaders
build them (openai/CLIP build_model on the archive's state dict, then .float(); facebookresearch/dinov2's
vit_base as its hub entry point builds it) with their preprocessing (OpenAI's _transform(224), dgm-eval's
DINOv2 transform) written with PIL. Also CMMD against google-research/cmmd's distance and CLIP similarity
against torchmetrics' formula, on the same embeddings. Measured quietly and under 2 busy cores
(bench/load.py), same torch thread count for both (--threads, default 1); fails when a feature differs by
more than 1e-5 of the largest feature.

    .venv/bin/python bench/bench_clip_dino.py [--quick] [--busy 2] [--threads 1]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XFORMERS_DISABLED", "1")

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402
from evaluation.metrics import clip_metrics  # noqa: E402
from evaluation.metrics.extractors import get_extractor  # noqa: E402
from tests.evaluation.metrics.test_clip_dinov2 import _clip_transform, _dgm_eval_dinov2_transform  # noqa: E402
from tests.support.generated_weights import (  # noqa: E402
    random_dinov2,
    random_openai_clip,
    save_openai_clip_torchscript,
)
from tests.support.refs import cmmd_distance, openai_clip_model  # noqa: E402


def timed(fn, repeats):
    return best_of(fn, repeats, sync=torch.cuda.synchronize if torch.cuda.is_available() else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = add_arguments(parser).parse_args()
    set_threads(args.threads)
    n = 4 if args.quick else 16
    repeats = 1 if args.quick else 2
    rng = np.random.default_rng(0)
    # Smooth random "anatomy" plus noise, 160 × 192, in [0, 1]; outputs are noisier copies (paired).
    base = rng.random((n, 1, 20, 24))
    images = np.kron(base, np.ones((1, 1, 8, 8))) + 0.05 * rng.standard_normal((n, 1, 160, 192))
    outputs = images + 0.1 * rng.standard_normal(images.shape)

    def grey(x):
        return np.rint(np.clip(x[:, 0], 0, 1) * 255).astype(np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        clip_path = save_openai_clip_torchscript(
            random_openai_clip(vision_width=768, vision_layers=12, embed_dim=512), Path(tmp) / "ViT-B-32.pt"
        )
        dino = random_dinov2(dim=768, depth=12, heads=12)
        dino_path = Path(tmp) / "dinov2_vitb14_pretrain.pth"
        torch.save(dino.state_dict(), dino_path)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {n} pairs of 160 × 192; batch 16")
        with open(clip_path, "rb") as handle:
            state = torch.jit.load(handle, map_location="cpu").state_dict()
        nets = {}
        for device in devices:
            clip_ref = openai_clip_model.build_model(dict(state)).float().eval().to(device)
            nets[device] = (
                get_extractor("clip", weights_path=clip_path, device=device, verify_sha256=False),
                clip_ref,
                get_extractor("dinov2", weights_path=dino_path, device=device, verify_sha256=False),
                random_dinov2(dim=768, depth=12, heads=12).to(device).eval(),
            )
            nets[device][3].load_state_dict(dino.state_dict())

        def reference(model, transform, x, device):
            out = []
            with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                for start in range(0, len(x), 16):
                    batch = torch.stack([transform(p) for p in grey(x[start : start + 16])]).to(device)
                    out.append(model(batch).double().cpu().numpy())
            return np.concatenate(out)

        def device_items(device, clip_ours, clip_ref, dino_ours, dino_ref):
            items = []
            both = np.concatenate([outputs, images])
            t_ours, f_ours = timed(lambda: clip_ours.extract(both, data_range=(0.0, 1.0)), repeats)
            t_ref, f_ref = timed(lambda: reference(clip_ref.encode_image, _clip_transform, both, device), repeats)
            scale = float(np.max(np.abs(f_ref)))
            items.append(Measure(f"CLIP ViT-B/32 embeddings, {2 * n} images, {device}", t_ours, t_ref,
                                 f_ours, f_ref, atol=1e-5 * scale, rtol=0.0, peer_name="openai/CLIP"))  # fmt: skip
            g, r = f_ours[:n], f_ours[n:]
            gr, rr = f_ref[:n], f_ref[n:]
            unit = clip_metrics.unit_rows
            t_c, ours_c = timed(lambda: clip_metrics.cmmd(g, r), 3)
            t_cr, ref_c = timed(lambda: float(cmmd_distance.mmd(unit(gr), unit(rr))), 3)
            items.append(Measure(f"CMMD of {n} vs {n}, {device}", t_c, t_cr, ours_c, ref_c, rtol=1e-4,
                                 peer_name="cmmd distance.py on openai/CLIP embeddings"))  # fmt: skip
            t_s, ours_s = timed(lambda: clip_metrics.clip_score(g, r), 3)
            t_sr, ref_s = timed(lambda: max(float(np.mean(100 * np.sum(unit(gr) * unit(rr), axis=1))), 0.0), 3)
            items.append(Measure(f"CLIP similarity of {n} pairs, {device}", t_s, t_sr, ours_s, ref_s, rtol=1e-5,
                                 peer_name="torchmetrics' formula on openai/CLIP embeddings"))  # fmt: skip
            t_ours, f_ours = timed(lambda: dino_ours.extract(images, data_range=(0.0, 1.0)), repeats)
            t_ref, f_ref = timed(lambda: reference(dino_ref, _dgm_eval_dinov2_transform, images, device), repeats)
            items.append(Measure(f"DINOv2 ViT-B/14 CLS, {n} images, {device}", t_ours, t_ref, f_ours, f_ref,
                                 atol=1e-5 * float(np.max(np.abs(f_ref))), rtol=0.0,
                                 peer_name="facebookresearch/dinov2"))  # fmt: skip
            return items

        def measure():
            return [item for device, models in nets.items() for item in device_items(device, *models)]

        run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
