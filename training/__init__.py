"""Offline model training (TensorFlow/Keras -> ONNX). The only package that imports TensorFlow.

The autoencoder issue fills it in: dataset windows, model, train, export, evaluate, plots.
Serving (`streams`, `detectors`) never imports this package.
"""
