"""Performance accounting: model FLOPs and the device's matrix-product ceiling."""
