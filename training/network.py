"""The Background Matting generator ("ResnetConditionHR", Sengupta et al. CVPR 2020) and its
PatchGAN discriminator, as PAPER.md's table describes them, with the width and block counts
configurable and the released code's motion-branch bug fixed (``motion_bug=True`` reproduces it).

Inputs are scaled to [-1, 1]: image I (3), aligned plate B' (3), soft segmentation S (1) and the
grey motion stack M (4). Outputs: alpha in [-1, 1] (tanh) and foreground F (3, unbounded, trained
towards [-1, 1]).
"""
import torch
from torch import nn
import torch.nn.functional as F


def _conv_bn_relu(cin, cout, kernel, stride=1, reflect=0, bias=True):
    layers = []
    if reflect:
        layers.append(nn.ReflectionPad2d(reflect))
        padding = 0
    else:
        padding = kernel // 2
    layers += [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=bias),
               nn.BatchNorm2d(cout), nn.ReLU(True)]
    return layers


def encoder(cin, ngf):
    """ReflPad3, Conv7 -> ngf; Conv3 s2 -> 2ngf; Conv3 s2 -> 4ngf; each with BN + ReLU."""
    return nn.Sequential(*_conv_bn_relu(cin, ngf, 7, reflect=3),
                         *_conv_bn_relu(ngf, 2 * ngf, 3, stride=2),
                         *_conv_bn_relu(2 * ngf, 4 * ngf, 3, stride=2))


class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.BatchNorm2d(ch), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.BatchNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class Up(nn.Module):
    """Bilinear x2 upsampling then Conv3 + BN + ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(*_conv_bn_relu(cin, cout, 3))

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False))


class Generator(nn.Module):
    def __init__(self, ngf=64, n_blocks_shared=7, n_blocks_head=3, context_ch=None, motion_bug=False):
        super().__init__()
        context_ch = context_ch or ngf  # 64 at the paper's ngf = 64
        self.ngf, self.motion_bug = ngf, motion_bug
        # Image encoder split so the stride-2 feature can serve as the foreground head's skip.
        self.img_enc1 = nn.Sequential(*_conv_bn_relu(3, ngf, 7, reflect=3), *_conv_bn_relu(ngf, 2 * ngf, 3, stride=2))
        self.img_enc2 = nn.Sequential(*_conv_bn_relu(2 * ngf, 4 * ngf, 3, stride=2))
        self.plate_enc = encoder(3, ngf)
        self.seg_enc = encoder(1, ngf)
        self.motion_enc = encoder(4, ngf)
        self.ctx_plate = nn.Sequential(*_conv_bn_relu(8 * ngf, context_ch, 1, bias=False))
        self.ctx_seg = nn.Sequential(*_conv_bn_relu(8 * ngf, context_ch, 1, bias=False))
        self.ctx_motion = nn.Sequential(*_conv_bn_relu(8 * ngf, context_ch, 1, bias=False))
        self.combine = nn.Sequential(*_conv_bn_relu(4 * ngf + 3 * context_ch, 4 * ngf, 1, bias=False),
                                     *[ResBlock(4 * ngf) for _ in range(n_blocks_shared)])
        self.alpha_head = nn.Sequential(*[ResBlock(4 * ngf) for _ in range(n_blocks_head)],
                                        Up(4 * ngf, 2 * ngf), Up(2 * ngf, ngf),
                                        nn.ReflectionPad2d(3), nn.Conv2d(ngf, 1, 7), nn.Tanh())
        self.fg_head = nn.Sequential(*[ResBlock(4 * ngf) for _ in range(n_blocks_head)], Up(4 * ngf, 2 * ngf))
        self.fg_up = Up(4 * ngf, ngf)
        self.fg_out = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7))
        init_weights(self)

    def forward(self, image, plate, seg, motion):
        skip = self.img_enc1(image)
        img = self.img_enc2(skip)
        b, s, m = self.plate_enc(plate), self.seg_enc(seg), self.motion_enc(motion)
        ctx_b = self.ctx_plate(torch.cat([img, b], 1))
        ctx_s = self.ctx_seg(torch.cat([img, s], 1))
        # The released code fed (img, B') here, so M never reached the output.
        ctx_m = self.ctx_motion(torch.cat([img, b if self.motion_bug else m], 1))
        shared = self.combine(torch.cat([img, ctx_b, ctx_s, ctx_m], 1))
        alpha = self.alpha_head(shared)
        fg = self.fg_out(self.fg_up(torch.cat([self.fg_head(shared), skip], 1)))
        return alpha, fg


class Discriminator(nn.Module):
    """PatchGAN, one scale, InstanceNorm, LS-GAN (no sigmoid)."""

    def __init__(self, ndf=64, in_ch=3):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2, True)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 4, 2, 1), lrelu(),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.InstanceNorm2d(2 * ndf), lrelu(),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1), nn.InstanceNorm2d(4 * ndf), lrelu(),
            nn.Conv2d(4 * ndf, 8 * ndf, 4, 1, 1), nn.InstanceNorm2d(8 * ndf), lrelu(),
            nn.Conv2d(8 * ndf, 1, 4, 1, 1))
        init_weights(self)

    def forward(self, x):
        return self.net(x)


def init_weights(module):
    """The paper's init: Xavier-uniform (gain sqrt 2), bias 0; BN weight ~ N(1, 0.2)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight, gain=2 ** 0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.zeros_(m.bias)


class Exportable(nn.Module):
    """What ships: [0, 1] inputs in, alpha and foreground in [0, 1] out (scaling folded in)."""

    def __init__(self, generator):
        super().__init__()
        self.g = generator

    def forward(self, image, plate, prior, motion):
        alpha, fg = self.g(image * 2 - 1, plate * 2 - 1, prior * 2 - 1, motion * 2 - 1)
        return (alpha + 1) / 2, torch.clamp((fg + 1) / 2, 0, 1)


def gmacs(ngf, size=512):
    """Multiply-accumulates of one forward pass at size x size, in GMac (counted with hooks)."""
    g = Generator(ngf).eval()
    total = [0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total[0] += k * out.numel()
    hs = [m.register_forward_hook(hook) for m in g.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        x = torch.zeros(1, 3, size, size)
        g(x, x, x[:, :1], torch.zeros(1, 4, size, size))
    for h in hs:
        h.remove()
    return total[0] / 1e9
