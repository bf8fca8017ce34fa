"""Training losses: quantised AP (R2D2 / HNDesc), triplet, R2D2 reliability and repeatability."""
from selfdesc.losses.ap import APLossConfig, HNDescAPLoss, quantized_ap, reliability_ap_loss, soft_bins
from selfdesc.losses.hardest import select_hardest
from selfdesc.losses.repeatability import cosim_loss, homography_grid, peaky_loss, warp_map
from selfdesc.losses.triplet import TripletConfig, TripletLoss

__all__ = [
    "APLossConfig",
    "HNDescAPLoss",
    "quantized_ap",
    "reliability_ap_loss",
    "soft_bins",
    "select_hardest",
    "cosim_loss",
    "homography_grid",
    "peaky_loss",
    "warp_map",
    "TripletConfig",
    "TripletLoss",
]
