"""Structure-from-Motion with selfdesc features: COLMAP database import, incremental mapping,
alignment to ground truth and export in the hloc layout (see ``docs/sfm_pose.md``).

Modules: :mod:`~selfdesc.sfm.colmap_db`, :mod:`~selfdesc.sfm.reconstruct`,
:mod:`~selfdesc.sfm.align`, :mod:`~selfdesc.sfm.hloc_export`, :mod:`~selfdesc.sfm.pipeline`
(imported on use: pycolmap is loaded only when needed).
"""
