"""Pictures of results: :mod:`~selfdesc.viz.matches` (two images side by side with their matches,
OpenCV) and :mod:`~selfdesc.viz.sfm` (top-down views of reconstructions, matplotlib).

MMA curves are drawn with the benchmark reports (:func:`selfdesc.eval.report.plot_mma`).
"""
