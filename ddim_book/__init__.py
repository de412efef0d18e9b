"""ddim_book: the package behind the DDPM/DDIM book.

Modules: ``schedules`` (noise schedules, forward process, posterior), ``samplers`` (DDPM, DDIM, inversion),
``oracles`` (exact epsilon-predictors), ``data`` and ``toy`` (MNIST and 2-D data), ``models`` (U-Net, MLP),
``training`` (the trainer), ``metrics``, ``pretrained`` (the shipped model) and ``exercises`` (checks
for the chapters' exercises). Each function names the equation it implements and the chapter deriving it.
"""

__version__ = "0.1.0"
