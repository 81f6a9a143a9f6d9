"""Benchmarks of asyncoptjob against what users would pick instead.

Run them all with ``python -m benchmarks`` (``--quick`` for a few-second smoke run,
``--scenario s2`` for one scenario); see ``benchmarks/README.md``. Each scenario is one
module in :mod:`benchmarks.scenarios`; the contenders are described in
:mod:`benchmarks.contenders`.
"""
