"""The paper's supervised losses, on [0, 1] tensors (N, C, H, W)."""
import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3) / 4


def sobel(x):
    kx = _SOBEL_X.to(x)
    ky = kx.transpose(2, 3)
    xp = F.pad(x, (1, 1, 1, 1), mode='replicate')
    return F.conv2d(xp, kx), F.conv2d(xp, ky)


def alpha_loss(pred, gt):
    return (pred - gt).abs().mean()


def foreground_loss(pred_fg, gt_fg, gt_alpha):
    """L1 on F where the subject is present at all (alpha > 0), normalised by that area."""
    mask = (gt_alpha > 0).float().expand_as(gt_fg)
    return ((pred_fg - gt_fg).abs() * mask).sum() / (mask.sum() + 1)


def compositional_loss(pred_alpha, pred_fg, background, image):
    return (pred_alpha * pred_fg + (1 - pred_alpha) * background - image).abs().mean()


def gradient_loss(pred, gt):
    px, py = sobel(pred)
    gx, gy = sobel(gt)
    return ((px - gx).abs() + (py - gy).abs()).mean()


def supervised_loss(pred_alpha, pred_fg, batch):
    """L1(alpha) + 2 L1(F | alpha > 0) + compositional L1 + L1 of Sobel gradients of alpha."""
    terms = {
        'alpha': alpha_loss(pred_alpha, batch['alpha']),
        'fg': 2 * foreground_loss(pred_fg, batch['fg'], batch['alpha']),
        'comp': compositional_loss(pred_alpha, pred_fg, batch['bg'], batch['image']),
        'grad': gradient_loss(pred_alpha, batch['alpha']),
    }
    return sum(terms.values()), terms


def lsgan(pred, target_is_real):
    return ((pred - (1.0 if target_is_real else 0.0)) ** 2).mean()
