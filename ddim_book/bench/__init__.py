"""The benchmarks behind BENCHMARKS.md, all reached through ``ddim-book bench``.

- :mod:`~ddim_book.bench.args`: the command-line options (torch-free, so ``ddim-book --help`` starts fast);
- :mod:`~ddim_book.bench.timing`: two clocks, interleaved repeats, the models that are timed;
- :mod:`~ddim_book.bench.speed`: ``ddim-book bench``, the samplers and the trainer against their limits;
- :mod:`~ddim_book.bench.versus_diffusers`: its comparisons with diffusers (DDIMScheduler, UNet2DModel);
- :mod:`~ddim_book.bench.quality`: ``ddim-book bench quality``, sample quality at an equal training budget;
- :mod:`~ddim_book.bench.solvers`: ``ddim-book bench solvers``, evaluations each ODE solver needs (chapter 9);
- :mod:`~ddim_book.bench.report`: the machine, the runs, and the Markdown tables.

Import the submodule you need; this package itself imports nothing.
"""
