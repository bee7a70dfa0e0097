"""A synthetic action world: articulated figures performing actions, rendered as short clips with flow.

``figure`` poses and draws one stick figure, ``actions`` says how each class moves, ``scene`` samples the
nuisances and renders a clip, ``dataset`` builds the labelled splits (with flow) and caches them,
``train`` fits the built-in models and ``export`` writes test splits as video files.
"""
