"""Training recipes, one file per mode, each readable top to bottom (nanoGPT / torchtune style)."""
