"""Weights files of the standard formats, generated so tests and benchmarks need no download."""

import torch

from evaluation.metrics.inception import FIDInceptionV3


def random_fid_inception(seed=0):
    """Our FID Inception-v3 with seeded random weights and BN statistics calibrated so activations stay O(1)."""
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.normal_(module.bias, 0.0, 0.1)
            module.momentum = None  # running stats := the calibration batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8))
    model.eval()
    for module in model.modules():  # positive, not exactly the batch's: the eval path differs from training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.mul_(torch.empty_like(module.running_var).uniform_(0.8, 1.25))
    return model


def random_openai_clip(seed=0, *, vision_width=128, vision_layers=2, patch=32, resolution=224, embed_dim=48):
    """OpenAI's CLIP (vendored clip/model.py) with seeded random weights, converted to fp16 as OpenAI ships it.

    Small widths keep tests fast; the keys and the file format are those of ViT-B-32.pt.
    """
    from tests.support.refs import openai_clip_model

    torch.manual_seed(seed)
    model = openai_clip_model.CLIP(embed_dim, resolution, vision_layers, vision_width, patch, 8, 64, 64, 1, 1)
    with torch.no_grad():  # LayerNorms away from the identity, so the test sees their parameters
        for name, param in model.named_parameters():
            if ".ln_" in name or name.startswith(("visual.ln_", "ln_")):
                param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


def save_openai_clip_torchscript(model, path):
    """Trace and save as OpenAI did (torch.jit.trace of CLIP.forward(image, text)), weights in fp16."""
    resolution = model.visual.input_resolution
    image = torch.zeros(1, 3, resolution, resolution)
    text = torch.zeros(1, model.context_length, dtype=torch.long)
    traced = torch.jit.trace(model, (image, text), check_trace=False)
    traced.half()
    torch.jit.save(traced, str(path))
    return path


def random_dinov2(seed=0, *, dim=128, depth=2, heads=2):
    """The reference DINOv2 ViT (vendored dinov2 code) as torch.hub's dinov2_vitb14 builds it, narrower."""
    import os
    from functools import partial

    os.environ.setdefault("XFORMERS_DISABLED", "1")
    from tests.support.refs.dinov2.layers import MemEffAttention, NestedTensorBlock
    from tests.support.refs.dinov2.models.vision_transformer import DinoVisionTransformer

    torch.manual_seed(seed)
    model = DinoVisionTransformer(
        img_size=518,
        patch_size=14,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=4,
        init_values=1.0,
        block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention),
        block_chunks=0,
        num_register_tokens=0,
        interpolate_antialias=False,
        interpolate_offset=0.1,
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("gamma", "norm1.weight", "norm2.weight", "norm.weight")):
                param.copy_(torch.empty_like(param).uniform_(0.5, 1.5))
            elif name.endswith("bias"):
                param.copy_(torch.randn_like(param) * 0.02)
        model.cls_token.normal_(0, 0.5)
    return model.eval()


def random_lpips_backbone(net, seed=0, *, classifier=False):
    """A torchvision-layout state dict for LPIPS's trunk `net` ("alex", "vgg", "squeeze"), seeded random.

    Built from the test-only stand-in of torchvision's model (not from the product's network), so the
    keys are torchvision's own. ``classifier=False`` keeps only ``features.*`` (the classifiers of AlexNet
    and VGG16 are 58 M and 124 M parameters, which LPIPS never uses).
    """
    from tests.support.torchvision_standin import BUILDERS

    torch.manual_seed(seed)
    state = BUILDERS[net]().state_dict()
    return {k: v for k, v in state.items() if classifier or k.startswith("features.")}


LPIPS_HEAD_CHANNELS = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}


def random_lpips_heads(net, seed=0):
    """Heads in the lpips wheel's format: ``lin{l}.model.1.weight`` (1, C_l, 1, 1), non-negative as trained."""
    generator = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand((1, c, 1, 1), generator=generator) * 0.2
        for i, c in enumerate(LPIPS_HEAD_CHANNELS[net])
    }
