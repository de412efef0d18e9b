"""Conceptual diagrams drawn in code: the chains of DDPM and DDIM, one DDIM step, and a sub-sequence tau.

- :func:`ddpm_chain`: DDPM's forward and reverse Markov chains as a graphical model (the idea of DDPM fig. 2;
  chapter 2).
- :func:`ddim_forward_process`: DDIM's non-Markovian forward process, built from the top down with
  q_sigma(x_{t-1} | x_t, x_0) and x_0 feeding every step (the idea of DDIM fig. 1, eqs. (6)-(7); chapter 5).
- :func:`ddim_step_parts` and :func:`ddim_step_diagram`: the three terms of one DDIM update, DDIM eq. (12),
  computed with the package on a 2-D exact oracle (:func:`two_gaussians`) and drawn as arrows that add up to
  x_prev (chapter 6).
- :func:`subsequence_timeline`: the sub-sequences tau of DDIM sec. 4.2 on the timeline 1..T (chapter 6).

The drawing helpers are in ``_draw``; the chains and the timeline in ``graphs``; one DDIM step in ``step``.

Every function returns a matplotlib Figure of at least 110 dpi whose text is at least 8 pt. Notation as in
ARCHITECTURE.md: DDPM's names (``alpha_bars``), 1-based t. Papers: DDPM = Ho, Jain & Abbeel (2020),
arXiv:2006.11239; DDIM = Song, Meng & Ermon (2021), arXiv:2010.02502 (v4 numbering).
"""

from ddim_book.diagrams.graphs import ddim_forward_process, ddpm_chain, subsequence_timeline
from ddim_book.diagrams.step import DDIMStepParts, ddim_step_diagram, ddim_step_parts, two_gaussians

__all__ = [
    "DDIMStepParts",
    "ddim_forward_process",
    "ddim_step_diagram",
    "ddim_step_parts",
    "ddpm_chain",
    "subsequence_timeline",
    "two_gaussians",
]
