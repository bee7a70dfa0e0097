"""Explaining videos and measuring what a two-stream network learnt (docs/insights.md).

Pure computation (never imports stlens.api): video decoding (video, clip), prediction and Grad-CAM
(predict, gradcam, explain), units and their dataset examples (units, examples, unit_examples), and
the paper's findings (crossstream, selectivity, speed; insights runs them all).
"""
