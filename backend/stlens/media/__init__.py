"""Turning optimised inputs into things a browser shows: strips, animations, videos, npz."""
