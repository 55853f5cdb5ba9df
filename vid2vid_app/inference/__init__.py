"""Inference pipelines (each module has one job; import the one you need):

    dance_model   the trained motion-transfer model file: find by name, load, render, generate
    transfer      motion transfer: source video -> the target person performing its moves
    evaluate      reconstruction metrics of a motion-transfer model on its target person
    translate     frame-wise pix2pix / CycleGAN translation of videos and images
"""
