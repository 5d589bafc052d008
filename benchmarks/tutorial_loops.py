"""The tutorials' own training loops, as their seeds write them, for benchmarks/throughput.py to race.

Tutorial 002 (MLP GAN) and tutorial 000 (DCGAN) in substance unchanged: torchvision MNIST through a DataLoader with
per-item PIL transforms (ToTensor, Normalize; tutorial 000 also Resize(32), without which its 32×32 nets cannot
take MNIST's 28×28 digits), their nets (Sigmoid + BCELoss), their optimisers and their steps, in their order.
Changes, each needed to run at all or to measure training rather than file output:
- `.cuda()` becomes `.to(device)`;
- tutorial 002's D returns (N, 1) against (N,) labels, which BCELoss now refuses: its output is squeezed (as
  tutorial 000 does);
- tutorial 000 refills one label tensor in place (`label.fill_(0)`) after BCELoss saved it for backward, which
  autograd refuses: each target is a fresh tensor;
- image files are not written (tutorial 002 saves a PNG of the real batch at every step of its first epoch and
  both save samples per epoch); tutorial 002's every-100-steps `.item()` calls for its print are kept.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torchvision import datasets, transforms


class MLPDiscriminator(nn.Module):  # tutorial 002 `discriminator`
    def __init__(self):
        super().__init__()
        self.dis = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2),
                                 nn.Linear(256, 1), nn.Sigmoid())

    def forward(self, x):
        return self.dis(x).squeeze(1)


class MLPGenerator(nn.Module):  # tutorial 002 `generator`
    def __init__(self):
        super().__init__()
        self.gen = nn.Sequential(nn.Linear(100, 256), nn.ReLU(True), nn.Linear(256, 256), nn.ReLU(True),
                                 nn.Linear(256, 784), nn.Tanh())

    def forward(self, x):
        return self.gen(x)


class DCGANGenerator(nn.Module):  # tutorial 000 `Generator`
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(100, 256, 4, stride=1, padding=0), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, z):
        return self.model(z)


class DCGANDiscriminator(nn.Module):  # tutorial 000 `Discriminator`
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(128, 256, 4, stride=2, padding=1), nn.BatchNorm2d(256), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(256, 1, 4, stride=1, padding=0), nn.Sigmoid())

    def forward(self, x):
        return self.model(x).squeeze()


class SeedLoop:
    """One tutorial's data, nets, optimisers and step; `step()` runs one iteration and returns its batch size.
    The DataLoader is iterated epoch after epoch, as the seeds' `for epoch ... for i, data in enumerate(...)`."""

    def __init__(self, which: str, root: str, device="cpu", seed: int = 0):
        torch.manual_seed(seed)
        self.which, self.device = which, torch.device(device)
        if which == "mlp":  # tutorial 002
            tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
            self.D, self.G = MLPDiscriminator().to(self.device), MLPGenerator().to(self.device)
            self.d_optimizer = torch.optim.Adam(self.D.parameters(), lr=0.0003)
            self.g_optimizer = torch.optim.Adam(self.G.parameters(), lr=0.0003)
        elif which == "dcgan":  # tutorial 000
            tf = transforms.Compose([transforms.Resize(32), transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
            self.D, self.G = DCGANDiscriminator().to(self.device), DCGANGenerator().to(self.device)
            self.d_optimizer = torch.optim.Adam(self.D.parameters(), lr=0.0002, betas=(0.5, 0.999))
            self.g_optimizer = torch.optim.Adam(self.G.parameters(), lr=0.0002, betas=(0.5, 0.999))
        else:
            raise ValueError(f"unknown tutorial {which!r}; use mlp or dcgan")
        self.criterion = nn.BCELoss()
        mnist = datasets.MNIST(root=root, train=True, transform=tf, download=False)
        self.dataloader = torch.utils.data.DataLoader(dataset=mnist, batch_size=128, shuffle=True)
        self.batches = iter(())
        self.i = 0

    def _next(self):
        try:
            return next(self.batches)
        except StopIteration:  # a new epoch
            self.batches, self.i = iter(self.dataloader), 0
            return next(self.batches)

    def step(self) -> int:
        data = self._next()
        n = self.mlp_step(data) if self.which == "mlp" else self.dcgan_step(data)
        self.i += 1
        return n

    def mlp_step(self, data) -> int:
        """Tutorial 002's loop body."""
        D, G, criterion, dev = self.D, self.G, self.criterion, self.device
        img, _ = data
        num_img = img.size(0)
        img = img.view(num_img, -1)
        real_img = img.to(dev)
        real_label = torch.ones(num_img).to(dev)
        fake_label = torch.zeros(num_img).to(dev)
        real_out = D(real_img)
        d_loss_real = criterion(real_out, real_label)
        real_scores = real_out
        z = torch.randn(num_img, 100).to(dev)
        fake_img = G(z).detach()
        fake_out = D(fake_img)
        d_loss_fake = criterion(fake_out, fake_label)
        fake_scores = fake_out
        d_loss = d_loss_real + d_loss_fake
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()
        z = torch.randn(num_img, 100).to(dev)
        fake_img = G(z)
        output = D(fake_img)
        g_loss = criterion(output, real_label)
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        if (self.i + 1) % 100 == 0:  # the seed prints these four numbers
            (d_loss.data.item(), g_loss.data.item(), real_scores.data.mean().item(), fake_scores.data.mean().item())
        return num_img

    def dcgan_step(self, data) -> int:
        """Tutorial 000's loop body (G updated at every 2nd iteration)."""
        discriminator, generator, criterion, dev = self.D, self.G, self.criterion, self.device
        discriminator.zero_grad()
        real_data = data[0].to(dev)
        batch_size = real_data.size(0)
        label = torch.full((batch_size,), 1, dtype=torch.float).to(dev)
        output = discriminator(real_data)
        errD_real = criterion(output, label)
        noise = torch.randn(batch_size, 100, 1, 1).to(dev)
        fake_data = generator(noise)
        label = torch.full((batch_size,), 0, dtype=torch.float).to(dev)
        output = discriminator(fake_data.detach())
        errD_fake = criterion(output, label)
        errD = errD_real + errD_fake
        errD.backward()
        self.d_optimizer.step()
        if self.i % 2 == 0:
            generator.zero_grad()
            label = torch.full((batch_size,), 1, dtype=torch.float).to(dev)
            output = discriminator(fake_data)
            errG = criterion(output, label)
            errG.backward()
            self.g_optimizer.step()
        return batch_size
