# Vendored for tests only (never imported by product code): DINOv2 reference model code, verbatim
# except where noted. Source: https://github.com/facebookresearch/dinov2/blob/b8931f7bf91576930313be2c6d6af376033b35f0/dinov2/layers/__init__.py
# License: Apache-2.0 (https://github.com/facebookresearch/dinov2/blob/main/LICENSE).
# Changes: dropped the DINOHead import (dino_head.py is not vendored; the backbone does not use it)

# Copyright (c) Meta Platforms, Inc. and affiliates.
#
# This source code is licensed under the Apache License, Version 2.0
# found in the LICENSE file in the root directory of this source tree.

from .layer_scale import LayerScale
from .mlp import Mlp
from .patch_embed import PatchEmbed
from .swiglu_ffn import SwiGLUFFN, SwiGLUFFNFused, SwiGLUFFNAligned
from .block import NestedTensorBlock, CausalAttentionBlock
from .attention import Attention, MemEffAttention
