"""Training tools (extra ``[train]``): mocks, datasets, trainer, evaluation, export.

Nothing in here is imported by ``import picasso_astro``.
"""
