# Vendored DINOv2 reference code (tests only); see each file header.
