"""Frame-wise translation (pix2pix, CycleGAN): configuration, model files, training and ONNX export."""
